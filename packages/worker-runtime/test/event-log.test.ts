import { assert, describe, it } from "@effect/vitest"
import { Backlog, Cursor, type Domain, EventLog } from "@yoi/worker-runtime"
import { Chunk, Effect, Either, Fiber, Stream } from "effect"

const SUBSCRIBERS = 1_000
// A thousand fibers on a shared machine: generous, so that only a hang fails.
const TIMEOUT = 120_000

const seqOf = (cursor: string) => Either.getOrThrow(Cursor.decode(cursor)).seq

const drafts = (count: number, offset: number): Array<EventLog.EventDraft> =>
  Array.from({ length: count }, (_, i) => ({
    kind: "turn.delta" as const,
    worker_id: (offset + i) % 2 === 0 ? "w_a" : "w_b",
    data: { text: String(offset + i) }
  }))

/** Seqs `from + 1 .. to` of the events that match, in order: no gap, no duplicate. */
const expectedSeqs = (from: number, to: number, workerId?: string) =>
  Array.from({ length: to - from }, (_, i) => from + 1 + i).filter((seq) =>
    workerId === undefined || (workerId === "w_a") === ((seq - 1) % 2 === 0)
  )

type Collector = Fiber.Fiber<Array<Domain.RuntimeEvent>, unknown>

const makeLog = (subscriberBuffer: number) =>
  EventLog.make({ runtimeId: "rt", epoch: "e1", lastSeq: 0, backlog: 100_000, subscriberBuffer })

describe("the PubSub-backed event log with 1,000 subscribers", () => {
  it.scoped("stalled subscribers lag out with stream.lagged while the producer never waits and readers miss nothing", () =>
    Effect.gen(function*() {
      const buffer = 16
      const log = yield* makeLog(buffer)
      yield* log.append(drafts(10, 0))
      const start = log.lastSeq()
      const total = 64
      const readers: Array<{ workerId: string | undefined; seen: Array<number>; fiber: Collector }> = []
      const stalled: Array<{ workerId: string | undefined; stream: Stream.Stream<Domain.RuntimeEvent, unknown> }> = []
      for (let i = 0; i < SUBSCRIBERS; i++) {
        const workerId = i % 4 < 2 ? undefined : "w_a"
        const stream = yield* log.subscribe({ workerId })
        if (i % 2 === 0) {
          stalled.push({ workerId, stream })
          continue
        }
        const last = expectedSeqs(start, start + total, workerId).at(-1)!
        const seen: Array<number> = []
        const fiber = yield* stream.pipe(
          Stream.tap((e) => Effect.sync(() => seen.push(e.seq))),
          Stream.takeUntil((e) => e.seq >= last || e.kind === "stream.lagged"),
          Stream.runCollect,
          Effect.map(Chunk.toArray),
          Effect.fork
        )
        readers.push({ workerId, seen, fiber })
      }
      assert.strictEqual(log.subscriberCount(), SUBSCRIBERS)
      // The producer appends in steps of `buffer / 2` and lets the readers catch up between steps; the stalled half
      // never reads, and the producer never waits for it.
      for (let sent = 0; sent < total; sent += buffer / 2) {
        yield* log.append(drafts(buffer / 2, 10 + sent))
        const head = start + sent + buffer / 2
        const caughtUp = (r: (typeof readers)[number]) =>
          (r.seen.at(-1) ?? start) === (r.workerId === undefined || head % 2 === 1 ? head : head - 1)
        while (!readers.every(caughtUp)) yield* Effect.yieldNow()
      }
      assert.strictEqual(log.lastSeq(), start + total)
      assert.strictEqual(log.subscriberCount(), SUBSCRIBERS / 2, "every stalled subscriber was released")

      for (const { fiber, workerId } of readers) {
        const got = yield* Fiber.join(fiber)
        assert.deepStrictEqual(got.map((e) => e.seq), expectedSeqs(start, start + total, workerId))
      }
      for (const { stream, workerId } of stalled) {
        const got = Chunk.toArray(yield* Stream.runCollect(stream))
        assert.strictEqual(got.length, buffer + 1)
        const lagged = got.at(-1)!
        assert.strictEqual(lagged.kind, "stream.lagged")
        assert.strictEqual(lagged.worker_id, workerId)
        const events = got.slice(0, -1)
        assert.deepStrictEqual(events.map((e) => e.seq), expectedSeqs(start, start + total, workerId).slice(0, buffer))
        assert.strictEqual(lagged.cursor, events.at(-1)!.cursor)
        assert.strictEqual((lagged.data as { resume_cursor: string }).resume_cursor, lagged.cursor)
      }
      assert.strictEqual(log.subscriberCount(), SUBSCRIBERS / 2)
    }), TIMEOUT)

  it.scoped("subscribers joining from a cursor while events are appended hand over from replay to live with no gap", () =>
    Effect.gen(function*() {
      const log = yield* makeLog(1_000_000)
      yield* log.append(drafts(50, 0))
      const start = log.headCursor()
      const total = 200
      let sent = 0
      const collectors: Array<{ from: string; workerId: string | undefined; fiber: Collector }> = []
      const producer = yield* Effect.fork(Effect.gen(function*() {
        while (sent < total) {
          yield* log.append(drafts(10, 50 + sent))
          sent += 10
          yield* Effect.yieldNow()
        }
      }))
      for (let i = 0; i < SUBSCRIBERS; i++) {
        const from = i % 3 === 0 ? start : log.headCursor()
        const workerId = i % 2 === 0 ? undefined : "w_b"
        const stream = yield* log.subscribe({ cursor: from, workerId })
        // Every collector ends at the sentinel pair appended once everyone has subscribed.
        const fiber = yield* stream.pipe(
          Stream.takeUntil((e) => e.seq > 50 + total || e.kind === "stream.lagged"),
          Stream.runCollect,
          Effect.map(Chunk.toArray),
          Effect.fork
        )
        collectors.push({ from, workerId, fiber })
        if (i % 10 === 0) yield* Effect.yieldNow()
      }
      yield* Fiber.join(producer)
      yield* log.append(drafts(2, 50 + total))
      assert.strictEqual(log.lastSeq(), 50 + total + 2)
      for (const { from, workerId, fiber } of collectors) {
        const got = yield* Fiber.join(fiber)
        const end = workerId === undefined ? 50 + total + 1 : 50 + total + 2
        assert.deepStrictEqual(got.map((e) => e.seq), expectedSeqs(seqOf(from), end, workerId))
      }
    }), TIMEOUT)
})

