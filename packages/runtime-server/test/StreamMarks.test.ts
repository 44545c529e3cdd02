import { testPolicy } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Cursor, EventLog, layerMemory, Runtime, type RuntimeOptions } from "@yoi/worker-runtime"
import { Chunk, Effect, Fiber, Layer, Redacted, Stream } from "effect"
import { Auth, RuntimeServer } from "../src/index.js"
import type * as Sse from "../src/Sse.js"
import { appendEvents, connect, contiguous, isMark, type RawStream, TOKEN } from "./SseTestClient.js"

const serve = (options: { readonly runtime?: RuntimeOptions; readonly events?: Partial<Sse.SseOptions> } = {}) =>
  RuntimeServer.layerTest({ auth: Auth.token(Redacted.make(TOKEN)), docs: false, events: options.events }).pipe(
    Layer.provideMerge(layerMemory({ policy: testPolicy, runtimeId: "rt-marks", ...options.runtime }))
  )

const seqOf = (cursor: string) => Cursor.decode(cursor).pipe((e) => (e._tag === "Right" ? e.right.seq : -1))

/** Appends `count` events of a worker (that needs not exist), in batches. */
const noise = (workerId: string, count: number, batch = 50) =>
  Effect.gen(function*() {
    const log = yield* EventLog.EventLog
    for (let i = 0; i < count; i += batch) {
      const n = Math.min(batch, count - i)
      yield* log.append(Array.from({ length: n }, (_, j) => ({
        worker_id: workerId,
        kind: "runtime.diagnostic" as const,
        data: { id: i + j, severity: "info" as const, code: "noise", message: "n" }
      })))
    }
  })

/** The last `stream.bookmark` a reader received. */
const lastBookmark = (s: RawStream) => s.all().filter((e) => e.kind === "stream.bookmark").at(-1)

/** What the core delivers for a query, marks left out: what the wire must carry. */
const coreEvents = (query: Runtime.SubscribeQuery, count: number) =>
  Effect.gen(function*() {
    const rt = yield* Runtime.Runtime
    const stream = yield* rt.subscribe(query)
    return Chunk.toArray(yield* Stream.runCollect(Stream.take(Stream.filter(stream, (e) => !isMark(e)), count)))
  }).pipe(Effect.scoped)

