import { assert, describe, it } from "@effect/vitest"
import { Ids } from "@yoi/worker-runtime"
import { echo } from "@yoi/worker-runtime/testing"
import { Effect, TestClock } from "effect"
import { awaitPendingSleep, awaitTurnEnd, eventsSince, fullTranscript, withRuntime } from "./utils.js"

const T0 = Date.parse("2026-03-04T05:06:07.000Z")
const iso = (ms: number) => new Date(ms).toISOString()

describe("time and ids come from services", () => {
  it.effect("a create and a turn carry the ids of the IdGenerator and the times of the Clock, exactly", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(T0)
      yield* withRuntime((rt) =>
        Effect.gen(function*() {
          const created = yield* rt.createWorker({ display_name: "Pinned", engine: echo({ delay_ms: 60_000 }) })
          assert.strictEqual(created.worker.worker_id, "w_000001")
          assert.strictEqual(created.worker.created_at, iso(T0))
          assert.strictEqual(created.worker.updated_at, iso(T0))

          yield* TestClock.adjust("1 second")
          const cursor = yield* rt.headCursor
          const accepted = yield* rt.sendInput("w_000001", { text: "hi" })
          assert.strictEqual(accepted.turn_id, "t_000001")
          assert.strictEqual(accepted.worker.updated_at, iso(T0 + 1_000))
          assert.strictEqual(accepted.worker.usage.last_activity_at, iso(T0 + 1_000))

          // The echo engine sleeps 60 s on the TestClock before it answers: the turn ends a minute later.
          yield* awaitPendingSleep
          yield* TestClock.adjust("60 seconds")
          const end = yield* awaitTurnEnd(rt, "w_000001", "t_000001", cursor)
          assert.strictEqual(end.kind, "turn.completed")

          const after = yield* rt.getWorker("w_000001")
          assert.deepStrictEqual(after.last_turn, { turn_id: "t_000001", outcome: "completed", ended_at: iso(T0 + 61_000) })
          assert.strictEqual(after.created_at, iso(T0))
          assert.strictEqual(after.updated_at, iso(T0 + 61_000))
          assert.strictEqual(after.usage.last_activity_at, iso(T0 + 61_000))
          const { items } = yield* fullTranscript(rt, "w_000001")
          assert.deepStrictEqual(items.map((e) => [e.entry_id, e.turn_id, e.at, e.data._tag]), [
            ["e_000001", "t_000001", iso(T0 + 1_000), "user_input"],
            ["e_000002", "t_000001", iso(T0 + 61_000), "assistant_message"]
          ])
          const appended = (yield* eventsSince(rt, cursor, "w_000001")).filter((e) => e.kind === "transcript.appended")
          assert.deepStrictEqual(appended.map((e) => (e.data as { entry: { entry_id: string } }).entry.entry_id), [
            "e_000001",
            "e_000002"
          ])

          const second = yield* rt.createWorker({ display_name: "Second" })
          assert.strictEqual(second.worker.worker_id, "w_000002")
          assert.strictEqual(second.worker.created_at, iso(T0 + 61_000))
        }), { ids: Ids.sequentialIds() })
    }))

  it.effect("without an id generator given, ids are ULID-based and distinct", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const workers = yield* Effect.forEach([1, 2, 3], (i) => rt.createWorker({ display_name: `W${i}` }))
        const ids = workers.map((w) => w.worker.worker_id)
        assert.isTrue(ids.every((id) => /^w_[0-9a-hjkmnp-tv-z]{26}$/.test(id)))
        assert.strictEqual(new Set(ids).size, 3)
      })))
})