describe("a subscriber cut while it waits", () => {
  it.scoped("delivers a contiguous prefix, then stream.lagged with the cursor of the last event delivered", () =>
    Effect.gen(function*() {
      const log = yield* makeLog(4)
      const start = log.lastSeq()
      const stream = yield* log.subscribe({})
      const fiber = yield* Effect.fork(Stream.runCollect(stream))
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      // One batch far past the bound reaches a reader that is waiting for its next event.
      yield* log.append(drafts(20, 0))
      const got = Chunk.toArray(yield* Fiber.join(fiber))
      const lagged = got.at(-1)!
      assert.strictEqual(lagged.kind, "stream.lagged")
      const delivered = got.slice(0, -1)
      assert.isAbove(delivered.length, 0)
      assert.deepStrictEqual(delivered.map((e) => e.seq), expectedSeqs(start, start + delivered.length))
      assert.strictEqual(lagged.cursor, delivered.at(-1)!.cursor)
      assert.strictEqual(log.subscriberCount(), 0)
    }))
})

describe("Backlog", () => {
  it("keeps the newest events by seq, ranges over them, and restarts at a gap", () => {
    const ring = Backlog.make<{ seq: number }>({ capacity: 3, lastSeq: 0 })
    assert.strictEqual(ring.low(), 1)
    for (let seq = 1; seq <= 5; seq++) ring.push({ seq })
    assert.deepStrictEqual([ring.low(), ring.lastSeq(), ring.size()], [3, 5, 3])
    assert.deepStrictEqual(ring.range(0, 5).map((e) => e.seq), [3, 4, 5])
    assert.deepStrictEqual(ring.range(3, 4).map((e) => e.seq), [4])
    assert.deepStrictEqual(ring.range(0, 5, (e) => e.seq % 2 === 1).map((e) => e.seq), [3, 5])
    ring.push({ seq: 9 })
    assert.deepStrictEqual([ring.low(), ring.lastSeq(), ring.size()], [9, 9, 1])
    ring.reset(20)
    assert.deepStrictEqual(ring.range(0, 100), [])
    assert.strictEqual(ring.low(), 21)
  })
})
