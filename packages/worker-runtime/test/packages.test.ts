import { assert, describe, it } from "@effect/vitest"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

/**
 * What a user outside this monorepo gets: every package is packed with `npm pack`, the tarballs are installed into an
 * empty folder under the OS temp dir (dependencies from the npm cache, the registry only for what it lacks), and the
 * README's "Embed it" example runs there with plain `node` and typechecks against the shipped declarations. Every
 * package's entry points import under plain `node`; the installed bins run: `yoi-runtime` serves and drains,
 * `yoi-backend` serves the installed console's page and drains, `yoi` prints its version.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..")
const libraries = [
  "worker-runtime",
  "runtime-api",
  "backend-api",
  "runtime-server",
  "llm-engine",
  "workspace-server",
  "cli",
  "console"
]

interface Run { readonly code: number | null; readonly stdout: string; readonly stderr: string }

/** Runs a command with npm's own lifecycle variables removed (this suite may itself run under `npm test`). */
const run = (file: string, args: ReadonlyArray<string>, cwd: string) =>
  new Promise<Run>((resolveRun) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(?!config_cache$)/i.test(k)))
    execFile(file, [...args], { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolveRun({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }))
  })

const ok = async (file: string, args: ReadonlyArray<string>, cwd: string) => {
  const result = await run(file, args, cwd)
  assert.strictEqual(result.code, 0, `${file} ${args.join(" ")} failed:\n${result.stdout}\n${result.stderr}`)
  return result
}

/** The TypeScript code block under the README's "## Embed it" heading, verbatim. */
const readmeExample = () => {
  const readme = readFileSync(join(root, "README.md"), "utf8")
  const section = readme.slice(readme.indexOf("## Embed it"))
  const match = /```ts\n([\s\S]*?)```/.exec(section)
  assert.isNotNull(match, "no ```ts block under ## Embed it in README.md")
  return match![1]!
}

const version = (pkg: string) =>
  (JSON.parse(readFileSync(join(root, "node_modules", pkg, "package.json"), "utf8")) as { version: string }).version

const serveUntilReady = (bin: string, args: ReadonlyArray<string>, ready: RegExp, cwd: string) =>
  new Promise<{ child: ChildProcess; stdout: () => string; stderr: () => string }>((resolveReady, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? "", HOME: cwd },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()))
    child.stdout!.on("data", (c: Buffer) => {
      stdout += c.toString()
      if (ready.test(stdout)) resolveReady({ child, stdout: () => stdout, stderr: () => stderr })
    })
    child.once("exit", (code) => reject(new Error(`${bin} exited with ${code} before its ready line: ${stderr}`)))
  })

/** SIGTERM, then the exit code and the drain that must come before it. */
const drain = async (served: { child: ChildProcess; stderr: () => string }) => {
  const exited = new Promise<number | null>((r) => served.child.once("exit", (code) => r(code)))
  served.child.kill("SIGTERM")
  assert.strictEqual(await exited, 0, served.stderr())
  assert.match(served.stderr(), /message=draining[\s\S]*message=drained/)
}

