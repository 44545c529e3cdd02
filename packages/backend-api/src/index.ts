export * as Authentication from "./Authentication.js"
export * as BrowserApi from "./BrowserApi.js"
export * as Errors from "./Errors.js"
export * as Views from "./Views.js"
