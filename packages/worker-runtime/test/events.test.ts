import { echo } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, Stream } from "effect"
import { Cursor, type Domain } from "@yoi/worker-runtime"
import { awaitTurnEnd, eventsSince, runTurn, withRuntime, type RuntimeService } from "./utils.js"

const position = (cursor: string) => Either.getOrThrow(Cursor.decode(cursor))

/** The seqs of `events` are exactly `from + 1 .. to`: no gap, no duplicate, in order. */
const assertContiguous = (events: ReadonlyArray<Domain.RuntimeEvent>, from: number, to: number) => {
  assert.deepStrictEqual(
    events.map((e) => e.seq),
    Array.from({ length: to - from }, (_, i) => from + 1 + i)
  )
}

/** Collects a stream until the `worker.created` event of `sentinelId`, inclusive. */
const untilSentinel = (stream: Stream.Stream<Domain.RuntimeEvent, unknown>, sentinelId: string) =>
  stream.pipe(
    Stream.takeUntil((e) => (e.kind === "worker.created" && e.worker_id === sentinelId) || e.kind === "stream.lagged"),
    Stream.runCollect,
    Effect.map(Chunk.toArray)
  )

const manyTurns = (rt: RuntimeService, workers: number, turns: number) =>
  Effect.forEach(
    Array.from({ length: workers }, (_, i) => i),
    (i) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({
          display_name: `Busy ${i}`,
          engine: echo({ chunk_size: 3 })
        })
        for (let t = 0; t < turns; t++) yield* runTurn(rt, worker.worker_id, `worker ${i} turn ${t}`)
        return worker.worker_id
      }),
    { concurrency: "unbounded" }
  )

