import { echoProfiles, testPolicy } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import { AllocationRegistry, type Domain, type Runtime } from "@yoi/worker-runtime"
import { eventsSince, fullTranscript, spawnChild, tempDir, withSqliteRuntime } from "./fixtures/sqlite.js"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/** The same profile name held forever in one life and instant in the next (profiles are runtime configuration). */
const policyWith = (name: string, spec: Domain.EngineSpec) => ({
  ...testPolicy,
  engines: { profiles: { ...echoProfiles, [name]: spec } }
})

const awaitQuiet = (rt: Runtime.RuntimeService, workerId: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200_000; i++) {
      const worker = yield* rt.getWorker(workerId)
      if (worker.status === "idle" && worker.queue_length === 0) return worker
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`worker ${workerId} never became quiet`)
  })

const userInputs = (entries: ReadonlyArray<Domain.TranscriptEntry>) =>
  entries.flatMap((e) => (e.data._tag === "user_input" ? [e.data.text] : []))

describe("SqliteQueue", () => {
  it.scoped("a stored queue survives a restart: the running turn is recorded interrupted, then the queue runs in order", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "queue.db")
      const first = yield* withSqliteRuntime(
        { filename, runtimeId: "q", policy: policyWith("q", { provider: "echo", delay_ms: 60_000 }) },
        (rt) =>
          Effect.gen(function*() {
            const { worker } = yield* rt.createWorker({ display_name: "Q", engine: { profile: "q" } })
            const running = yield* rt.sendInput(worker.worker_id, { text: "held" })
            const queued = yield* Effect.forEach(range(5), (i) =>
              rt.sendInput(worker.worker_id, { text: `q ${i}`, busy: "enqueue" }))
            yield* rt.cancelQueued(worker.worker_id, (queued[2] as Domain.InputQueued).input_id)
            return { workerId: worker.worker_id, turnId: running.turn_id, queue: yield* rt.queue(worker.worker_id) }
          })
      )
      assert.strictEqual(first.queue.items.length, 4)
      yield* withSqliteRuntime(
        { filename, runtimeId: "q", policy: policyWith("q", { provider: "echo" }) },
        (rt) =>
          Effect.gen(function*() {
            const quiet = yield* awaitQuiet(rt, first.workerId)
            assert.strictEqual(quiet.usage.turns, 5)
            assert.deepStrictEqual(userInputs(yield* fullTranscript(rt, first.workerId)), [
              "held",
              "q 0",
              "q 1",
              "q 3",
              "q 4"
            ])
            const events = yield* eventsSince(rt, "earliest")
            const ends = events.filter((e): e is Domain.TurnEndEvent => Domain_isEnd(e))
            assert.deepStrictEqual(ends.map((e) => e.data.outcome), [
              "interrupted",
              "completed",
              "completed",
              "completed",
              "completed"
            ])
            assert.strictEqual(ends[0]!.turn_id, first.turnId)
            const starts = events.flatMap((e) => (e.kind === "input.dequeued" && e.data.reason === "started"
              ? [e.data.input_id]
              : []))
            assert.deepStrictEqual(starts, first.queue.items.map((q) => q.input_id))
          })
      )
    }))

  it.scoped("a process killed with SIGKILL while working through its queue loses no accepted input", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "queue-crash.db")
      const child = yield* spawnChild(filename, "queue")
      const lines = yield* child.linesUntil((lines) =>
        lines.some((l) => "all_accepted" in l) && lines.filter((l) => "dequeued" in l).length >= 3
      )
      yield* child.kill
      const workerId: string = lines.find((l) => "ready" in l).ready
      const accepted: ReadonlyArray<{ accepted: Domain.InputResult; text: string }> = lines.filter((l) => "accepted" in l)
      assert.strictEqual(accepted.length, 30)
      const queued = accepted.flatMap((a) => ("queued" in a.accepted ? [{ ...a.accepted, text: a.text }] : []))
      const byPosition = [...queued].sort((a, b) => a.position - b.position)
      assert.deepStrictEqual(byPosition.map((q) => q.position), range(queued.length).map((i) => i + 1))
      const startedBeforeKill: ReadonlyArray<string> = lines.filter((l) => "dequeued" in l).map((l) => l.dequeued.input_id)

      // The worker's profile is instant in the restarted runtime, so the rest of the queue runs at once.
      yield* withSqliteRuntime(
        { filename, runtimeId: "crash", policy: policyWith("echo-c8-d20", { provider: "echo", chunk_size: 8 }) },
        (rt) =>
          Effect.gen(function*() {
            yield* awaitQuiet(rt, workerId)
            const inputs = userInputs(yield* fullTranscript(rt, workerId))
            const direct = accepted.filter((a) => !("queued" in a.accepted)).map((a) => a.text)
            assert.deepStrictEqual(inputs.slice(1 + direct.length), byPosition.map((q) => q.text))
            assert.strictEqual(new Set(inputs).size, inputs.length, "every input ran exactly once")
            const events = yield* eventsSince(rt, "earliest")
            const starts = events.flatMap((e) => (e.kind === "input.dequeued" && e.data.reason === "started"
              ? [e.data.input_id]
              : []))
            assert.deepStrictEqual(starts, byPosition.map((q) => q.input_id))
            assert.deepStrictEqual(starts.slice(0, startedBeforeKill.length), startedBeforeKill)
            const outcomes = events.filter(Domain_isEnd).map((e) => e.data.outcome)
            assert.isAtMost(outcomes.filter((o) => o === "interrupted").length, 1)
            assert.strictEqual(outcomes.filter((o) => o === "completed").length, outcomes.length -
              outcomes.filter((o) => o === "interrupted").length)
          })
      )
    }), { timeout: 60_000 })

  it.scoped("recovery releases allocations whose worker no longer exists and records how many", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "orphans.db")
      const kept = yield* withSqliteRuntime({ filename, runtimeId: "o" }, (rt) =>
        Effect.gen(function*() {
          const registry = yield* AllocationRegistry.AllocationRegistry
          const { worker } = yield* rt.createWorker({
            display_name: "Kept",
            scope: { allow: [{ path: "/srv/kept", access: "write" }] }
          })
          // What a crash between allocating and committing a create leaves behind.
          yield* registry.allocate("ghost-1", { allow: [{ path: "/srv/ghost-1", access: "write" }] })
          yield* registry.allocate("ghost-2", { allow: [{ path: "/srv/ghost-2", access: "read" }] })
          assert.strictEqual((yield* registry.list).length, 3)
          return worker.worker_id
        }))
      yield* withSqliteRuntime({ filename, runtimeId: "o" }, (rt) =>
        Effect.gen(function*() {
          const registry = yield* AllocationRegistry.AllocationRegistry
          assert.deepStrictEqual((yield* registry.list).map((a) => a.worker_id), [kept])
          const diagnostics = yield* rt.diagnostics()
          const sweep = diagnostics.find((d) => d.code === "orphaned_allocations_released")
          assert.isDefined(sweep)
          assert.include(sweep!.message, "released 2 allocation(s)")
          // The ghosts' paths are free again.
          const { worker } = yield* rt.createWorker({
            display_name: "New",
            scope: { allow: [{ path: "/srv/ghost-1", access: "write" }] }
          })
          assert.strictEqual(worker.status, "idle")
        }))
    }))
})

const Domain_isEnd = (e: Domain.RuntimeEvent): e is Domain.TurnEndEvent =>
  e.kind === "turn.completed" || e.kind === "turn.cancelled" || e.kind === "turn.failed" || e.kind === "turn.interrupted"
