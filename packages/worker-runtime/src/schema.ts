// The schemas a browser may bundle: ids, the domain views and events, the typed errors. Nothing here imports a
// Node module (the package's main entry does: the store, the runtime, the SQLite layer).
export * as Domain from "./Domain.js"
export * as Errors from "./Errors.js"
export * as Ids from "./Ids.js"
