import { echo, testPolicy } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { RuntimeClient } from "@yoi/runtime-api"
import { layerMemory } from "@yoi/worker-runtime"
import { Effect, Layer, Redacted } from "effect"
import { Auth, RuntimeServer } from "../src/index.js"
import { type Reply, request, TOKEN } from "./RawHttp.js"

const serve = () =>
  RuntimeServer.layerTest({ auth: Auth.token(Redacted.make(TOKEN)) }).pipe(
    Layer.provideMerge(layerMemory({ policy: testPolicy, runtimeId: "rt-busy", queueLimit: 2 }))
  )

const post = (path: string, body?: unknown) =>
  request("POST", path, body === undefined ? {} : { body: JSON.stringify(body) })

const assertError = (reply: Reply, status: number, tag: string) => {
  assert.strictEqual(reply.status, status, reply.text)
  assert.strictEqual(reply.json?._tag, tag, reply.text)
  assert.isString(reply.json.message)
}

/** A worker whose turns take a minute: it stays `running` until cancelled. */
const slow = echo({ delay_ms: 60_000, chunk_size: 1 })

describe("busy policies, the queue and cancel by turn over HTTP", () => {
  it.live("input with busy: enqueue (202 queued, 429 QueueFull), the queue routes, interrupt", () =>
    Effect.gen(function*() {
      yield* post("/v1/workers", { worker_id: "q", display_name: "Q", engine: slow })
      const first = yield* post("/v1/workers/q/input", { text: "first", busy: "enqueue" })
      assert.strictEqual(first.status, 202)
      assert.match(first.json.turn_id, /^t_/)
      const a = yield* post("/v1/workers/q/input", { text: "second", busy: "enqueue" })
      const b = yield* post("/v1/workers/q/input", { text: "third", busy: "enqueue" })
      assert.deepStrictEqual([a.status, a.json.queued, a.json.position], [202, true, 1])
      assert.deepStrictEqual([b.status, b.json.queued, b.json.position], [202, true, 2])
      assert.strictEqual(b.json.worker.queue_length, 2)
      assertError(yield* post("/v1/workers/q/input", { text: "fourth", busy: "enqueue" }), 429, "QueueFull")
      assert.strictEqual((yield* post("/v1/workers/q/input", { text: "x", busy: "later" })).status, 400)

      const queue = yield* request("GET", "/v1/workers/q/queue")
      assert.strictEqual(queue.status, 200)
      assert.deepStrictEqual(queue.json.items.map((i: any) => [i.input_id, i.position, i.text]), [
        [a.json.input_id, 1, "second"],
        [b.json.input_id, 2, "third"]
      ])
      assert.strictEqual(queue.json.limit, 2)

      const one = yield* request("DELETE", `/v1/workers/q/queue/${a.json.input_id}`)
      assert.strictEqual(one.status, 200, one.text)
      assert.deepStrictEqual(one.json.cancelled, [a.json.input_id])
      assertError(yield* request("DELETE", `/v1/workers/q/queue/${a.json.input_id}`), 404, "QueuedInputNotFound")
      const all = yield* request("DELETE", "/v1/workers/q/queue")
      assert.deepStrictEqual([all.status, all.json.cancelled], [200, [b.json.input_id]])
      assertError(yield* request("GET", "/v1/workers/nope/queue"), 404, "WorkerNotFound")

      const interrupt = yield* post("/v1/workers/q/input", { text: "now", busy: "interrupt" })
      assert.strictEqual(interrupt.status, 202)
      assert.notStrictEqual(interrupt.json.turn_id, first.json.turn_id)
      const worker = (yield* request("GET", "/v1/workers/q")).json
      assert.deepStrictEqual([worker.current_turn_id, worker.last_turn.turn_id, worker.last_turn.outcome], [
        interrupt.json.turn_id,
        first.json.turn_id,
        "cancelled"
      ])
    }).pipe(Effect.provide(serve())))

  it.live("cancel: an empty body, {turn_id} of an ended turn, an unknown turn, wait_ms bounds", () =>
    Effect.gen(function*() {
      yield* post("/v1/workers", { worker_id: "c", display_name: "C", engine: slow })
      const t1 = (yield* post("/v1/workers/c/input", { text: "one" })).json.turn_id
      const bare = yield* post("/v1/workers/c/cancel")
      assert.deepStrictEqual([bare.status, bare.json.cancelled, bare.json.turn_id, bare.json.outcome], [
        200,
        true,
        t1,
        "cancelled"
      ])
      const t2 = (yield* post("/v1/workers/c/input", { text: "two" })).json.turn_id
      const stale = yield* post("/v1/workers/c/cancel", { turn_id: t1 })
      assert.deepStrictEqual([stale.status, stale.json.cancelled, stale.json.turn_id, stale.json.outcome], [
        200,
        false,
        t1,
        "cancelled"
      ])
      assert.strictEqual(stale.json.worker.current_turn_id, t2, "the later turn still runs")
      assertError(yield* post("/v1/workers/c/cancel", { turn_id: "t_unknown" }), 404, "TurnNotFound")
      assertError(yield* post("/v1/workers/c/cancel?wait_ms=60001", {}), 400, "InvalidInput")
      assert.strictEqual((yield* post("/v1/workers/c/cancel?wait_ms=soon", {})).status, 400)
      assert.strictEqual((yield* post("/v1/workers/c/cancel", { turn_id: t2, extra: 1 })).status, 400)
      const waited = yield* post("/v1/workers/c/cancel?wait_ms=5000", { turn_id: t2 })
      assert.deepStrictEqual([waited.status, waited.json.cancelled, waited.json.outcome], [200, true, "cancelled"])
    }).pipe(Effect.provide(serve())))

  it.live("the derived client reaches every new route", () =>
    Effect.gen(function*() {
      const c = yield* RuntimeClient.make({ token: Redacted.make(TOKEN), retries: 0 })
      yield* c.workers.create({ payload: { display_name: "D", engine: slow } }).pipe(
        Effect.flatMap(({ worker }) =>
          Effect.gen(function*() {
            const path = { worker_id: worker.worker_id }
            const running = yield* c.workers.input({ path, payload: { text: "go" } })
            const q = yield* c.workers.input({ path, payload: { text: "later", busy: "enqueue" } })
            assert.isTrue("queued" in q && q.queued)
            const listed = yield* c.workers.queue({ path })
            assert.strictEqual(listed.items.length, 1)
            const inputId = listed.items[0]!.input_id
            const removed = yield* c.workers.cancelQueued({ path: { ...path, input_id: inputId } })
            assert.deepStrictEqual(removed.cancelled, [inputId])
            const missing = yield* Effect.flip(c.workers.cancelQueued({ path: { ...path, input_id: inputId } }))
            assert.strictEqual(missing._tag, "QueuedInputNotFound")
            yield* c.workers.input({ path, payload: { text: "later again", busy: "enqueue" } })
            assert.strictEqual((yield* c.workers.clearQueue({ path })).cancelled.length, 1)
            const turnId = "turn_id" in running ? running.turn_id : ""
            const cancelled = yield* c.workers.cancel({
              path,
              payload: { turn_id: turnId },
              urlParams: { wait_ms: 5000 }
            })
            assert.deepStrictEqual([cancelled.cancelled, cancelled.turn_id, cancelled.outcome], [true, turnId, "cancelled"])
            const unknown = yield* Effect.flip(c.workers.cancel({ path, payload: { turn_id: "t_x" }, urlParams: {} }))
            assert.strictEqual(unknown._tag, "TurnNotFound")
          })
        )
      )
    }).pipe(Effect.provide(serve())))
})