describe("event envelope and ordering", () => {
  it.effect("a turn emits its events in order, with consecutive seqs and cursors that carry them", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "Echo", engine: echo({ chunk_size: 4 }) })
        const before = yield* rt.headCursor
        const { accepted } = yield* runTurn(rt, worker.worker_id, "abcd efgh")
        const events = yield* eventsSince(rt, before)
        assert.deepStrictEqual(events.map((e) => e.kind), [
          "turn.started",
          "transcript.appended",
          "worker.status",
          "turn.delta",
          "turn.delta",
          "turn.delta",
          "turn.usage",
          "transcript.appended",
          "turn.completed",
          "worker.status"
        ])
        assertContiguous(events, position(before).seq, position(yield* rt.headCursor).seq)
        for (const e of events) {
          assert.strictEqual(e.runtime_id, "ev")
          assert.strictEqual(e.worker_id, worker.worker_id)
          assert.deepStrictEqual(position(e.cursor), { epoch: position(before).epoch, seq: e.seq })
          if (e.kind.startsWith("turn.") || e.kind === "transcript.appended") {
            assert.strictEqual(e.turn_id, accepted.turn_id)
          }
        }
        assert.deepStrictEqual(events.filter((e) => e.kind === "turn.delta").map((e) => e.data), [
          { text: "abcd" },
          { text: " efg" },
          { text: "h" }
        ])
        assert.deepStrictEqual(events[6]!.data, { input_tokens: 2, output_tokens: 2, cached_tokens: 0 })
        assert.deepStrictEqual(events[2]!.data, { status: "running", previous: "idle" })
        assert.deepStrictEqual(events[9]!.data, { status: "idle", previous: "running" })
        const appended = events[7]!
        assert.strictEqual(appended.kind, "transcript.appended")
        if (appended.kind !== "transcript.appended") return
        assert.deepStrictEqual(appended.data.entry.data, { _tag: "assistant_message", text: "abcd efgh" })
        assert.strictEqual(appended.data.entry.index, 1)
      }), { runtimeId: "ev" }))

  it.effect("seq has no gap and no duplicate while many workers run turns concurrently", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const before = yield* rt.headCursor
        const live = yield* rt.subscribe({})
        const collector = yield* Effect.fork(untilSentinel(live, "sentinel"))
        const ids = yield* manyTurns(rt, 20, 3)
        yield* rt.createWorker({ worker_id: "sentinel" as never, display_name: "Sentinel" })
        const events = yield* Fiber.join(collector)
        assertContiguous(events, position(before).seq, position(yield* rt.headCursor).seq)
        for (const id of ids) {
          const mine = events.filter((e) => e.worker_id === id && e.kind !== "turn.delta")
          assert.strictEqual(mine.filter((e) => e.kind === "turn.completed").length, 3)
          assert.strictEqual(mine[0]!.kind, "worker.created")
          assert.strictEqual(mine.at(-1)!.kind, "worker.status")
        }
      }).pipe(Effect.scoped), { subscriberBuffer: 100_000 }))

  it.effect("a worker-scoped stream sees all of that worker's events and never another worker's", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const a = (yield* rt.createWorker({ display_name: "A", engine: echo({ chunk_size: 1 }) })).worker
        const b = (yield* rt.createWorker({ display_name: "B", engine: echo({ chunk_size: 1 }) })).worker
        const before = yield* rt.headCursor
        const scoped = yield* rt.subscribe({ worker_id: a.worker_id })
        const collector = yield* Effect.fork(
          scoped.pipe(
            Stream.takeUntil((e) => e.kind === "worker.status" && e.data.status === "stopped"),
            Stream.runCollect,
            Effect.map(Chunk.toArray)
          )
        )
        yield* Effect.all([
          Effect.forEach([1, 2, 3], (i) => runTurn(rt, a.worker_id, `alpha ${i}`)),
          Effect.forEach([1, 2, 3, 4], (i) => runTurn(rt, b.worker_id, `bravo ${i}`))
        ], { concurrency: "unbounded" })
        yield* rt.stop(b.worker_id)
        yield* rt.stop(a.worker_id)
        const seen = yield* Fiber.join(collector)
        assert.isTrue(seen.every((e) => e.worker_id === a.worker_id))
        const all = yield* eventsSince(rt, before)
        assert.isTrue(all.some((e) => e.worker_id === b.worker_id))
        assert.deepStrictEqual(seen, all.filter((e) => e.worker_id === a.worker_id))
      }).pipe(Effect.scoped), { subscriberBuffer: 100_000 }))

  it.effect("filters by kind", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "K" })
        const before = yield* rt.headCursor
        yield* runTurn(rt, worker.worker_id, "one")
        yield* runTurn(rt, worker.worker_id, "two")
        const stream = yield* rt.subscribe({ cursor: before, kinds: ["turn.completed", "turn.started"] })
        const events = yield* stream.pipe(Stream.take(4), Stream.runCollect, Effect.map(Chunk.toArray))
        assert.deepStrictEqual(events.map((e) => e.kind), [
          "turn.started",
          "turn.completed",
          "turn.started",
          "turn.completed"
        ])
      }).pipe(Effect.scoped)))

  it.effect("with no cursor, a stream starts from now", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        yield* rt.createWorker({ display_name: "Old" })
        const head = yield* rt.headCursor
        const stream = yield* rt.subscribe()
        yield* rt.createWorker({ worker_id: "new-one" as never, display_name: "New" })
        const first = yield* Stream.runHead(stream)
        assert.strictEqual(first._tag === "Some" ? first.value.worker_id : undefined, "new-one")
        assert.strictEqual(first._tag === "Some" ? first.value.seq : 0, position(head).seq + 1)
      }).pipe(Effect.scoped)))
})

