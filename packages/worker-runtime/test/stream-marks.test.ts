import { assert, describe, it } from "@effect/vitest"
import { Cursor, type Domain, EventLog } from "@yoi/worker-runtime"
import { Chunk, Effect, Either, Fiber, Option, Stream, TestClock } from "effect"
import { join } from "node:path"
import { tempDir, withSqliteRuntime } from "./fixtures/sqlite.js"

const seqOf = (cursor: string) => Either.getOrThrow(Cursor.decode(cursor)).seq

const drafts = (count: number, workerId: string): Array<EventLog.EventDraft> =>
  Array.from({ length: count }, (_, i) => ({
    worker_id: workerId,
    kind: "runtime.diagnostic" as const,
    data: { id: i, severity: "info" as const, code: "test", message: "m" }
  }))

const isMark = (e: Domain.RuntimeEvent) => e.kind === "stream.live" || e.kind === "stream.bookmark"

describe("stream marks in the core", () => {
  it.scoped("a replay from the SQLite store (older than the ring) ends with one stream.live at the head", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "marks.db")
      yield* withSqliteRuntime({ filename, runtimeId: "marks", eventBacklog: 10 }, (rt) =>
        Effect.gen(function*() {
          const a = (yield* rt.createWorker({ display_name: "A" })).worker.worker_id
          const from = yield* rt.headCursor
          for (let i = 0; i < 30; i++) {
            yield* rt.stop(a)
            yield* rt.restore(a)
          }
          const head = seqOf(yield* rt.headCursor)
          const stream = yield* rt.subscribe({ cursor: from, worker_id: a, live: true })
          const got = Chunk.toArray(yield* Stream.runCollect(Stream.take(stream, 61)))
          const live = got[60]!
          assert.strictEqual(live.kind, "stream.live")
          assert.strictEqual(live.seq, head)
          assert.strictEqual(live.cursor, Cursor.encode(Either.getOrThrow(Cursor.decode(from)).epoch, head))
          assert.strictEqual(live.kind === "stream.live" ? live.data.replayed : -1, 60)
          assert.isTrue(got.slice(0, 60).every((e) => e.kind === "worker.status" && e.seq <= head))
        }).pipe(Effect.scoped))
    }))

  it.scoped("bookmarks: one per tick while the position moves, none while it stands still (TestClock)", () =>
    Effect.gen(function*() {
      const log = yield* EventLog.make({
        runtimeId: "rt",
        epoch: "e1",
        lastSeq: 0,
        backlog: 1000,
        subscriberBuffer: 1000,
        bookmarkInterval: "1 second"
      })
      const stream = yield* log.subscribe({ workerId: "w_quiet", bookmarks: true })
      const seen: Array<Domain.RuntimeEvent> = []
      const fiber = yield* Effect.fork(Stream.runForEach(stream, (e) => Effect.sync(() => void seen.push(e))))
      const settle = Effect.repeatN(Effect.yieldNow(), 50)
      yield* settle
      yield* log.append(drafts(5, "w_noisy"))
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.deepStrictEqual(seen.map((e) => [e.kind, e.seq]), [["stream.bookmark", 5]])
      // Nothing moved: no more bookmarks however many ticks pass.
      yield* TestClock.adjust("5 seconds")
      yield* settle
      assert.strictEqual(seen.length, 1)
      // A matching event moves the position itself; a bookmark follows only what came after it.
      yield* log.append([...drafts(1, "w_quiet"), ...drafts(3, "w_noisy")])
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.deepStrictEqual(seen.map((e) => [e.kind, e.seq]), [
        ["stream.bookmark", 5],
        ["runtime.diagnostic", 6],
        ["stream.bookmark", 9]
      ])
      const mark = seen[2]!
      assert.strictEqual(mark.kind === "stream.bookmark" ? mark.data.resume_cursor : "", Cursor.encode("e1", 9))
      assert.strictEqual(mark.worker_id, "w_quiet")
      assert.strictEqual(log.lastSeq(), 9, "bookmarks are not stored in the log")
      // Without `bookmarks` a quiet subscriber gets nothing.
      const plain = yield* log.subscribe({ workerId: "w_quiet" })
      const first = yield* Effect.fork(Stream.runHead(plain))
      yield* log.append(drafts(3, "w_noisy"))
      yield* TestClock.adjust("3 seconds")
      yield* settle
      assert.isTrue(Option.isNone(yield* Fiber.poll(first)))
      assert.isFalse(seen.slice(3).some((e) => !isMark(e)))
      yield* Fiber.interrupt(fiber)
    }))
})
