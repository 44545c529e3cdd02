#!/usr/bin/env node
// The compiled program, bundled by `npm run build` (which `npm ci` runs through `prepare`): plain node, no loader.
import { existsSync } from "node:fs"

const main = new URL("../dist/bundle/main.js", import.meta.url)
if (!existsSync(main)) {
  process.stderr.write("yoi-backend: not built (no dist/bundle/main.js): run npm run build\n")
  process.exit(1)
}
await import(main.href)