describe("cursors", () => {
  it.effect("cursor \"earliest\" replays the whole retained backlog, then goes live", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const ids = yield* Effect.forEach([1, 2, 3], (i) =>
          Effect.map(rt.createWorker({ display_name: `W${i}` }), (r) => r.worker.worker_id))
        const stream = yield* rt.subscribe({ cursor: "earliest" })
        const collector = yield* Effect.fork(untilSentinel(stream, "sentinel"))
        yield* rt.createWorker({ worker_id: "sentinel" as never, display_name: "Sentinel" })
        const events = yield* Fiber.join(collector)
        assertContiguous(events, 0, 4)
        assert.deepStrictEqual(events.map((e) => e.worker_id), [...ids, "sentinel"])
      }).pipe(Effect.scoped)))

  it.effect("with a small backlog, \"earliest\" starts at the oldest retained event", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "W" })
        yield* runTurn(rt, worker.worker_id, "a b c d e f g h i j k l m n o p q r s t u v w x y z")
        const head = position(yield* rt.headCursor).seq
        assert.isAbove(head, 8)
        const events = yield* eventsSince(rt, "earliest")
        assertContiguous(events, head - 8, head)
      }), { eventBacklog: 8 }))

  it.effect("a cursor older than the backlog is CursorExpired and names the earliest cursor to resume from", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "W", engine: echo({ chunk_size: 1 }) })
        const old = yield* rt.headCursor
        yield* runTurn(rt, worker.worker_id, "0123456789")
        const head = position(yield* rt.headCursor).seq
        const error = yield* Effect.flip(Effect.scoped(rt.subscribe({ cursor: old })))
        assert.strictEqual(error._tag, "CursorExpired")
        const earliest = error._tag === "CursorExpired" ? error.earliest_cursor : ""
        assert.strictEqual(position(earliest).seq, head - 8)
        const resumed = yield* eventsSince(rt, earliest)
        assertContiguous(resumed, head - 8, head)
        const boundary = Cursor.encode(position(old).epoch, head - 9)
        assert.strictEqual((yield* Effect.flip(Effect.scoped(rt.subscribe({ cursor: boundary }))))._tag, "CursorExpired")
      }), { eventBacklog: 8 }))

  it.effect("malformed, foreign and future cursors are CursorInvalid", () =>
    Effect.gen(function*() {
      const foreign = yield* withRuntime((other) =>
        Effect.gen(function*() {
          yield* other.createWorker({ display_name: "Elsewhere" })
          return yield* other.headCursor
        }))
      yield* withRuntime((rt) =>
        Effect.gen(function*() {
          yield* rt.createWorker({ display_name: "Here" })
          yield* rt.createWorker({ display_name: "Here too" })
          const here = position(yield* rt.headCursor)
          assert.notStrictEqual(position(foreign).epoch, here.epoch)
          const bad = [
            "garbage",
            "c1.",
            "c1.!!!",
            "c1." + Buffer.from("no-colon").toString("base64url"),
            "c1." + "A".repeat(300),
            foreign,
            Cursor.encode(here.epoch, here.seq + 1)
          ]
          for (const cursor of bad) {
            const error = yield* Effect.flip(Effect.scoped(rt.subscribe({ cursor })))
            assert.strictEqual(error._tag, "CursorInvalid", cursor)
          }
          const ok = yield* eventsSince(rt, Cursor.encode(here.epoch, here.seq - 1))
          assert.deepStrictEqual(ok.map((e) => e.seq), [here.seq])
        }))
    }))

  it.effect("subscribing rejects an unknown worker and an unknown kind", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        assert.strictEqual((yield* Effect.flip(Effect.scoped(rt.subscribe({ worker_id: "nobody" }))))._tag, "WorkerNotFound")
        assert.strictEqual((yield* Effect.flip(Effect.scoped(rt.subscribe({ worker_id: "../x" }))))._tag, "InvalidInput")
        const kind = yield* Effect.flip(Effect.scoped(rt.subscribe({ kinds: ["turn.completed", "turn.exploded"] })))
        assert.strictEqual(kind._tag, "InvalidInput")
      })))

  it.effect("subscribing from a cursor while events are appended hands over from replay to live with no gap", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const start = yield* rt.headCursor
        const producer = yield* Effect.fork(manyTurns(rt, 10, 4))
        const collectors: Array<{ from: string; fiber: Fiber.Fiber<Array<Domain.RuntimeEvent>, unknown> }> = []
        for (let round = 0; round < 6; round++) {
          for (let i = 0; i < round * 5; i++) yield* Effect.yieldNow()
          const from = round % 2 === 0 ? start : yield* rt.headCursor
          const stream = yield* rt.subscribe({ cursor: from })
          collectors.push({ from, fiber: yield* Effect.fork(untilSentinel(stream, "sentinel")) })
        }
        yield* Fiber.join(producer)
        yield* rt.createWorker({ worker_id: "sentinel" as never, display_name: "Sentinel" })
        const head = position(yield* rt.headCursor).seq
        assert.isAbove(head, 400)
        for (const { from, fiber } of collectors) assertContiguous(yield* Fiber.join(fiber), position(from).seq, head)
      }).pipe(Effect.scoped), { subscriberBuffer: 100_000 }))
})

