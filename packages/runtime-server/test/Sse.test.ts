import { assert, describe, it } from "@effect/vitest"
import { type Domain, RuntimeUnavailable } from "@yoi/worker-runtime"
import { Chunk, Deferred, Effect, Queue, Stream, TestClock } from "effect"
import type { Readable } from "node:stream"
import * as Sse from "../src/Sse.js"

const event = (seq: number): Domain.RuntimeEvent => ({
  cursor: `c1.pos${seq}`,
  seq,
  runtime_id: "rt",
  worker_id: "w_1",
  kind: "turn.delta",
  at: "2025-01-01T00:00:00.000Z",
  data: { text: `delta ${seq}: line one\nline two` }
})

/** Lets forked fibers run until they block. */
const settle = Effect.repeatN(Effect.yieldNow(), 100)

/** Each write of the body as it is pushed (flowing mode: one `data` per push), and the end. */
const writes = (readable: Readable) =>
  Effect.gen(function*() {
    const out = yield* Queue.unbounded<string>()
    const ended = yield* Deferred.make<void>()
    readable.on("data", (chunk: Buffer) => out.unsafeOffer(chunk.toString("utf8")))
    readable.on("end", () => Deferred.unsafeDone(ended, Effect.void))
    const all = Effect.zipRight(Deferred.await(ended), Effect.map(Queue.takeAll(out), Chunk.toArray))
    return { out, ended, all }
  })

const open = (events: Stream.Stream<Domain.RuntimeEvent, RuntimeUnavailable>, startCursor?: string) =>
  Effect.gen(function*() {
    const control = yield* Sse.makeControl("15 seconds")
    const readable = yield* Sse.body(events, { control, startCursor })
    return { control, ...(yield* writes(readable)) }
  })

describe("Sse wire frames", () => {
  it("an event is one frame: id, event and a single data line holding the JSON envelope", () => {
    const e = event(7)
    assert.strictEqual(
      Sse.eventFrame(e),
      "id: c1.pos7\nevent: turn.delta\n" +
        "data: {\"cursor\":\"c1.pos7\",\"seq\":7,\"runtime_id\":\"rt\",\"worker_id\":\"w_1\",\"kind\":\"turn.delta\"," +
        "\"at\":\"2025-01-01T00:00:00.000Z\",\"data\":{\"text\":\"delta 7: line one\\nline two\"}}\n\n"
    )
    assert.strictEqual(Sse.commentFrame("a\nb"), ": a b\n\n")
    assert.strictEqual(Sse.openFrame("c1.x"), ": connected\nid: c1.x\n\n")
    assert.strictEqual(Sse.openFrame(undefined), ": connected\n\n")
    assert.strictEqual(
      Sse.errorFrame({ _tag: "RuntimeUnavailable", message: "gone", resume_cursor: "c1.x" }),
      "event: stream.error\ndata: {\"_tag\":\"RuntimeUnavailable\",\"message\":\"gone\",\"resume_cursor\":\"c1.x\"}\n\n"
    )
  })

  it.scoped("the body opens with the connect frame and coalesces each chunk of events into one write", () =>
    Effect.gen(function*() {
      const events = Stream.fromChunks(Chunk.make(event(1), event(2), event(3)), Chunk.make(event(4)))
      const { all } = yield* open(events, "c1.pos0")
      assert.deepStrictEqual(yield* all, [
        ": connected\nid: c1.pos0\n\n",
        Sse.eventFrame(event(1)) + Sse.eventFrame(event(2)) + Sse.eventFrame(event(3)),
        Sse.eventFrame(event(4))
      ])
    }))

  it.scoped("a failure after the start becomes a final stream.error frame naming where to resume", () =>
    Effect.gen(function*() {
      const events = Stream.concat(
        Stream.make(event(1), event(2)),
        Stream.fail(new RuntimeUnavailable({ message: "the store failed" }))
      )
      const frames = yield* (yield* open(events, "c1.pos0")).all
      assert.strictEqual(frames.length, 3)
      assert.strictEqual(
        frames[2],
        "event: stream.error\ndata: {\"_tag\":\"RuntimeUnavailable\",\"message\":\"the store failed\"," +
          "\"resume_cursor\":\"c1.pos2\"}\n\n"
      )
    }))

  it.scoped("a failure before any event names the start cursor, or nothing when the start is unnamed", () =>
    Effect.gen(function*() {
      const failing = Stream.fail(new RuntimeUnavailable({ message: "x" }))
      const named = yield* (yield* open(failing, "c1.s")).all
      assert.include(named[1]!, "\"resume_cursor\":\"c1.s\"")
      const unnamed = yield* (yield* open(failing)).all
      assert.deepStrictEqual(unnamed[0], ": connected\n\n")
      assert.notInclude(unnamed[1]!, "resume_cursor")
    }))

  it.scoped("heartbeat comments arrive every interval while idle and not before (TestClock)", () =>
    Effect.gen(function*() {
      const { out } = yield* open(Stream.never, "c1.s")
      assert.strictEqual(yield* Queue.take(out), ": connected\nid: c1.s\n\n")
      yield* TestClock.adjust("14 seconds")
      yield* settle
      assert.strictEqual(yield* Queue.size(out), 0)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Queue.take(out), ": heartbeat\n\n")
      yield* TestClock.adjust("30 seconds")
      assert.deepStrictEqual([yield* Queue.take(out), yield* Queue.take(out)], [": heartbeat\n\n", ": heartbeat\n\n"])
      yield* TestClock.adjust("14 seconds")
      yield* settle
      assert.strictEqual(yield* Queue.size(out), 0)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Queue.take(out), ": heartbeat\n\n")
    }))

  it.scoped("stopAll ends every live stream with a final stream.error frame after what was already written", () =>
    Effect.gen(function*() {
      const control = yield* Sse.makeControl("15 seconds")
      const live = Stream.concat(Stream.make(event(1)), Stream.never)
      const a = yield* writes(yield* Sse.body(live, { control, startCursor: "c1.pos0" }))
      const b = yield* writes(yield* Sse.body(live, { control, startCursor: "c1.pos0" }))
      const first = [yield* Queue.take(a.out), yield* Queue.take(a.out)]
      yield* Queue.take(b.out)
      yield* Queue.take(b.out)
      assert.strictEqual(control.size(), 2)
      yield* control.stopAll(new RuntimeUnavailable({ message: "shutting down" }))
      const stop = Sse.errorFrame({ _tag: "RuntimeUnavailable", message: "shutting down", resume_cursor: "c1.pos1" })
      assert.deepStrictEqual([...first, ...(yield* a.all)], [
        ": connected\nid: c1.pos0\n\n",
        Sse.eventFrame(event(1)),
        stop
      ])
      assert.deepStrictEqual(yield* b.all, [stop])
    }))
})
