/**
 * The Backend's contract, imported in this one module so that its home can move (to `@yoi/backend-api`) by changing
 * one import path.
 */
export { BrowserApi } from "@yoi/workspace-server/api"
