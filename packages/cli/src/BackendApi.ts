/** The Backend's contract, shared with the Backend and the console. */
export { BrowserApi } from "@yoi/backend-api/BrowserApi"
