import { testPolicy } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Cursor, Domain, EventLog, layerMemory, Runtime, type RuntimeOptions } from "@yoi/worker-runtime"
import { Chunk, Effect, Exit, Fiber, Layer, Redacted, Schema, Scope, Stream } from "effect"
import { Auth, RuntimeServer } from "../src/index.js"
import * as Sse from "../src/Sse.js"
import { appendEvents, connect, contiguous, eventually, markOf, TOKEN } from "./SseTestClient.js"

const serve = (options: { readonly runtime?: RuntimeOptions; readonly events?: Partial<Sse.SseOptions> } = {}) =>
  RuntimeServer.layerTest({ auth: Auth.token(Redacted.make(TOKEN)), docs: false, events: options.events }).pipe(
    Layer.provideMerge(layerMemory({ policy: testPolicy, runtimeId: "rt-test", ...options.runtime }))
  )

const seqOf = (cursor: string) => Cursor.decode(cursor).pipe((e) => (e._tag === "Right" ? e.right.seq : -1))

/** The events the core itself delivers from `cursor` with the same filter: what the wire must carry. */
const coreEvents = (query: Runtime.SubscribeQuery, count: number) =>
  Effect.gen(function*() {
    const rt = yield* Runtime.Runtime
    const stream = yield* rt.subscribe(query)
    return Chunk.toArray(yield* Stream.runCollect(Stream.take(stream, count)))
  }).pipe(Effect.scoped)

const errorBody = (text: string) => JSON.parse(text) as { readonly _tag: string; readonly message: string }

