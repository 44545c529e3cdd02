import { assert, describe, it } from "@effect/vitest"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

/**
 * What a user outside this monorepo gets: every library is packed with `npm pack`, the tarballs are installed into an
 * empty folder under the OS temp dir (dependencies from the npm cache, the registry only for what it lacks), and the
 * README's "Embed it" example runs there with plain `node` and typechecks against the shipped declarations. Every
 * package's entry points import under plain `node`, and the installed `yoi-runtime` bin serves and drains.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..")
const libraries = ["worker-runtime", "runtime-api", "runtime-server", "llm-engine", "workspace-server"]

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

const serveUntilReady = (bin: string, cwd: string) =>
  new Promise<{ child: ChildProcess; stderr: () => string }>((resolveReady, reject) => {
    const child = spawn(process.execPath, [bin, "--store", "memory", "--bind", "127.0.0.1:0", "--insecure-no-auth"], {
      cwd,
      env: { PATH: process.env.PATH ?? "" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()))
    child.stdout!.on("data", (c: Buffer) => {
      stdout += c.toString()
      if (/^yoi-runtime \S+ listening on http:\/\/127\.0\.0\.1:\d+$/m.test(stdout)) {
        resolveReady({ child, stderr: () => stderr })
      }
    })
    child.once("exit", (code) => reject(new Error(`yoi-runtime exited with ${code} before its ready line: ${stderr}`)))
  })

describe("the packed libraries", () => {
  it("install outside the repo and run the README's embedding example with no TypeScript loader", async () => {
    const dir = mkdtempSync(join(tmpdir(), "yoi-packages-"))
    try {
      const tarballs = join(dir, "tarballs")
      const app = join(dir, "app")
      mkdirSync(tarballs)
      // Packs the current dist/ (`npm test` builds first, through `pretest`; not rebuilt here, because other test
      // files run the bins off dist/ at the same time).
      for (const l of libraries) {
        assert.isTrue(existsSync(join(root, "packages", l, "dist", "index.js")), `${l} is not built: npm run build`)
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
      // --ignore-scripts: better-sqlite3 is not compiled; the example runs on the memory store, which never loads it.
      await ok("npm", ["install", "--prefer-offline", "--ignore-scripts", "--no-audit", "--no-fund"], app)
      for (const l of libraries) {
        const installed = join(app, "node_modules", "@yoi", l)
        assert.isTrue(existsSync(join(installed, "dist", "index.js")), `${l}: no dist/index.js`)
        assert.isTrue(existsSync(join(installed, "dist", "index.d.ts")), `${l}: no dist/index.d.ts`)
        assert.isFalse(existsSync(join(installed, "test")), `${l}: tests were packed`)
        assert.isFalse(existsSync(join(installed, "dist", ".tsbuild")), `${l}: build info was packed`)
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

      // Every entry point of every package loads under plain node.
      const entries = libraries.flatMap((l) => {
        const manifest = JSON.parse(readFileSync(join(app, "node_modules", "@yoi", l, "package.json"), "utf8")) as {
          exports: Record<string, unknown>
        }
        return Object.keys(manifest.exports).map((subpath) => `@yoi/${l}${subpath.slice(1)}`)
      })
      assert.includeMembers(entries, ["@yoi/worker-runtime/sqlite", "@yoi/runtime-server/testing"])
      const loaded = await ok(process.execPath, [
        "--input-type=module",
        "-e",
        `for (const e of ${JSON.stringify(entries)}) console.log(e, Object.keys(await import(e)).length)`
      ], app)
      for (const e of entries) assert.match(loaded.stdout, new RegExp(`^${e} [1-9]\\d*$`, "m"))

      // The installed bin serves, then drains on SIGTERM and exits 0.
      const bin = join(app, "node_modules", "@yoi", "runtime-server", "bin", "yoi-runtime.mjs")
      const { child, stderr } = await serveUntilReady(bin, app)
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)))
      child.kill("SIGTERM")
      assert.strictEqual(await exited, 0, stderr())
      assert.include(stderr(), "drained")
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 600_000)
})
