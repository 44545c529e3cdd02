import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeChild from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { tempDir } from "./support.js"

const BIN = NodePath.join(import.meta.dirname, "..", "bin", "yoi-backend.mjs")
const TOKEN = "durable-audit-token-0c4e1b"

interface Started {
  readonly child: NodeChild.ChildProcess
  readonly url: string
  readonly exited: Promise<unknown>
}

/** A real `yoi-backend` process on a free port; resolves once it prints its ready line. */
const start = (dir: string, config: string) =>
  Effect.acquireRelease(
    Effect.async<Started>((resume) => {
      const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("YOI_BACKEND_")))
      const child = NodeChild.spawn(
        process.execPath,
        [BIN, "--bind", "127.0.0.1:0", "--data-dir", NodePath.join(dir, "data"), "--config", config],
        { cwd: dir, env: { ...clean, YOI_BACKEND_TOKEN: TOKEN }, stdio: ["ignore", "pipe", "pipe"] }
      )
      const exited = new Promise((resolve) => child.on("exit", resolve))
      let out = ""
      let err = ""
      child.stderr!.on("data", (d) => (err += String(d)))
      child.stdout!.on("data", (d) => {
        out += String(d)
        const ready = /^yoi-backend listening on (http:\/\/\S+)$/m.exec(out)
        if (ready !== null) resume(Effect.succeed({ child, url: ready[1]!, exited }))
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