describe("GET /v1/events", () => {
  it.live("answers text/event-stream, flushes a connect frame naming its start, then carries exact frames", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const log = yield* EventLog.EventLog
      const head = yield* rt.headCursor
      const s = yield* connect("/v1/events")
      assert.strictEqual(s.status, 200)
      assert.strictEqual(s.headers["content-type"], "text/event-stream")
      assert.strictEqual(s.headers["cache-control"], "no-cache")
      yield* s.waitFor(() => s.text().length > 0, "the connect frame")
      assert.strictEqual(s.text(), `: connected\nid: ${head}\n\n`)

      const { worker } = yield* rt.createWorker({ display_name: "Ada" })
      yield* rt.stop(worker.worker_id)
      const last = log.lastSeq()
      yield* s.waitFor(() => s.events().at(-1)?.seq === last, "the worker's events")
      const expected = yield* coreEvents({ cursor: head }, last - seqOf(head))
      assert.isAbove(expected.length, 1)
      assert.strictEqual(s.text(), Sse.openFrame(head) + expected.map(Sse.eventFrame).join(""))
      assert.deepStrictEqual(s.events().map((e) => e.kind).slice(0, 1), ["worker.created"])
    }).pipe(Effect.scoped, Effect.provide(serve())))

  it.live("filters by worker (both routes) and by kinds", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const a = (yield* rt.createWorker({ display_name: "A" })).worker.worker_id
      const b = (yield* rt.createWorker({ display_name: "B" })).worker.worker_id
      yield* rt.stop(a)
      yield* rt.stop(b)
      yield* rt.restore(a)

      const scoped = yield* connect(`/v1/workers/${a}/events?cursor=earliest`)
      const byParam = yield* connect(`/v1/events?cursor=earliest&worker_id=${b}`)
      const byKind = yield* connect("/v1/events?cursor=earliest&kinds=worker.created,%20worker.status")
      const forA = yield* coreEvents({ cursor: "earliest", worker_id: a }, 3)
      const forB = yield* coreEvents({ cursor: "earliest", worker_id: b }, 2)
      yield* scoped.waitFor(() => scoped.events().length >= forA.length, "worker A's events")
      yield* byParam.waitFor(() => byParam.events().length >= forB.length, "worker B's events")
      yield* byKind.waitFor(() => byKind.events().length >= 5, "created and status events")

      assert.deepStrictEqual(scoped.events(), forA)
      assert.isTrue(scoped.events().every((e) => e.worker_id === a))
      assert.deepStrictEqual(byParam.events(), forB)
      assert.isTrue(byParam.events().every((e) => e.worker_id === b))
      assert.deepStrictEqual(
        byKind.events().map((e) => `${e.kind}:${e.worker_id === a ? "a" : "b"}`).slice(0, 5),
        ["worker.created:a", "worker.created:b", "worker.status:a", "worker.status:b", "worker.status:a"]
      )
      // "earliest" has no start cursor to announce: the connect frame is a bare comment.
      assert.isTrue(scoped.text().startsWith(": connected\n\nid: "))
    }).pipe(Effect.scoped, Effect.provide(serve())))

  it.live("resumes after forced disconnects with Last-Event-ID and ?cursor=: no gap, no duplicate", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const total = 5000
      const start = yield* rt.headCursor
      const producer = yield* Effect.fork(appendEvents(total, { batch: 25 }))
      const collected: Array<Domain.RuntimeEvent> = []
      let cursor = start
      let connections = 0
      while (collected.length < total) {
        const viaHeader = connections % 2 === 0
        const s = yield* connect(
          viaHeader ? "/v1/events" : `/v1/events?cursor=${cursor}`,
          viaHeader ? { headers: { "last-event-id": cursor } } : {}
        )
        assert.strictEqual(s.status, 200)
        connections += 1
        const want = Math.min(total - collected.length, 600)
        yield* s.waitFor(() => s.events().length >= want, `${want} events`)
        yield* s.destroy
        // Whatever arrived after the first `want` is dropped: the next connection must resend it.
        const got = s.events().slice(0, want)
        collected.push(...got)
        cursor = got[got.length - 1]!.cursor
      }
      yield* Fiber.join(producer)
      assert.isAtLeast(connections, 9)
      assert.isTrue(contiguous(collected, seqOf(start), seqOf(start) + total), "contiguous seqs across reconnects")
      const marks = collected.map(markOf)
      assert.deepStrictEqual(marks, Array.from({ length: total }, (_, i) => i))
    }).pipe(Effect.scoped, Effect.provide(serve({ runtime: { eventBacklog: 20_000, subscriberBuffer: 20_000 } }))))

  it.live("typed errors before the stream starts: expired, invalid, foreign, unknown worker, bad kinds, no token", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const old = yield* rt.headCursor
      yield* appendEvents(300)
      const fresh = yield* rt.headCursor
      const check = (path: string, status: number, tag: string, options: Parameters<typeof connect>[1] = {}) =>
        Effect.gen(function*() {
          const s = yield* connect(path, options)
          yield* s.waitFor(() => s.ended(), `the ${status} body`)
          assert.strictEqual(s.status, status, path)
          assert.strictEqual(errorBody(s.text())._tag, tag, path)
          return errorBody(s.text())
        })
      const expired = yield* check(`/v1/events?cursor=${old}`, 410, "CursorExpired")
      assert.match(expired.message, /re-list the transcript/)
      yield* check("/v1/events?cursor=garbage", 400, "CursorInvalid")
      yield* check(`/v1/events?cursor=${Cursor.encode("otherstore", 3)}`, 400, "CursorInvalid")
      yield* check("/v1/events", 400, "CursorInvalid", { headers: { "last-event-id": "garbage" } })
      const s = yield* connect("/v1/events?cursor=garbage", { headers: { "last-event-id": fresh } })
      assert.strictEqual(s.status, 200, "Last-Event-ID wins over ?cursor=")
      yield* check("/v1/workers/w_missing/events", 404, "WorkerNotFound")
      yield* check("/v1/events?worker_id=w_missing", 404, "WorkerNotFound")
      yield* check("/v1/events?kinds=worker.created,nope", 400, "InvalidInput")
      yield* check("/v1/events", 401, "Unauthorized", { token: null })
      yield* check("/v1/events", 401, "Unauthorized", { token: "wrong-token" })
    }).pipe(Effect.scoped, Effect.provide(serve({ runtime: { eventBacklog: 100 } }))))

  it.live("a reader that stops reading gets stream.lagged; other readers and the runtime carry on", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const log = yield* EventLog.EventLog
      const total = 4000
      const start = yield* rt.headCursor
      const healthy = yield* connect(`/v1/events?cursor=${start}`)
      const stalled = yield* connect(`/v1/events?cursor=${start}`)
      yield* stalled.waitFor(() => stalled.text().length > 0, "the connect frame")
      yield* stalled.pause
      for (let sent = 0; sent < total; sent += 16) {
        yield* appendEvents(16, { bytes: 8 * 1024, batch: 16 })
        yield* healthy.waitFor(() => healthy.events().length >= sent + 16, "the healthy reader")
      }
      assert.isTrue(contiguous(healthy.events(), seqOf(start), seqOf(start) + total))
      assert.strictEqual(log.subscriberCount(), 1, "the stalled subscriber was released, the healthy one kept")

      yield* stalled.resume
      yield* stalled.waitFor(() => stalled.ended(), "the end of the stalled stream")
      const lastItem = stalled.items().at(-1)
      assert.strictEqual(lastItem?._tag === "Event" ? lastItem.event : undefined, "stream.lagged")
      const events = stalled.events()
      const lagged = events[events.length - 1]!
      const delivered = events.slice(0, -1)
      assert.isAbove(delivered.length, 0)
      assert.isBelow(delivered.length, total)
      assert.isTrue(contiguous(delivered, seqOf(start), seqOf(start) + delivered.length))
      assert.strictEqual(lagged.kind, "stream.lagged")
      const resume = lagged.kind === "stream.lagged" ? lagged.data.resume_cursor : ""
      assert.strictEqual(resume, delivered[delivered.length - 1]!.cursor)
      assert.strictEqual(lagged.cursor, resume)

      const rest = yield* connect("/v1/events", { headers: { "last-event-id": resume } })
      yield* rest.waitFor(() => rest.events().length >= total - delivered.length, "the rest")
      assert.isTrue(contiguous([...delivered, ...rest.events()], seqOf(start), seqOf(start) + total))
    }).pipe(Effect.scoped, Effect.provide(serve({ runtime: { subscriberBuffer: 64 } }))))

  it.live("200 connect/disconnect cycles leave no subscription or slot behind; the limit answers 503", () =>
    Effect.gen(function*() {
      const log = yield* EventLog.EventLog
      for (let i = 0; i < 200; i++) {
        const s = yield* connect(i % 2 === 0 ? "/v1/events" : "/v1/events?cursor=earliest")
        yield* s.waitFor(() => s.text().length > 0, "the connect frame")
        assert.strictEqual(log.subscriberCount(), 1)
        yield* s.destroy
        yield* eventually(Effect.sync(() => log.subscriberCount() === 0), `cycle ${i} to clean up`)
      }
      const open = yield* Effect.forEach(Array.from({ length: 4 }), () => connect("/v1/events"))
      assert.deepStrictEqual(open.map((s) => s.status), [200, 200, 200, 200])
      const refused = yield* connect("/v1/events")
      yield* refused.waitFor(() => refused.ended(), "the 503 body")
      assert.strictEqual(refused.status, 503)
      assert.strictEqual(errorBody(refused.text())._tag, "RuntimeUnavailable")
      assert.match(errorBody(refused.text()).message, /too many event streams/)
      yield* open[0]!.destroy
      yield* eventually(Effect.sync(() => log.subscriberCount() === 3), "a slot to free")
      const again = yield* connect("/v1/events")
      assert.strictEqual(again.status, 200)
    }).pipe(Effect.scoped, Effect.provide(serve({ events: { maxStreams: 4 } }))))

  it.live("shutdown ends open streams with a final stream.error frame and does not hang", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(serve(), scope)
      const log = Layer.succeedContext(context)
      const s = yield* connect("/v1/events").pipe(Effect.provide(log))
      yield* s.waitFor(() => s.text().length > 0, "the connect frame")
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* s.waitFor(() => s.ended(), "the stream to end")
      yield* Fiber.join(closing)
      const last = s.items().at(-1)
      assert.strictEqual(last?._tag === "Event" ? last.event : undefined, "stream.error")
      // The frame's data is the error alone, decoded with the union's `stream.error` data schema.
      const data = Schema.decodeUnknownSync(Schema.parseJson(Domain.StreamErrorData))(
        last?._tag === "Event" ? last.data : "{}"
      )
      assert.strictEqual(data._tag, "RuntimeUnavailable")
      assert.strictEqual(data.message, "the runtime is shutting down")
      assert.isString(data.resume_cursor)
    }).pipe(Effect.scoped))
})
