/**
 * Bundles each binary's compiled entry (`packages/<pkg>/dist/main.js`, from `tsc -b`) into
 * `packages/<pkg>/dist/bundle/` with esbuild; the bins in `packages/<pkg>/bin/` import that bundle. The libraries
 * themselves stay unbundled (`exports` point at `dist/*.js`).
 *
 * Why: Node has no tree shaking, so the barrel imports (`from "effect"`, `from "@effect/platform"`,
 * `from "@effect/platform-node"`) load every module of those packages at start: all of effect and fast-check,
 * Swagger UI, @effect/cluster, @effect/rpc... about 1,000 modules for the Backend. The bundle keeps what is used, and
 * dynamic imports (the LLM provider SDKs) become chunks loaded on first use (docs/operations.md#footprint).
 *
 * Everything is bundled (our packages and any module added later included) except what cannot live inside a bundle,
 * decided by a rule rather than a list of our files:
 * - a package with a native addon (a `binding.gyp` or `prebuilds/` in its folder): better-sqlite3 (chosen by Node
 *   version in deps/better-sqlite3), msgpackr-extract;
 * - a package that reads its own files relative to itself (`__dirname`, `import.meta.url`): in a bundle that location
 *   is the bundle's. Listed in `ALWAYS_EXTERNAL`; `@yoi/console` is not imported, only located with `require.resolve`,
 *   so the Backend finds `packages/console/dist` (or an installed `@yoi/console`) from the bundle too.
 *
 *   node scripts/bundle.mjs        (run by `npm run build`, after tsc)
 */
import { build } from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const BINARIES = ["runtime-server", "workspace-server", "cli"]
// better-sqlite3 by name as well: in this repo it is the selector deps/better-sqlite3 (no addon of its own), and the
// bundle must leave the choice to whatever better-sqlite3 is installed where it runs.
const ALWAYS_EXTERNAL = new Set(["better-sqlite3", "@anthropic-ai/tokenizer"])
// A module the servers import only lazily but that a barrel re-exports: `import("@effect/platform/HttpApiScalar")`,
// whose 3 MB inline script serves /docs (runtime-server/src/Docs.ts). esbuild puts a module that the start path's
// barrel also reaches into a chunk loaded at start, so the re-export is dropped from the barrel; eslint forbids
// importing it through the barrel, where it would now be undefined.
const LAZY_ONLY = [{ barrel: /[\\/]@effect[\\/]platform[\\/]dist[\\/]esm[\\/]index\.js$/, name: "HttpApiScalar" }]

const packageName = (specifier) => {
  const parts = specifier.split("/")
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]
}

const nativeCache = new Map()
/** Does the package `name`, as installed at the root, carry a native addon? */
const isNative = (name) => {
  if (!nativeCache.has(name)) {
    const dir = path.join(root, "node_modules", name)
    nativeCache.set(name, fs.existsSync(path.join(dir, "binding.gyp")) || fs.existsSync(path.join(dir, "prebuilds")))
  }
  return nativeCache.get(name)
}

const externals = {
  name: "yoi-externals",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith("node:")) return undefined
      const name = packageName(args.path)
      return ALWAYS_EXTERNAL.has(name) || isNative(name) ? { path: args.path, external: true } : undefined
    })
    for (const { barrel, name } of LAZY_ONLY) {
      b.onLoad({ filter: barrel }, async (args) => {
        const source = await fs.promises.readFile(args.path, "utf8")
        const line = `export * as ${name} from "./${name}.js";`
        if (!source.includes(line)) throw new Error(`${args.path} no longer has \`${line}\`: update LAZY_ONLY`)
        return { contents: source.replace(line, ""), loader: "js", resolveDir: path.dirname(args.path) }
      })
    }
  }
}

for (const pkg of BINARIES) {
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
    plugins: [externals],
    sourcemap: "linked",
    sourcesContent: false,
    chunkNames: "chunk-[hash]",
    // CommonJS dependencies inside an ES module bundle still call require() for Node built-ins.
    banner: {
      js: "import { createRequire as __yoiCreateRequire } from \"node:module\"; const require = __yoiCreateRequire(import.meta.url);"
    },
    logLevel: "warning"
  })
}
