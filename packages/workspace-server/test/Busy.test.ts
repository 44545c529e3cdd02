import { echo } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import type { HttpClient } from "@effect/platform"
import { Effect } from "effect"
import { call, eventually, startBackend, startRuntimeServer } from "./support.js"

const REMOTE_TOKEN = "remote-runtime-token-busy-5c1e"

/** Turns that take a minute: a worker stays `running` until its turn is cancelled. */
const slow = echo({ delay_ms: 60_000, chunk_size: 1 })

/** Busy policies and cancel by turn through the Backend's browser API, on one runtime. */
const exercise = (client: HttpClient.HttpClient, runtimeId: string) =>
  Effect.gen(function*() {
    const created = yield* call(client, "POST", `/api/runtimes/${runtimeId}/workers`, {
      body: { display_name: "Busy", engine: slow }
    })
    assert.strictEqual(created.status, 201, JSON.stringify(created.json))
    const base = `/api/runtimes/${runtimeId}/workers/${created.json.worker.worker_id}`
    const first = yield* call(client, "POST", `${base}/input`, { body: { text: "first" } })
    assert.strictEqual(first.status, 202)
    const busy = yield* call(client, "POST", `${base}/input`, { body: { text: "plain" } })
    assert.deepStrictEqual([busy.status, busy.json._tag], [409, "WorkerBusy"])

    const q1 = yield* call(client, "POST", `${base}/input`, { body: { text: "q1", busy: "enqueue" } })
    const q2 = yield* call(client, "POST", `${base}/input`, { body: { text: "q2", busy: "enqueue" } })
    assert.deepStrictEqual([q1.status, q1.json.queued, q1.json.position], [202, true, 1])
    assert.deepStrictEqual([q2.status, q2.json.queued, q2.json.position], [202, true, 2])
    const full = yield* call(client, "POST", `${base}/input`, { body: { text: "q3", busy: "enqueue" } })
    assert.deepStrictEqual([full.status, full.json._tag, full.json.limit], [429, "QueueFull", 2])
    const bad = yield* call(client, "POST", `${base}/input`, { body: { text: "x", busy: "whenever" } })
    assert.deepStrictEqual([bad.status, bad.json._tag], [400, "InvalidInput"])
    assert.strictEqual((yield* call(client, "GET", base)).json.queue_length, 2)
    const listed = yield* call(client, "GET", `${base}/queue`)
    assert.deepStrictEqual(listed.json.items.map((i: any) => [i.input_id, i.position]), [
      [q1.json.input_id, 1],
      [q2.json.input_id, 2]
    ])
    const one = yield* call(client, "DELETE", `${base}/queue/${q2.json.input_id}`)
    assert.deepStrictEqual([one.status, one.json.cancelled], [200, [q2.json.input_id]])
    const gone = yield* call(client, "DELETE", `${base}/queue/${q2.json.input_id}`)
    assert.deepStrictEqual([gone.status, gone.json._tag], [404, "QueuedInputNotFound"])

    const interrupt = yield* call(client, "POST", `${base}/input`, { body: { text: "now", busy: "interrupt" } })
    assert.strictEqual(interrupt.status, 202)
    const stale = yield* call(client, "POST", `${base}/cancel`, { body: { turn_id: first.json.turn_id } })
    assert.deepStrictEqual([stale.status, stale.json.cancelled, stale.json.outcome], [200, false, "cancelled"])
    assert.strictEqual(stale.json.worker.current_turn_id, interrupt.json.turn_id)
    const unknown = yield* call(client, "POST", `${base}/cancel`, { body: { turn_id: "t_unknown" } })
    assert.deepStrictEqual([unknown.status, unknown.json._tag], [404, "TurnNotFound"])
    const badWait = yield* call(client, "POST", `${base}/cancel?wait_ms=soon`, { body: {} })
    assert.deepStrictEqual([badWait.status, badWait.json._tag], [400, "InvalidInput"])
    const tooLong = yield* call(client, "POST", `${base}/cancel?wait_ms=60001`, { body: {} })
    assert.deepStrictEqual([tooLong.status, tooLong.json._tag], [400, "InvalidInput"])
    const waited = yield* call(client, "POST", `${base}/cancel?wait_ms=5000`, {
      body: { turn_id: interrupt.json.turn_id }
    })
    assert.deepStrictEqual([waited.status, waited.json.cancelled, waited.json.outcome], [200, true, "cancelled"])
    // Cancelling the running turn lets the queue go on: q1 starts at once.
    const next = yield* eventually(
      call(client, "GET", base),
      (r) => r.json.queue_length === 0 && r.json.status === "running",
      "q1 started"
    )
    assert.notStrictEqual(next.json.current_turn_id, interrupt.json.turn_id)
    yield* call(client, "POST", `${base}/input`, { body: { text: "q4", busy: "enqueue" } })
    yield* call(client, "POST", `${base}/input`, { body: { text: "q5", busy: "enqueue" } })
    const all = yield* call(client, "DELETE", `${base}/queue`)
    assert.deepStrictEqual([all.status, all.json.cancelled.length, all.json.worker.queue_length], [200, 2, 0])
    const audit = yield* call(client, "GET", `/api/audit?worker_id=${created.json.worker.worker_id}&action=cancel`)
    assert.isAtLeast(audit.json.items.length, 6, "queue cancels are audited as cancel")
    const bare = yield* call(client, "POST", `${base}/cancel`)
    assert.deepStrictEqual([bare.status, bare.json.cancelled], [200, true])
  })

describe("busy policies through the Backend", () => {
  it.scopedLive("embedded runtime: enqueue, QueueFull from the embedded queue_limit, interrupt, cancel by turn", () =>
    Effect.gen(function*() {
      const { client } = yield* startBackend({ embedded: { runtime_id: "local", store: "memory", queue_limit: 2 } })
      yield* exercise(client, "local")
    }))

  it.scopedLive("remote runtime: the same rules through the derived client", () =>
    Effect.gen(function*() {
      const remote = yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "gpu-box", queueLimit: 2 })
      const { client } = yield* startBackend({
        embedded: { runtime_id: "local", store: "memory" },
        remotes: [{ runtime_id: "gpu-box", endpoint: remote.url, token: { env: "GPU_BOX_TOKEN" } }]
      }, { env: { GPU_BOX_TOKEN: REMOTE_TOKEN } })
      yield* eventually(
        call(client, "GET", "/api/runtimes/gpu-box"),
        (r) => r.json.status === "online",
        "gpu-box online"
      )
      yield* exercise(client, "gpu-box")
    }))
})
