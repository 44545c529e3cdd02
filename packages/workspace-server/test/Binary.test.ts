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
      // The Companion exists after a plain start, tool-less, on the default (echo) profile, and answers.
      const api = (path: string, init: RequestInit = {}) =>
        Effect.promise(() =>
          fetch(`${url}${path}`, {
            ...init,
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }
          }).then((r) => r.json() as Promise<any>)
        )
      const companion = yield* api("/api/runtimes/local/workers/companion")
      assert.strictEqual(companion.display_name, "Companion")
      assert.deepStrictEqual(companion.tools, [])
      assert.isUndefined(companion.scope)
      assert.deepStrictEqual(companion.engine, { profile: "echo", provider: "echo" })
      yield* api("/api/runtimes/local/workers/companion/input", { method: "POST", body: JSON.stringify({ text: "hello there" }) })
      let reply: string | undefined
      for (let i = 0; i < 200 && reply === undefined; i++) {
        const page = yield* api("/api/runtimes/local/workers/companion/transcript")
        reply = page.items.find((e: any) => e.data._tag === "assistant_message")?.data.text
        if (reply === undefined) yield* Effect.sleep("50 millis")
      }
      assert.strictEqual(reply, "hello there")
      assert.isTrue(NodeFs.existsSync(NodePath.join(dir, ".yoi", "local.db")))
      assert.isTrue(NodeFs.existsSync(NodePath.join(dir, ".yoi", "backend.db")))
      run.child.kill("SIGTERM")
      const code = yield* Effect.promise(() => run.exited)
      assert.strictEqual(code, 0, run.stderr())
      assert.match(run.stderr(), /message=draining\n[\s\S]*message=drained\n$/)
      // stdout carries only the ready, sign-in and token lines; logs go to stderr.
      assert.strictEqual(run.stdout().trim().split("\n").length, 3, run.stdout())
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

  it.scopedLive("keeps its generated token in the data directory (0600) and reuses it on the next start", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const data = NodePath.join(dir, "data")
      const tokenOf = (run: Run) =>
        Effect.async<string>((resume) => {
          const check = () => {
            const found = /sign in: \S+\/login\?token=(\S+)$/m.exec(run.stdout())
            if (found !== null && /^token: kept in /m.test(run.stdout())) resume(Effect.succeed(found[1]!))
            else if (run.child.exitCode !== null) resume(Effect.die(`exited: ${run.stderr()}`))
            else setTimeout(check, 50)
          }
          check()
        })
      const first = yield* spawn(["--bind", "127.0.0.1:0", "--data-dir", data], dir)
      const token = yield* tokenOf(first)
      const file = NodePath.join(data, "backend-token")
      assert.strictEqual(NodeFs.readFileSync(file, "utf8").trim(), token)
      assert.strictEqual(NodeFs.statSync(file).mode & 0o777, 0o600)
      first.child.kill("SIGTERM")
      yield* Effect.promise(() => first.exited)
      const second = yield* spawn(["--bind", "127.0.0.1:0", "--data-dir", data], dir)
      assert.strictEqual(yield* tokenOf(second), token)
      // A configured token wins and is never written down.
      const third = yield* spawn(["--bind", "127.0.0.1:0", "--data-dir", NodePath.join(dir, "other")], dir, {
        YOI_BACKEND_TOKEN: "configured-token-of-some-length"
      })
      yield* Effect.async<void>((resume) => {
        const check = () => {
          if (/sign in: \S+<YOI_BACKEND_TOKEN>/.test(third.stdout())) resume(Effect.void)
          else if (third.child.exitCode !== null) resume(Effect.die(`exited: ${third.stderr()}`))
          else setTimeout(check, 50)
        }
        check()
      })
      assert.isFalse(NodeFs.existsSync(NodePath.join(dir, "other", "backend-token")))
    }), 90_000)
})
