import { assert, describe, it } from "@effect/vitest"
import { echo } from "@yoi/worker-runtime/testing"
import { Effect, Exit, Scope } from "effect"
import {
  call,
  closedPort,
  connectSse,
  eventually,
  type SseFrame,
  startBackend,
  startRuntimeServer
} from "./support.js"

const REMOTE_TOKEN = "remote-observation-token-7a21"

const embeddedOnly = { embedded: { runtime_id: "local", store: "memory" } } as const

/** Every observation record, oldest first. */
const observations = (client: Parameters<typeof call>[0], query = "") =>
  Effect.map(call(client, "GET", `/api/audit/streams?limit=500${query}`), (reply) => {
    assert.strictEqual(reply.status, 200, reply.text)
    return (reply.json.items as Array<any>).slice().reverse()
  })

describe("audited observation", () => {
  it.scopedLive("many streams opened and closed at once: one record each, matching what each client received", () =>
    Effect.gen(function*() {
      const { client } = yield* startBackend(embeddedOnly)
      // Some history: three workers, one turn each, all finished before anyone watches.
      const workers: Array<string> = []
      for (let i = 0; i < 3; i++) {
        const created = yield* call(client, "POST", "/api/runtimes/local/workers", {
          body: { display_name: `W${i}`, engine: echo({ chunk_size: 3 }) }
        })
        assert.strictEqual(created.status, 201, created.text)
        const id = created.json.worker.worker_id as string
        workers.push(id)
        const input = yield* call(client, "POST", `/api/runtimes/local/workers/${id}/input`, {
          body: { text: `hello number ${i}` }
        })
        assert.strictEqual(input.status, 202)
      }
      for (const id of workers) {
        yield* eventually(
          call(client, "GET", `/api/runtimes/local/workers/${id}`),
          (r) => r.json.status === "idle" && r.json.turn_count !== 0,
          "the worker idle after its turn"
        )
      }
      // The head: where a stream opened now starts. A stream from `earliest` is complete when it reaches it.
      const head = yield* Effect.scoped(Effect.gen(function*() {
        const sse = yield* connectSse(client, "/api/events", { headers: { "x-request-id": "head-probe" } })
        const raw = yield* eventually(Effect.sync(() => sse.raw()), (r) => r.includes("\n\n"), "the open frame")
        return /^: connected\nid: (\S+)\n\n/.exec(raw)![1]!
      }))
      const reference = yield* Effect.scoped(Effect.gen(function*() {
        const sse = yield* connectSse(client, "/api/events?cursor=earliest")
        return yield* sse.waitFor((f) => f.at(-1)?.id === head, "the whole backlog")
      }))
      const perWorker = new Map(workers.map((w) => [w, reference.filter((f) => f.data.worker_id === w).length]))
      assert.isTrue([...perWorker.values()].every((n) => n > 2))

      // 24 streams at once: the all-runtimes stream and each worker's, from `earliest`; each closes once complete.
      const plans = Array.from({ length: 24 }, (_, i) => {
        const worker = i % 2 === 0 ? undefined : workers[i % 3]!
        return {
          requestId: `watch-${i}`,
          worker,
          path: worker === undefined ? "/api/events" : `/api/runtimes/local/workers/${worker}/events`,
          expected: worker === undefined ? reference.length : perWorker.get(worker)!
        }
      })
      const received = yield* Effect.forEach(plans, (plan) =>
        Effect.scoped(Effect.gen(function*() {
          const sse = yield* connectSse(client, plan.path, {
            headers: { "x-request-id": plan.requestId, "last-event-id": "earliest" }
          })
          assert.strictEqual(sse.status, 200)
          const frames: ReadonlyArray<SseFrame> = yield* sse.waitFor((f) => f.length >= plan.expected, plan.requestId)
          return { plan, frames }
        })), { concurrency: "unbounded" })

      // A stream refused before it starts is not an observation.
      const refused = yield* call(client, "GET", "/api/events?cursor=not-a-cursor")
      assert.strictEqual(refused.status, 400)

      const rows = yield* eventually(
        observations(client),
        (items) => items.filter((r) => r.request_id.startsWith("watch-")).length === plans.length,
        "a record for every stream"
      )
      assert.strictEqual(rows.length, plans.length + 2)
      const byRequest = new Map(rows.map((r) => [r.request_id, r]))
      for (const { frames, plan } of received) {
        const row = byRequest.get(plan.requestId)!
        assert.deepStrictEqual(
          [row.stream, row.runtime_id, row.worker_id, row.cursor, row.actor, row.end_reason, row.error_tag],
          [plan.worker === undefined ? "all" : "worker", plan.worker === undefined ? null : "local",
            plan.worker ?? null, "earliest", "token", "closed", null],
          plan.requestId
        )
        assert.strictEqual(row.events, frames.length, plan.requestId)
        assert.strictEqual(row.last_cursor, frames.at(-1)!.id, plan.requestId)
        assert.isAtLeast(Date.parse(row.closed_at), Date.parse(row.opened_at))
        assert.strictEqual(row.duration_ms, Date.parse(row.closed_at) - Date.parse(row.opened_at))
      }
      const probe = byRequest.get("head-probe")!
      assert.deepStrictEqual([probe.cursor, probe.start_cursor, probe.events, probe.last_cursor], [null, head, 0, null])
      const oneWorker = yield* observations(client, `&worker_id=${workers[1]}`)
      assert.strictEqual(oneWorker.length, plans.filter((p) => p.worker === workers[1]).length)
      const badLimit = yield* call(client, "GET", "/api/audit/streams?limit=0")
      assert.strictEqual(badLimit.status, 400)
      assert.strictEqual(badLimit.json._tag, "InvalidInput")
    }), 90_000)

  it.scopedLive("a stream that ends on its own says why (lagged), and a refused one is not recorded", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const first = yield* Scope.make()
      yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "gpu-box" }, port).pipe(Scope.extend(first))
      const { client } = yield* startBackend({
        embedded: null,
        remotes: [{ runtime_id: "gpu-box", endpoint: `http://127.0.0.1:${port}`, token: { env: "GPU_BOX_TOKEN" } }]
      }, { env: { GPU_BOX_TOKEN: REMOTE_TOKEN } })
      const refused = yield* call(client, "GET", "/api/runtimes/gpu-box/workers/nobody/events")
      assert.strictEqual(refused.status, 404)
      const sse = yield* eventually(
        Effect.gen(function*() {
          const sse = yield* connectSse(client, "/api/events", { headers: { "x-request-id": "will-lag" } })
          const raw = yield* eventually(Effect.sync(() => sse.raw()), (r) => r.includes("\n\n"), "the open frame")
          return { sse, followed: /^: connected\nid: \S+\n\n/.test(raw) && !raw.startsWith(": connected\n\n") }
        }),
        ({ followed }) => followed,
        "a stream that follows the remote"
      )
      yield* call(client, "POST", "/api/runtimes/gpu-box/workers", { body: { display_name: "Gone" } })
      yield* sse.sse.waitFor((f) => f.some((x) => x.event === "worker.created"), "the creation")
      // The remote comes back with a new (memory) store: the Backend's stream ends with stream.lagged.
      yield* Scope.close(first, Exit.void)
      yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "gpu-box" }, port)
      const frames = yield* sse.sse.waitFor((f) => f.some((x) => x.event === "stream.lagged"), "the lag notice")
      const rows = yield* eventually(
        observations(client),
        (items) => items.some((r) => r.request_id === "will-lag"),
        "the record of the lagged stream"
      )
      const row = rows.find((r) => r.request_id === "will-lag")!
      assert.deepStrictEqual(
        [row.end_reason, row.events, row.last_cursor, row.stream],
        ["lagged", frames.length, frames.at(-1)!.id, "all"]
      )
      assert.isFalse(rows.some((r) => r.worker_id === "nobody"))
    }), 60_000)
})
