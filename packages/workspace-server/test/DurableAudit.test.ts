import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeChild from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { freshDatabase } from "./pgSupport.js"
import { tempDir } from "./support.js"

const BIN = NodePath.join(import.meta.dirname, "..", "bin", "yoi-backend.mjs")
const TOKEN = "durable-audit-token-0c4e1b"

interface Started {
  readonly child: NodeChild.ChildProcess
  readonly url: string
  readonly exited: Promise<unknown>
  /** Everything it printed so far, stdout and stderr. */
  readonly output: () => string
}

/** A real `yoi-backend` process on a free port; resolves once it prints its ready line. */
const start = (
  dir: string,
  config: string,
  extra: ReadonlyArray<string> = [],
  env: Record<string, string> = { YOI_BACKEND_TOKEN: TOKEN },
  dataDir = NodePath.join(dir, "data")
) =>
  Effect.acquireRelease(
    Effect.async<Started>((resume) => {
      const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("YOI_BACKEND_")))
      const child = NodeChild.spawn(
        process.execPath,
        [BIN, "--bind", "127.0.0.1:0", "--data-dir", dataDir, "--config", config, ...extra],
        { cwd: dir, env: { ...clean, ...env }, stdio: ["ignore", "pipe", "pipe"] }
      )
      const exited = new Promise((resolve) => child.on("exit", resolve))
      let out = ""
      let err = ""
      child.stderr!.on("data", (d) => (err += String(d)))
      child.stdout!.on("data", (d) => {
        out += String(d)
        const ready = /^yoi-backend listening on (http:\/\/\S+)$/m.exec(out)
        if (ready !== null) resume(Effect.succeed({ child, url: ready[1]!, exited, output: () => out + err }))
      })
      child.on("exit", (code) => resume(Effect.die(`yoi-backend exited (${code}) before listening: ${err}`)))
    }),
    ({ child, exited }) =>
      Effect.promise(async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        await exited
      })
  )

const api = (url: string, method: string, path: string, requestId?: string, body?: unknown) =>
  fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      "content-type": "application/json",
      ...(requestId === undefined ? {} : { "x-request-id": requestId })
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })

describe("durable audit (a real yoi-backend, SQLite)", () => {
  it.scopedLive("kill -9 under concurrent load: every acknowledged command has its audit row after a restart", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const config = NodePath.join(dir, "backend.json")
      NodeFs.writeFileSync(config, JSON.stringify({ embedded: { runtime_id: "local", store: "memory" }, companion: null }))
      const acknowledged = new Map<string, number>()
      const rounds = 3
      for (let round = 0; round < rounds; round++) {
        const backend = yield* start(dir, config)
        let stop = false
        let sent = 0
        const before = acknowledged.size
        // 32 callers, each sending commands back to back: creates (201), and cancels and stops of workers that do
        // not exist (a typed 404, audited as failed). Any answer received counts as acknowledged.
        const callers = Array.from({ length: 32 }, async (_, c) => {
          for (let i = 0; !stop; i++) {
            const id = `r${round}-c${c}-${i}`
            sent++
            const kind = i % 3
            try {
              const reply = kind === 0
                ? await api(backend.url, "POST", "/api/runtimes/local/workers", id, { display_name: `W ${id}` })
                : await api(backend.url, "POST", `/api/runtimes/local/workers/missing-${c}/${kind === 1 ? "cancel" : "stop"}`, id)
              await reply.arrayBuffer()
              acknowledged.set(id, reply.status)
            } catch {
              return
            }
          }
        })
        // Kill mid-load, once a good number of commands have been answered in this round.
        const target = acknowledged.size + 100 + round * 25
        yield* Effect.promise(async () => {
          while (acknowledged.size < target) await new Promise((r) => setTimeout(r, 5))
        })
        backend.child.kill("SIGKILL")
        yield* Effect.promise(() => backend.exited)
        stop = true
        yield* Effect.promise(() => Promise.all(callers))
        // Commands were in flight when it died (sent, never answered): the kill came mid-load.
        assert.isAbove(sent, acknowledged.size - before)
      }
      const backend = yield* start(dir, config)
      const recorded = new Map<string, { outcome: string; error_tag: string | null }>()
      let token: string | undefined
      do {
        const reply = yield* Effect.promise(() =>
          api(backend.url, "GET", `/api/audit?limit=500${token === undefined ? "" : `&page_token=${token}`}`)
            .then((r) => r.json() as Promise<any>)
        )
        for (const r of reply.items) recorded.set(r.request_id, r)
        token = reply.next_page_token
      } while (token !== undefined)
      const missing = [...acknowledged.keys()].filter((id) => !recorded.has(id))
      assert.deepStrictEqual(missing, [], `${missing.length} of ${acknowledged.size} acknowledged commands lost`)
      for (const [id, status] of acknowledged) {
        const row = recorded.get(id)!
        assert.strictEqual(row.outcome, status < 300 ? "ok" : "failed", id)
        if (status >= 400) assert.strictEqual(row.error_tag, "WorkerNotFound", id)
      }
      assert.isAtLeast(acknowledged.size, 100 * rounds)
    }), 180_000)
})