describe("slow subscribers", () => {
  it.effect("a subscriber that does not read lags out with stream.lagged while the runtime keeps going", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "Chatty", engine: echo({ chunk_size: 1 }) })
        const start = yield* rt.headCursor
        const slow = yield* rt.subscribe({})
        const scopedSlow = yield* rt.subscribe({ worker_id: worker.worker_id })
        const text = "x".repeat(100)
        const { accepted, end } = yield* runTurn(rt, worker.worker_id, text)
        assert.strictEqual(end.kind, "turn.completed")
        const after = yield* rt.getWorker(worker.worker_id)
        assert.strictEqual(after.status, "idle")
        assert.strictEqual(after.last_turn?.turn_id, accepted.turn_id)
        const head = position(yield* rt.headCursor).seq
        assert.isAbove(head - position(start).seq, 100)

        const got = Chunk.toArray(yield* Stream.runCollect(slow))
        assert.strictEqual(got.length, 9)
        const lagged = got.at(-1)!
        assert.strictEqual(lagged.kind, "stream.lagged")
        assertContiguous(got.slice(0, -1), position(start).seq, position(start).seq + 8)
        assert.strictEqual(lagged.cursor, got.at(-2)!.cursor)
        assert.strictEqual(lagged.kind === "stream.lagged" ? lagged.data.resume_cursor : undefined, lagged.cursor)

        const resumed = yield* eventsSince(rt, lagged.cursor)
        assertContiguous(resumed, position(lagged.cursor).seq, head)

        const scopedGot = Chunk.toArray(yield* Stream.runCollect(scopedSlow))
        assert.strictEqual(scopedGot.at(-1)!.kind, "stream.lagged")
        assert.strictEqual(scopedGot.at(-1)!.worker_id, worker.worker_id)
      }).pipe(Effect.scoped), { subscriberBuffer: 8 }))
})

describe("Cursor", () => {
  it("round-trips and rejects what it did not issue", () => {
    const c = Cursor.encode("01abcdef", 12345)
    assert.deepStrictEqual(Either.getOrThrow(Cursor.decode(c)), { epoch: "01abcdef", seq: 12345 })
    for (const bad of ["", "earliest", "c2." + c.slice(3), c + "!", "c1." + Buffer.from("x:").toString("base64url")]) {
      assert.isTrue(Either.isLeft(Cursor.decode(bad)), bad)
    }
  })

  it.effect("awaitTurnEnd finds a turn that already ended (replay from cursor)", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "W" })
        const before = yield* rt.headCursor
        const accepted = yield* rt.sendInput(worker.worker_id, { text: "done" })
        const end = yield* awaitTurnEnd(rt, worker.worker_id, accepted.turn_id, before)
        assert.strictEqual(end.kind, "turn.completed")
      })))
})
