import { echo, testPolicy } from "@yoi/worker-runtime/testing"
import { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { RuntimeClient, RuntimeEvents, type RuntimeEventsOptions } from "@yoi/runtime-api"
import { type Domain, EventLog, layerMemory, Runtime, type RuntimeOptions } from "@yoi/worker-runtime"
import { Chunk, Effect, Exit, Fiber, Layer, Option, Queue, Redacted, Scope, Stream } from "effect"
import { layerSqlite } from "@yoi/worker-runtime/sqlite"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Auth, RuntimeServer } from "../src/index.js"
import type * as Sse from "../src/Sse.js"
import { appendEvents, connect, contiguous, eventually, markOf, port, TOKEN } from "./SseTestClient.js"

const fast: RuntimeEventsOptions = {
  token: Redacted.make(TOKEN),
  initialDelay: "10 millis",
  maxDelay: "100 millis",
  maxRetries: 200
}

const serve = (options: { readonly runtime?: RuntimeOptions; readonly events?: Partial<Sse.SseOptions> } = {}) =>
  RuntimeServer.layerTest({ auth: Auth.token(Redacted.make(TOKEN)), docs: false, events: options.events }).pipe(
    Layer.provideMerge(layerMemory({ policy: testPolicy, runtimeId: "rt-client", ...options.runtime }))
  )

/** A client whose `requests()` counts the HTTP requests it made (connection attempts). */
const client = (options: RuntimeEventsOptions = fast) =>
  Effect.gen(function*() {
    let requests = 0
    const http = HttpClient.tapRequest(yield* HttpClient.HttpClient, () => Effect.sync(() => void requests++))
    const events = yield* RuntimeEvents.make(options).pipe(Effect.provideService(HttpClient.HttpClient, http))
    return { ...events, requests: () => requests }
  })

/** Runs `events` in the background, pushing every event into a queue the test can read from. */
const collect = (events: Stream.Stream<Domain.RuntimeEvent, unknown>) =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Domain.RuntimeEvent>()
    const fiber = yield* Effect.forkScoped(Stream.runForEach(events, (e) => Queue.offer(queue, e)))
    const takeN = (n: number) => Effect.map(Queue.takeBetween(queue, n, n), Chunk.toArray)
    return { queue, fiber, takeN }
  })

