import { testPolicy } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import { join } from "node:path"
import { AllocationRegistry, type Domain } from "@yoi/worker-runtime"
import { layerAllocationRegistry, layerSqlite } from "@yoi/worker-runtime/sqlite"
import { eventsSince, fullTranscript, spawnChild, tempDir, withSqliteRuntime } from "./fixtures/sqlite.js"

interface Ack {
  readonly ack: string
  readonly worker_id: string
  readonly text: string
}

const textOf = (e: Domain.TranscriptEntry) =>
  e.data._tag === "user_input" || e.data._tag === "assistant_message" ? e.data.text : undefined

describe("SqliteCrash", () => {
  it.scoped("a process killed with SIGKILL mid-stream loses no acknowledged input and its turn is interrupted", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "crash.db")
      const child = yield* spawnChild(filename, "stream")
      const lines = yield* child.linesUntil((lines) => lines.filter((l) => "ack" in l).length >= 7)
      yield* child.kill
      const acks: ReadonlyArray<Ack> = lines.filter((l) => "ack" in l)
      const last = acks[acks.length - 1]!
      const workerIds: ReadonlyArray<string> = lines[0].ready
      assert.strictEqual(workerIds.length, 3)

      yield* withSqliteRuntime({ filename, runtimeId: "crash" }, (rt) =>
        Effect.gen(function*() {
          for (const workerId of workerIds) {
            const worker = yield* rt.getWorker(workerId)
            assert.strictEqual(worker.status, "idle", `${workerId} is idle again`)
            const transcript = yield* fullTranscript(rt, workerId)
            assert.deepStrictEqual(transcript.map((e) => e.index), transcript.map((_, i) => i))
            const mine = acks.filter((a) => a.worker_id === workerId)
            for (const [n, ack] of mine.entries()) {
              const input = transcript.find((e) => e.turn_id === ack.ack && e.data._tag === "user_input")
              assert.strictEqual(input === undefined ? undefined : textOf(input), ack.text, `acked ${ack.ack} is kept`)
              const reply = transcript.find((e) => e.turn_id === ack.ack && e.data._tag === "assistant_message")
              if (n < mine.length - 1) assert.strictEqual(reply === undefined ? undefined : textOf(reply), ack.text)
            }
            const lastTurn = worker.last_turn
            assert.isDefined(lastTurn)
            if (lastTurn?.outcome === "interrupted") {
              const notice = transcript[transcript.length - 1]!
              assert.strictEqual(notice.turn_id, lastTurn.turn_id)
              assert.deepStrictEqual([notice.data._tag, (notice.data as { code: string }).code], ["notice", "turn_interrupted"])
            } else {
              assert.strictEqual(lastTurn?.outcome, "completed")
            }
          }
          const killedMidTurn = yield* rt.getWorker(last.worker_id)
          assert.deepStrictEqual(
            [killedMidTurn.last_turn?.turn_id, killedMidTurn.last_turn?.outcome],
            [last.ack, "interrupted"]
          )
          const events = yield* eventsSince(rt, "earliest")
          const ofLast = events.filter((e) => e.turn_id === last.ack).map((e) => e.kind)
          assert.strictEqual(ofLast[0], "turn.started")
          assert.include(ofLast, "turn.interrupted")
          assert.isFalse(events.some((e) => e.kind === "turn.delta"))
          assert.deepStrictEqual(events.map((e) => e.seq), [...events.map((e) => e.seq)].sort((a, b) => a - b))
        }))
    }), { timeout: 60_000 })

  it.scoped("a live process's store and allocations cannot be taken over; after SIGKILL they are recovered at once", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "held.db")
      const child = yield* spawnChild(filename, "hold")
      const [ready] = yield* child.linesUntil((lines) => lines.length >= 1)
      const workerId: string = ready.ready

      const locked = yield* Effect.flip(Effect.scoped(Layer.build(layerSqlite({ policy: testPolicy, filename }))))
      assert.strictEqual(locked._tag, "StoreLocked")
      assert.include(locked.message, `pid ${child.pid}`)

      const registry = Context.get(
        yield* Layer.build(layerAllocationRegistry({ filename })),
        AllocationRegistry.AllocationRegistry
      )
      const write = [{ path: "/held/inner", access: "write" as const }]
      const overlap = yield* Effect.flip(registry.allocate("intruder", { allow: write }))
      assert.strictEqual(overlap._tag, "ScopeConflict")
      const takeover = yield* Effect.flip(registry.allocate(workerId, { allow: write }))
      assert.include(takeover.message, "held by live runtime instance")

      yield* child.kill
      yield* withSqliteRuntime({ filename }, (rt) =>
        Effect.gen(function*() {
          assert.strictEqual((yield* rt.getWorker(workerId)).status, "idle")
          const own = yield* Effect.flatMap(AllocationRegistry.AllocationRegistry, (r) => r.get(workerId))
          assert.isTrue(Option.isSome(own))
          const stillHeld = yield* Effect.flip(registry.allocate("intruder", { allow: write }))
          assert.strictEqual(stillHeld._tag, "ScopeConflict")
          assert.isTrue((yield* rt.summary).capabilities.durable)
        }))
    }), { timeout: 60_000 })
})