/** Runs `yoi-backend` to its exit; its exit code and stderr. */
const runToExit = (dir: string, args: ReadonlyArray<string>) =>
  Effect.async<{ readonly code: number | null; readonly stderr: string; readonly stdout: string }>((resume) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("YOI_BACKEND_")))
    const child = NodeChild.spawn(process.execPath, [BIN, "--bind", "127.0.0.1:0", "--data-dir", dir, ...args], {
      cwd: dir,
      env: { ...clean, YOI_BACKEND_TOKEN: TOKEN },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stderr = ""
    let stdout = ""
    child.stderr!.on("data", (d) => (stderr += String(d)))
    child.stdout!.on("data", (d) => (stdout += String(d)))
    child.on("exit", (code) => resume(Effect.succeed({ code, stderr, stdout })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("yoi-backend --database", () => {
  it.scopedLive("a bad or unreachable database fails the start in one line that never prints the password", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const secret = "pg-pa55-Zq81"
      const [notPg, unreachable] = yield* Effect.all([
        runToExit(dir, ["--database", `mysql://yoi:${secret}@db/yoi`]),
        runToExit(dir, ["--database", `postgres://yoi:${secret}@127.0.0.1:1/yoi`])
      ], { concurrency: 2 })
      assert.strictEqual(notPg.code, 1)
      assert.match(notPg.stderr, /^yoi-backend: --database must be a postgres:\/\/ URL/m)
      assert.strictEqual(unreachable.code, 1)
      assert.match(
        unreachable.stderr,
        /^yoi-backend: cannot open the Backend database postgres:\/\/yoi:\*\*\*@127\.0\.0\.1:1\/yoi/m
      )
      for (const run of [notPg, unreachable]) {
        assert.notInclude(run.stderr + run.stdout, secret)
        assert.notInclude(run.stdout, "listening")
      }
    }), 60_000)

  it.scopedLive("two processes on one database share one token file, the sessions and the audit log", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const url = yield* freshDatabase
      const config = NodePath.join(dir, "backend.json")
      NodeFs.writeFileSync(config, JSON.stringify({ embedded: { runtime_id: "local", store: "memory" }, companion: null }))
      const tokenFile = NodePath.join(dir, "shared-token")
      NodeFs.writeFileSync(tokenFile, `${TOKEN}\n`)
      // The test server trusts local connections, so any password is accepted: one is given only to prove that no
      // line ever prints it.
      const secret = "replica-db-pa55-91x"
      const withPassword = new URL(url)
      withPassword.password = secret
      const env = {
        YOI_BACKEND_TOKEN_FILE: tokenFile,
        YOI_BACKEND_DATABASE: withPassword.toString(),
        YOI_LOG_LEVEL: "debug"
      }
      const [a, b] = yield* Effect.all([
        start(dir, config, [], env, NodePath.join(dir, "a")),
        start(dir, config, [], env, NodePath.join(dir, "b"))
      ], { concurrency: 2 })
      const signIn = yield* Effect.promise(() =>
        fetch(`${a.url}/api/session`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ token: TOKEN })
        })
      )
      assert.strictEqual(signIn.status, 204)
      const cookie = signIn.headers.get("set-cookie")!.split(";")[0]!
      const session = yield* Effect.promise(() =>
        fetch(`${b.url}/api/session`, { headers: { cookie } }).then((r) => r.json() as Promise<any>)
      )
      assert.match(session.actor, /^session:/)
      const replies = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 20 }, (_, i) =>
          api(i % 2 === 0 ? a.url : b.url, "POST", "/api/runtimes/local/workers/nobody/cancel", `bin-${i}`)
            .then((r) => r.status))))
      assert.deepStrictEqual(new Set(replies), new Set([404]))
      const log = yield* Effect.promise(() =>
        api(a.url, "GET", "/api/audit?limit=500").then((r) => r.json() as Promise<any>)
      )
      assert.deepStrictEqual(
        new Set(log.items.map((r: any) => r.request_id)),
        new Set(Array.from({ length: 20 }, (_, i) => `bin-${i}`))
      )
      for (const replica of [a, b]) {
        assert.match(replica.output(), /Backend database: postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/)
        assert.notInclude(replica.output(), secret)
      }
      // The SQLite default is not used: neither data directory holds a backend.db.
      assert.isFalse(NodeFs.existsSync(NodePath.join(dir, "a", "backend.db")))
      assert.isFalse(NodeFs.existsSync(NodePath.join(dir, "b", "backend.db")))
    }), 120_000)
})
