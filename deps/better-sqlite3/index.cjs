"use strict"
// better-sqlite3 13 (Node-API 10, prebuilt binaries) wherever the running Node has Node-API 10 (Node 22.14+, 24):
// 12.x's node::ObjectWrap aborts Node 24 when a statement is garbage collected. Older Node (20) keeps 12.x, compiled
// against it when `npm ci` runs. Both lines have the same JavaScript API. See README.md.
module.exports = Number(process.versions.napi) >= 10 ? require("better-sqlite3-v13") : require("better-sqlite3-v12")