describe("RuntimeEvents (the SSE client) against the server", () => {
  it.live("streams decoded envelopes from a cursor, per worker, and exposes the last cursor", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const events = yield* client()
      const start = yield* rt.headCursor
      const a = (yield* rt.createWorker({ display_name: "A" })).worker.worker_id
      yield* rt.createWorker({ display_name: "B" })
      yield* rt.stop(a)

      const all = events.follow({ cursor: start })
      assert.deepStrictEqual(yield* all.lastCursor, Option.some(start))
      const got = Chunk.toArray(yield* Stream.runCollect(Stream.take(all.events, 3)))
      assert.deepStrictEqual(got.map((e) => e.kind), ["worker.created", "worker.created", "worker.status"])
      assert.deepStrictEqual(yield* all.lastCursor, Option.some(got[2]!.cursor))

      const onlyA = yield* Stream.runCollect(Stream.take(events.stream({ cursor: start, workerId: a }), 2))
      assert.deepStrictEqual(Chunk.toArray(onlyA).map((e) => `${e.kind}:${e.worker_id}`), [
        `worker.created:${a}`,
        `worker.status:${a}`
      ])
    }).pipe(Effect.scoped, Effect.provide(serve())))

  it.live("a stream that lags is resumed by the client with no gap and no duplicate", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const events = yield* client()
      const start = yield* rt.headCursor
      const log = yield* EventLog.EventLog
      const { takeN } = yield* collect(events.stream({ cursor: start }))
      yield* eventually(Effect.sync(() => log.subscriberCount() === 1), "the client to connect")
      // Batches larger than the subscriber buffer overflow it at once: every batch lags the server-side stream.
      yield* appendEvents(3000, { batch: 100 })
      const got = yield* takeN(3000)
      assert.isAbove(events.requests(), 1, "the client reconnected after stream.lagged")
      const from = got[0]!.seq - 1
      assert.isTrue(contiguous(got, from, from + 3000))
      assert.deepStrictEqual(got.map(markOf), Array.from({ length: 3000 }, (_, i) => i))
    }).pipe(Effect.scoped, Effect.provide(serve({ runtime: { subscriberBuffer: 16 } }))))

  it.live("typed failures are not retried: CursorExpired, CursorInvalid, WorkerNotFound, Unauthorized", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const old = yield* rt.headCursor
      yield* appendEvents(200)
      const events = yield* client()
      const expired = yield* Stream.runDrain(events.stream({ cursor: old })).pipe(Effect.flip)
      assert.strictEqual(expired._tag, "CursorExpired")
      assert.strictEqual(events.requests(), 1)
      const invalid = yield* Stream.runDrain(events.stream({ cursor: "c1.nope" })).pipe(Effect.flip)
      assert.strictEqual(invalid._tag, "CursorInvalid")
      const missing = yield* Stream.runDrain(events.stream({ workerId: "w_missing" })).pipe(Effect.flip)
      assert.strictEqual(missing._tag, "WorkerNotFound")
      assert.strictEqual(events.requests(), 3, "one request each, no retry")
      const intruder = yield* client({ ...fast, token: Redacted.make("not-the-token") })
      const refused = yield* Stream.runDrain(intruder.stream()).pipe(Effect.flip)
      assert.strictEqual(refused._tag, "Unauthorized")
      assert.strictEqual(intruder.requests(), 1)
    }).pipe(Effect.scoped, Effect.provide(serve({ runtime: { eventBacklog: 100 } }))))

  it.live("a 503 (stream limit) is retried with backoff until a slot frees", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const holder = yield* connect("/v1/events")
      assert.strictEqual(holder.status, 200)
      const events = yield* client()
      const { takeN } = yield* collect(events.stream({ cursor: yield* rt.headCursor }))
      yield* eventually(Effect.sync(() => events.requests() >= 3), "a few refused attempts")
      yield* holder.destroy
      yield* appendEvents(3)
      const got = yield* takeN(3)
      assert.deepStrictEqual(got.map(markOf), [0, 1, 2])
    }).pipe(Effect.scoped, Effect.provide(serve({ events: { maxStreams: 1 } }))))

  it.live("list then watch: a transcript page's cursor streams the rest with no gap and no duplicate", () =>
    Effect.gen(function*() {
      const rest = yield* RuntimeClient.make({ token: Redacted.make(TOKEN) })
      const events = yield* client()
      const created = yield* rest.workers.create({
        payload: { display_name: "Slow", engine: echo({ chunk_size: 4, delay_ms: 20 }) }
      })
      const workerId = created.worker.worker_id
      const head = yield* rest.runtime.summary().pipe(Effect.map((s) => s.cursor))
      const watchAll = yield* collect(events.stream({ cursor: head, workerId, kinds: ["turn.completed"] }))
      yield* rest.workers.input({ path: { worker_id: workerId }, payload: { text: "first turn of text" } })
      yield* watchAll.takeN(1)
      yield* rest.workers.input({ path: { worker_id: workerId }, payload: { text: "second turn, listed mid-way" } })
      // Listed while the second turn runs: its user input is in the page, its reply is not yet.
      const page = yield* rest.workers.transcript({ path: { worker_id: workerId }, urlParams: {} })
      const watched = yield* collect(
        events.stream({ cursor: page.cursor, workerId, kinds: ["transcript.appended", "turn.completed"] })
      )
      const entries: Array<Domain.TranscriptEntry> = []
      while (true) {
        const [e] = yield* watched.takeN(1)
        if (e!.kind === "turn.completed") break
        if (e!.kind === "transcript.appended") entries.push(e!.data.entry)
      }
      const final = yield* rest.workers.transcript({ path: { worker_id: workerId }, urlParams: {} })
      assert.isAbove(entries.length, 0)
      assert.deepStrictEqual([...page.items, ...entries], final.items)
    }).pipe(Effect.scoped, Effect.provide(serve())))
})

