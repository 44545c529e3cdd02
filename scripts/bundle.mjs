/**
 * Bundles each binary's compiled entry (`packages/<pkg>/dist/main.js`, from `tsc -b`) into
 * `packages/<pkg>/dist/bundle/` with esbuild; the bins in `packages/<pkg>/bin/` import that bundle. The libraries
 * themselves stay unbundled (`exports` point at `dist/*.js`).
 *
 * Why: Node has no tree shaking, so the barrel imports (`from "effect"`, `from "@effect/platform"`,
 * `from "@effect/platform-node"`) load every module of those packages at start: all of effect and fast-check,
 * Swagger UI, @effect/cluster, @effect/rpc... about 1,000 modules for the Backend. The bundle keeps what is used, and
 * dynamic imports (the LLM provider SDKs) become chunks loaded on first use. Measured with `npm run bench:footprint`:
 * idle RSS about a quarter lower and half the CPU to the ready line (docs/operations.md#footprint).
 *
 * External (loaded from node_modules at run time): better-sqlite3 (a native addon, chosen by Node version in
 * deps/better-sqlite3) and @anthropic-ai/tokenizer (CommonJS that finds its .wasm through __dirname). A package that
 * reads files relative to its own `import.meta.url` must be listed here too: in a bundle that URL is the bundle's.
 *
 *   node scripts/bundle.mjs        (run by `npm run build`, after tsc)
 */
import { build } from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const external = ["better-sqlite3", "@anthropic-ai/tokenizer"]

for (const pkg of ["runtime-server", "workspace-server"]) {
  const dist = path.join(root, "packages", pkg, "dist")
  const outdir = path.join(dist, "bundle")
  fs.rmSync(outdir, { recursive: true, force: true })
  await build({
    entryPoints: { main: path.join(dist, "main.js") },
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    external,
    sourcemap: "linked",
    sourcesContent: false,
    chunkNames: "chunk-[hash]",
    // CommonJS dependencies inside an ES module bundle still call require() for Node built-ins.
    banner: { js: "import { createRequire as __yoiCreateRequire } from \"node:module\"; const require = __yoiCreateRequire(import.meta.url);" },
    logLevel: "warning"
  })
}