describe("the packed packages", () => {
  it("install outside the repo and run the README's embedding example with no TypeScript loader", async () => {
    const dir = mkdtempSync(join(tmpdir(), "yoi-packages-"))
    try {
      const tarballs = join(dir, "tarballs")
      const app = join(dir, "app")
      mkdirSync(tarballs)
      // Packs the current dist/ (`npm test` builds first, through `pretest`; not rebuilt here, because other test
      // files run the bins off dist/ at the same time).
      for (const l of libraries) {
        const built = l === "console" ? join("dist", "index.html") : join("dist", "index.js")
        assert.isTrue(existsSync(join(root, "packages", l, built)), `${l} is not built: npm run build`)
      }
      await ok("npm", ["pack", "--pack-destination", tarballs, ...libraries.flatMap((l) => ["-w", `packages/${l}`])], root)
      const files = readdirSync(tarballs).sort()
      assert.deepStrictEqual(files, libraries.map((l) => `yoi-${l}-0.1.0.tgz`).sort())

      // Each @yoi dependency of a tarball resolves to its sibling tarball, never to the registry.
      const specs = Object.fromEntries(libraries.map((l) => [`@yoi/${l}`, `file:${join(tarballs, `yoi-${l}-0.1.0.tgz`)}`]))
      mkdirSync(app)
      writeFileSync(join(app, "package.json"), JSON.stringify({
        name: "embed-app",
        private: true,
        type: "module",
        dependencies: { ...specs, effect: version("effect") },
        overrides: specs
      }, null, 2))
      // --ignore-scripts: better-sqlite3 is not compiled here (a minute of CPU); the example runs on the memory store,
      // which never loads it, and the Backend below gets this repository's build for the running Node, linked in.
      await ok("npm", ["install", "--prefer-offline", "--ignore-scripts", "--no-audit", "--no-fund"], app)
      for (const l of libraries) {
        const installed = join(app, "node_modules", "@yoi", l)
        assert.isFalse(existsSync(join(installed, "test")), `${l}: tests were packed`)
        assert.isFalse(existsSync(join(installed, "dist", ".tsbuild")), `${l}: build info was packed`)
        if (l === "console") {
          assert.isTrue(existsSync(join(installed, "dist", "index.html")), "console: no dist/index.html")
          assert.deepStrictEqual(readdirSync(join(installed, "dist")).sort(), ["assets", "index.html"])
          continue
        }
        assert.isTrue(existsSync(join(installed, "dist", "index.js")), `${l}: no dist/index.js`)
        assert.isTrue(existsSync(join(installed, "dist", "index.d.ts")), `${l}: no dist/index.d.ts`)
      }

      // The README's example, verbatim, with plain node (no loader: the file is JavaScript as it stands).
      writeFileSync(join(app, "embed.mjs"), readmeExample())
      const embedded = await ok(process.execPath, ["embed.mjs"], app)
      assert.match(embedded.stdout.trim(), /^w_\S+ took turn t_\S+$/)

      // ...and it typechecks against the shipped declarations.
      writeFileSync(join(app, "embed.ts"), readmeExample())
      writeFileSync(join(app, "tsconfig.json"), JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          lib: ["ES2022", "DOM"],
          types: [],
          strict: true,
          exactOptionalPropertyTypes: true,
          noEmit: true,
          skipLibCheck: true
        },
        files: ["embed.ts"]
      }))
      await ok(process.execPath, [join(root, "node_modules/typescript7/bin/tsc"), "-p", "tsconfig.json"], app)

      // Every entry point of every package loads under plain node (not the test-only ones, which have no JavaScript).
      const entries = libraries.flatMap((l) => {
        const manifest = JSON.parse(readFileSync(join(app, "node_modules", "@yoi", l, "package.json"), "utf8")) as {
          exports: Record<string, string | { readonly default?: string }>
        }
        return Object.entries(manifest.exports)
          .filter(([subpath, target]) => typeof target === "object" && target.default !== undefined && subpath !== "./package.json")
          .map(([subpath]) => `@yoi/${l}${subpath.slice(1)}`)
      })
      assert.includeMembers(entries, ["@yoi/worker-runtime/sqlite", "@yoi/runtime-server/testing", "@yoi/backend-api/BrowserApi"])
      const loaded = await ok(process.execPath, [
        "--input-type=module",
        "-e",
        `for (const e of ${JSON.stringify(entries)}) console.log(e, Object.keys(await import(e)).length)`
      ], app)
      for (const e of entries) assert.match(loaded.stdout, new RegExp(`^${e} [1-9]\\d*$`, "m"))

      const binOf = (pkg: string, name: string) => join(app, "node_modules", "@yoi", pkg, "bin", `${name}.mjs`)

      // The installed yoi-runtime serves, then drains on SIGTERM and exits 0.
      const runtime = await serveUntilReady(
        binOf("runtime-server", "yoi-runtime"),
        ["--store", "memory", "--bind", "127.0.0.1:0", "--insecure-no-auth"],
        /^yoi-runtime \S+ listening on http:\/\/127\.0\.0\.1:\d+$/m,
        app
      )
      await drain(runtime)

      // The installed yoi-backend (SQLite stores: this repository's better-sqlite3, built for this Node) finds the
      // installed @yoi/console from its bundle and serves it.
      rmSync(join(app, "node_modules", "better-sqlite3"), { recursive: true, force: true })
      symlinkSync(realpathSync(join(root, "node_modules", "better-sqlite3")), join(app, "node_modules", "better-sqlite3"))
      const backend = await serveUntilReady(
        binOf("workspace-server", "yoi-backend"),
        ["--bind", "127.0.0.1:0", "--data-dir", join(dir, "backend-data")],
        /^sign in: /m,
        app
      )
      try {
        const url = /^yoi-backend listening on (http:\/\/\S+)$/m.exec(backend.stdout())![1]!
        const page = await fetch(`${url}/`)
        assert.strictEqual(page.status, 200)
        const html = await page.text()
        assert.strictEqual(html, readFileSync(join(app, "node_modules", "@yoi", "console", "dist", "index.html"), "utf8"))
        const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)
        assert.isNotNull(script, html)
        assert.strictEqual((await fetch(`${url}${script![1]}`)).status, 200)
      } finally {
        await drain(backend)
      }

      // The installed yoi runs.
      const yoi = await ok(process.execPath, [binOf("cli", "yoi"), "--version"], app)
      assert.match(yoi.stdout, /0\.1\.0/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 600_000)
})