describe("stream.bookmark", () => {
  it.live("keeps quiet filtered readers resumable after 10x the backlog has passed: exactly the matching events", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const log = yield* EventLog.EventLog
      const quiet = (yield* rt.createWorker({ display_name: "Quiet" })).worker.worker_id
      const opened = yield* rt.headCursor
      const paths = [
        `/v1/workers/${quiet}/events`,
        `/v1/events?worker_id=${quiet}`,
        "/v1/events?kinds=worker.status",
        `/v1/workers/${quiet}/events?kinds=worker.status,worker.deleted`
      ]
      const readers = yield* Effect.forEach(
        Array.from({ length: 24 }, (_, i) => paths[i % paths.length]!),
        (path) => Effect.map(connect(path), (s) => ({ path, s })),
        { concurrency: "unbounded" }
      )
      // An unfiltered reader gets no bookmarks: every event moves its position.
      const unfiltered = yield* connect("/v1/events")

      yield* noise("w_noisy", 10 * 50 + 7)
      const head = log.lastSeq()
      for (const { path, s } of readers) {
        yield* s.waitFor(() => (lastBookmark(s)?.seq ?? -1) >= head, `a bookmark at the head on ${path}`)
        assert.deepStrictEqual(s.events(), [], `${path} saw no event`)
        const marks = s.all()
        // Each bookmark moved the position and names it in `id:` and `data.resume_cursor`.
        assert.isTrue(marks.every((m, i) => i === 0 || m.seq > marks[i - 1]!.seq), path)
        for (const m of marks) {
          assert.strictEqual(m.kind === "stream.bookmark" ? m.data.resume_cursor : "", m.cursor)
          assert.isAtMost(m.seq, log.lastSeq())
        }
        const ids = s.items().flatMap((i) => (i._tag === "Event" ? [i.id] : []))
        assert.deepStrictEqual(ids, marks.map((m) => m.cursor))
      }
      yield* unfiltered.waitFor(() => unfiltered.events().at(-1)?.seq === head, "the noise on the unfiltered stream")
      assert.deepStrictEqual(unfiltered.all().filter(isMark), [])
      yield* Effect.forEach(readers, ({ s }) => s.destroy, { discard: true })

      // While they are away: a few events they want, among less noise than the backlog holds.
      yield* rt.stop(quiet)
      yield* noise("w_noisy", 20)
      yield* rt.restore(quiet)
      yield* noise("w_noisy", 20)

      // Without bookmarks the position they opened at has expired.
      const stale = yield* connect(`/v1/workers/${quiet}/events`, { headers: { "last-event-id": opened } })
      assert.strictEqual(stale.status, 410)

      for (const { path, s } of readers) {
        const from = lastBookmark(s)!.cursor
        const query = path.includes("kinds=worker.status,")
          ? { worker_id: quiet, kinds: ["worker.status", "worker.deleted"] }
          : path.includes("kinds=")
            ? { kinds: ["worker.status"] }
            : { worker_id: quiet }
        const expected = yield* coreEvents({ ...query, cursor: from }, 2)
        assert.deepStrictEqual(expected.map((e) => e.kind), ["worker.status", "worker.status"])
        const again = yield* connect(path, { headers: { "last-event-id": from } })
        assert.strictEqual(again.status, 200, path)
        yield* again.waitFor(() => again.all().some((e) => e.kind === "stream.live"), `the live mark on ${path}`)
        assert.deepStrictEqual(again.events(), expected, path)
        yield* again.destroy
      }
    }).pipe(
      Effect.scoped,
      Effect.provide(serve({ runtime: { eventBacklog: 50, bookmarkIntervalMs: 20 } }))
    ))
})

describe("stream.live", () => {
  it.live("comes exactly once, after the last replayed event, to many readers opened with cursors during appends", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const log = yield* EventLog.EventLog
      const w = (yield* rt.createWorker({ display_name: "Live" })).worker.worker_id
      yield* noise(w, 300)
      const base = log.lastSeq()
      const producer = yield* Effect.fork(
        Effect.forever(noise(w, 10, 10).pipe(Effect.zipRight(appendEvents(10, { batch: 5 })), Effect.zipRight(Effect.sleep("1 millis"))))
      )
      const opened = yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) =>
        Effect.gen(function*() {
          const from = i % 4 === 0 ? "earliest" : Cursor.encode(log.epoch, base - (i * 7) % 250)
          const path = i % 2 === 0 ? `/v1/events?cursor=${from}` : `/v1/workers/${w}/events?cursor=${from}`
          const before = log.lastSeq()
          const s = yield* connect(path)
          const after = log.lastSeq()
          return { i, from, path, s, before, after }
        }), { concurrency: 8 })
      for (const { path, s } of opened) {
        yield* s.waitFor(() => {
          const at = s.all().findIndex((e) => e.kind === "stream.live")
          return at >= 0 && s.all().length > at + 5
        }, `the live mark and live events on ${path}`)
      }
      yield* Fiber.interrupt(producer)
      for (const { after, before, from, path, s } of opened) {
        const all = s.all()
        const lives = all.filter((e) => e.kind === "stream.live")
        assert.strictEqual(lives.length, 1, path)
        const live = lives[0]!
        const at = all.indexOf(live)
        // Its position is the head when the stream opened, and it splits history from live events.
        assert.isAtLeast(live.seq, before, path)
        assert.isAtMost(live.seq, after, path)
        const history = all.slice(0, at)
        const rest = all.slice(at + 1).filter((e) => !isMark(e))
        assert.isTrue(history.every((e) => e.seq <= live.seq), path)
        assert.isTrue(rest.every((e) => e.seq > live.seq), path)
        assert.strictEqual(live.kind === "stream.live" ? live.data.replayed : -1, history.length, path)
        const seqs = s.events().map((e) => e.seq)
        assert.strictEqual(new Set(seqs).size, seqs.length, `no duplicate on ${path}`)
        assert.isTrue(seqs.every((seq, k) => k === 0 || seq > seqs[k - 1]!), path)
        if (!path.includes("/workers/")) {
          const start = from === "earliest" ? history[0]!.seq - 1 : seqOf(from)
          assert.isTrue(contiguous(s.events(), start, start + s.events().length), `no gap on ${path}`)
        } else {
          assert.isTrue(s.events().every((e) => e.worker_id === w), path)
        }
      }
      // A stream opened at "now" has no history: no mark.
      const now = yield* connect("/v1/events")
      yield* appendEvents(3)
      yield* now.waitFor(() => now.events().length >= 3, "three live events")
      assert.deepStrictEqual(now.all().filter(isMark), [])
    }).pipe(Effect.scoped, Effect.provide(serve({ runtime: { eventBacklog: 100_000 } }))))
})