describe("RuntimeEvents across a server restart", () => {
  const runtimeOn = <E>(runtime: Layer.Layer<Runtime.Runtime | EventLog.EventLog, E>, listen: number) =>
    RuntimeServer.layer({ host: "127.0.0.1", port: listen, auth: Auth.token(Redacted.make(TOKEN)), graceMs: 100 })
      .pipe(Layer.provideMerge(runtime))

  it.live("with the memory store the cursor of the previous life is refused as CursorInvalid, typed", () =>
    Effect.gen(function*() {
      const first = yield* Scope.make()
      const ctx1 = yield* Layer.buildWithScope(runtimeOn(layerMemory({ policy: testPolicy, runtimeId: "rt-restart" }), 0), first)
      const listen = yield* Effect.provide(port, ctx1)
      const events = yield* RuntimeEvents.make({ ...fast, baseUrl: `http://127.0.0.1:${listen}` })
      const follower = events.follow()
      const result = yield* Effect.forkScoped(Stream.runCollect(follower.events))
      yield* eventually(
        Effect.map(EventLog.EventLog, (log) => log.subscriberCount() === 1).pipe(Effect.provide(ctx1)),
        "the client to connect"
      )
      yield* appendEvents(2).pipe(Effect.provide(ctx1))
      yield* eventually(
        Effect.map(follower.lastCursor, (c) => Option.isSome(c) && c.value.length > 0),
        "the events to arrive"
      )
      yield* Scope.close(first, Exit.void)

      const second = yield* Scope.make()
      yield* Layer.buildWithScope(runtimeOn(layerMemory({ policy: testPolicy, runtimeId: "rt-restart" }), listen), second)
      const failure = yield* Fiber.join(result).pipe(Effect.flip)
      yield* Scope.close(second, Exit.void)
      assert.strictEqual(failure._tag, "CursorInvalid")
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))

  it.live("with the SQLite store the client resumes across the restart: durable events, no gap, no duplicate", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "yoi-sse-restart-"))),
        (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true }))
      )
      const store = () => layerSqlite({ policy: testPolicy, filename: join(dir, "runtime.db"), runtimeId: "rt-durable", synchronous: "normal" })
      // Through the Runtime, so the events are committed to the store like any real ones.
      const mark = (from: number, count: number) =>
        Effect.flatMap(Runtime.Runtime, (rt) =>
          Effect.forEach(Array.from({ length: count }, (_, i) => from + i), (i) => rt.createWorker({ display_name: `n${i}` })))

      const first = yield* Scope.make()
      const ctx1 = yield* Layer.buildWithScope(runtimeOn(store(), 0), first)
      const listen = yield* Effect.provide(port, ctx1)
      const events = yield* RuntimeEvents.make({ ...fast, baseUrl: `http://127.0.0.1:${listen}` })
      const { takeN } = yield* collect(events.stream({ kinds: ["worker.created"] }))
      yield* eventually(
        Effect.map(EventLog.EventLog, (log) => log.subscriberCount() === 1).pipe(Effect.provide(ctx1)),
        "the client to connect"
      )
      yield* mark(0, 3).pipe(Effect.provide(ctx1))
      const before = yield* takeN(3)
      yield* Scope.close(first, Exit.void)

      // The new life appends durable events before it listens: the client must get them by replay.
      const second = yield* Scope.make()
      const runtime2 = yield* Layer.buildWithScope(store(), second)
      yield* mark(3, 2).pipe(Effect.provide(runtime2))
      yield* Layer.buildWithScope(runtimeOn(Layer.succeedContext(runtime2), listen), second)
      const replayed = yield* takeN(2)
      yield* mark(5, 2).pipe(Effect.provide(runtime2))
      const live = yield* takeN(2)
      yield* Scope.close(second, Exit.void)

      const all = [...before, ...replayed, ...live]
      const names = all.map((e) => (e.kind === "worker.created" ? e.data.worker.display_name : e.kind))
      assert.deepStrictEqual(names, ["n0", "n1", "n2", "n3", "n4", "n5", "n6"])
      assert.isTrue(all.every((e, i) => i === 0 || e.seq > all[i - 1]!.seq), "seqs increase")
      assert.strictEqual(new Set(all.map((e) => e.cursor)).size, all.length)
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layerUndici)))
})
