import { assert, describe, it } from "@effect/vitest"
import { AllocationRegistry, Domain, Ids, layerWith, Runtime, WorkerStore } from "@yoi/worker-runtime"
import { Chunk, Effect, Layer, Stream } from "effect"

const scope: Domain.ScopeSpec = { allow: [{ path: "/repo", access: "write" }] }
const at = "2025-01-01T00:00:00.000Z"

const record = (id: string): Domain.WorkerRecord => ({
  worker_id: Ids.WorkerId.make(id),
  spec: { worker_id: Ids.WorkerId.make(id), display_name: id, scope },
  status: "idle",
  created_at: at,
  updated_at: at,
  current_turn_id: undefined,
  last_turn: undefined,
  usage: Domain.emptyUsage,
  transcript_length: 0,
  revision: 1
})

/**
 * Storage from a previous life whose allocations no longer fit: each stored worker's write scope is already held
 * by another stored worker, so recovery cannot re-allocate it and records one `allocation_not_restored` diagnostic
 * each. (The holder is a stored worker: an allocation without one is an orphan, released at recovery.)
 */
const conflictingStorage = (workers: ReadonlyArray<string>) =>
  Layer.effectDiscard(Effect.gen(function*() {
    const store = yield* WorkerStore.WorkerStore
    const allocations = yield* AllocationRegistry.AllocationRegistry
    yield* Effect.orDie(allocations.allocate("w-holder", scope))
    yield* Effect.orDie(store.commit({ workers: [...workers, "w-holder"].map(record) }))
  })).pipe(Layer.provideMerge(Layer.merge(WorkerStore.layerMemory, AllocationRegistry.layerMemory)))

describe("diagnostics are live", () => {
  it.effect("each diagnostic recovery records is also published as a runtime.diagnostic event with its id", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const recorded = yield* rt.diagnostics({ limit: 100 })
      assert.deepStrictEqual(recorded.map((d) => d.code), Array(5).fill("allocation_not_restored"))
      // A sentinel ends the replay, so a runtime that published nothing fails here instead of waiting.
      yield* rt.createWorker({ worker_id: Ids.WorkerId.make("sentinel"), display_name: "sentinel" })
      const events = yield* Effect.scoped(Effect.flatMap(
        rt.subscribe({ cursor: "earliest" }),
        (stream) => Stream.runCollect(Stream.takeUntil(stream, (e) => e.kind === "worker.created"))
      ))
      const published = Chunk.toArray(events).flatMap((e) =>
        e.kind === "runtime.diagnostic" ? [{ ...e.data, envelope_worker_id: e.worker_id }] : []
      )
      // `diagnostics` is newest first; the events are in the order they were recorded.
      const expected = [...recorded].reverse().map((d) => ({
        id: d.id,
        severity: d.severity,
        code: d.code,
        message: d.message,
        worker_id: d.worker_id,
        envelope_worker_id: d.worker_id
      }))
      assert.deepStrictEqual(published, expected)
      assert.deepStrictEqual(
        published.map((p) => p?.worker_id).sort(),
        ["w-a", "w-b", "w-c", "w-d", "w-e"]
      )
    }).pipe(Effect.provide(layerWith({}, conflictingStorage(["w-a", "w-b", "w-c", "w-d", "w-e"])))))
})