describe("the write-stall guard", () => {
  it.live("drops readers that stop reading while events flow; they resume from their last id with no gap", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const log = yield* EventLog.EventLog
      const start = yield* rt.headCursor
      const healthy = yield* Effect.forEach([1, 2, 3], () => connect(`/v1/events?cursor=${start}`))
      const stalled = yield* Effect.forEach([1, 2, 3, 4, 5], () => connect(`/v1/events?cursor=${start}`))
      for (const s of stalled) {
        yield* s.waitFor(() => s.text().length > 0, "the connect frame")
        yield* s.pause
      }
      assert.strictEqual(log.subscriberCount(), 8)
      // Events flow (16 KiB each) until every stalled reader is dropped; far fewer than the cap are needed.
      const cap = 4_000
      let sent = 0
      while (log.subscriberCount() > healthy.length) {
        assert.isBelow(sent, cap, "the stalled readers were dropped")
        yield* appendEvents(8, { bytes: 16 * 1024, batch: 8 })
        sent += 8
        for (const h of healthy) yield* h.waitFor(() => h.events().length >= sent, "a healthy reader")
        yield* Effect.sleep("10 millis")
      }
      // Their slots are free: with the limit at 8 open streams, five more can open.
      const more = yield* Effect.forEach([1, 2, 3, 4, 5], () => connect("/v1/events"))
      assert.deepStrictEqual(more.map((s) => s.status), [200, 200, 200, 200, 200])
      yield* Effect.forEach(more, (s) => s.destroy, { discard: true })
      for (const h of healthy) assert.isTrue(contiguous(h.events(), seqOf(start), seqOf(start) + sent))

      for (const s of stalled) {
        yield* s.resume
        yield* s.waitFor(() => s.ended(), "the end of the dropped stream")
        const got = s.events()
        assert.isBelow(got.length, sent, "it was dropped before it had everything")
        assert.isTrue(contiguous(got, seqOf(start), seqOf(start) + got.length), "what it got has no gap")
        // The id of the last whole frame it received (the connect frame's when no event arrived).
        const lastId = s.items().flatMap((i) => (i._tag === "Id" || i._tag === "Event") && i.id !== undefined ? [i.id] : [])
          .at(-1)!
        const rest = yield* connect("/v1/events", { headers: { "last-event-id": lastId } })
        yield* rest.waitFor(() => rest.events().length >= sent - got.length, "the rest")
        assert.isTrue(contiguous([...got, ...rest.events()], seqOf(start), seqOf(start) + sent), "no gap, no duplicate")
        yield* rest.destroy
      }
    }).pipe(
      Effect.scoped,
      Effect.provide(serve({
        runtime: { eventBacklog: 100_000, subscriberBuffer: 100_000 },
        events: { stallTimeout: 1000, maxStreams: 8 }
      }))
    ))
})
