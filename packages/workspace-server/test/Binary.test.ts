import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeChild from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { tempDir } from "./support.js"

const BIN = NodePath.join(import.meta.dirname, "..", "bin", "yoi-backend.mjs")

interface Run {
  readonly child: NodeChild.ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<number | null>
}

const spawn = (args: ReadonlyArray<string>, cwd: string, env: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.sync((): Run => {
      const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("YOI_BACKEND_")))
      const child = NodeChild.spawn(process.execPath, [BIN, ...args], {
        cwd,
        env: { ...clean, ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let out = ""
      let err = ""
      child.stdout!.on("data", (d) => (out += String(d)))
      child.stderr!.on("data", (d) => (err += String(d)))
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
      return { child, stdout: () => out, stderr: () => err, exited }
    }),
    (run) => Effect.sync(() => run.child.exitCode === null && run.child.kill("SIGTERM"))
  )

describe("yoi-backend binary", () => {
  it.scopedLive("fails at start on a bad config with one line naming the field", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const config = NodePath.join(dir, "backend.json")
      NodeFs.writeFileSync(config, JSON.stringify({
        remotes: [{ runtime_id: "gpu-box", endpoint: "ftp://box", token: { env: "T" } }]
      }))
      const run = yield* spawn(["--config", config, "--data-dir", NodePath.join(dir, "data"), "--bind", "127.0.0.1:0"], dir)
      const code = yield* Effect.promise(() => run.exited)
      assert.strictEqual(code, 1)
      assert.match(run.stderr(), /^yoi-backend: invalid config: remotes\[0\]\.endpoint: endpoint must be an http/m)
      assert.notInclude(run.stdout(), "listening")
    }), 60_000)

  it.scopedLive("starts with an embedded SQLite runtime on the defaults and prints its URL and login", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const run = yield* spawn(["--bind", "127.0.0.1:0"], dir)
      yield* Effect.async<void>((resume) => {
        const check = () => {
          if (/listening on/.test(run.stdout()) && /sign in:/.test(run.stdout())) resume(Effect.void)
          else if (run.child.exitCode !== null) resume(Effect.die(`exited: ${run.stderr()}`))
          else setTimeout(check, 50)
        }
        check()
      })
      const ready = /^yoi-backend listening on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(run.stdout())
      assert.isNotNull(ready)
      const url = ready![1]!
      const token = /sign in: \S+\/login\?token=(\S+)$/m.exec(run.stdout())![1]!
      const runtimes = yield* Effect.promise(() =>
        fetch(`${url}/api/runtimes`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json())
      )
      assert.deepStrictEqual(
        (runtimes as any).items.map((r: any) => [r.runtime_id, r.kind, r.status, r.summary.store]),
        [["local", "embedded", "online", "sqlite"]]
      )
      assert.isTrue(NodeFs.existsSync(NodePath.join(dir, ".yoi", "local.db")))
      assert.isTrue(NodeFs.existsSync(NodePath.join(dir, ".yoi", "backend.db")))
      run.child.kill("SIGTERM")
      const code = yield* Effect.promise(() => run.exited)
      assert.strictEqual(code, 0, run.stderr())
      assert.match(run.stderr(), /message=draining\n[\s\S]*message=drained\n$/)
      assert.strictEqual(run.stdout().trim().split("\n").length, 2, run.stdout())
    }), 60_000)

  it.scopedLive("drains on SIGINT too and exits 0", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const run = yield* spawn(["--bind", "127.0.0.1:0"], dir)
      yield* Effect.async<void>((resume) => {
        const check = () => {
          if (/sign in:/.test(run.stdout())) resume(Effect.void)
          else if (run.child.exitCode !== null) resume(Effect.die(`exited: ${run.stderr()}`))
          else setTimeout(check, 50)
        }
        check()
      })
      run.child.kill("SIGINT")
      assert.strictEqual(yield* Effect.promise(() => run.exited), 0, run.stderr())
      assert.match(run.stderr(), /message=draining\n[\s\S]*message=drained\n$/)
    }), 60_000)
})
