import { echo, testPolicy } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Exit, Fiber, Layer, Option, Stream } from "effect"
import { AllocationRegistry, Cursor, type Engine, EventLog, Ids, Layers, Runtime, WorkerStore } from "@yoi/worker-runtime"
import { withSqliteRuntime } from "./fixtures/sqlite.js"

const held = echo({ delay_ms: 60_000 })
const scope = { allow: [{ path: "/srv/review", access: "write" as const }] }

/** A memory store whose commits matching `when` wait at a gate; `entered` is completed when one arrives there. */
const gatedStore = (when: (batch: WorkerStore.CommitBatch) => boolean) =>
  Effect.gen(function*() {
    const base = yield* WorkerStore.makeMemory
    const entered = yield* Deferred.make<void>()
    const gate = yield* Deferred.make<void>()
    const store: WorkerStore.WorkerStoreService = {
      ...base,
      commit: (batch) =>
        when(batch)
          ? Deferred.succeed(entered, undefined).pipe(
            Effect.zipRight(Deferred.await(gate)),
            Effect.zipRight(base.commit(batch))
          )
          : base.commit(batch)
    }
    const storage = Layer.merge(Layer.succeed(WorkerStore.WorkerStore, store), AllocationRegistry.layerMemory)
    return { entered, gate, layer: Layers.layerWith({ policy: testPolicy }, storage) }
  })

const awaitAllocated = (registry: AllocationRegistry.AllocationRegistryService, workerId: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 10_000; i++) {
      if (Option.isSome(yield* registry.get(workerId))) return
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`${workerId} was never allocated`)
  })

describe("review: interrupted commands", () => {
  it.effect("a delete whose caller is interrupted during the commit still releases the allocation", () =>
    Effect.gen(function*() {
      const { entered, gate, layer } = yield* gatedStore((b) => (b.deleted ?? []).length > 0)
      yield* Effect.gen(function*() {
        const rt = yield* Runtime.Runtime
        const registry = yield* AllocationRegistry.AllocationRegistry
        yield* rt.createWorker({ worker_id: Ids.WorkerId.make("doomed"), display_name: "Doomed", scope })
        yield* rt.stop("doomed")
        const deleter = yield* Effect.fork(rt.delete("doomed"))
        yield* Deferred.await(entered)
        const interrupter = yield* Effect.fork(Fiber.interrupt(deleter))
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(interrupter)
        assert.strictEqual((yield* Effect.flip(rt.getWorker("doomed")))._tag, "WorkerNotFound")
        assert.isTrue(Option.isNone(yield* registry.get("doomed")))
        const next = yield* rt.createWorker({ display_name: "Next", scope })
        assert.isTrue(next.created)
      }).pipe(Effect.provide(layer))
    }))

  it.effect("a create whose caller is interrupted while it waits to commit does not leak its allocation", () =>
    Effect.gen(function*() {
      const entered = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      yield* Effect.gen(function*() {
        const rt = yield* Runtime.Runtime
        const log = yield* EventLog.EventLog
        const registry = yield* AllocationRegistry.AllocationRegistry
        const holder = yield* Effect.fork(log.consistent(
          Effect.zipRight(Deferred.succeed(entered, undefined), Deferred.await(gate))
        ))
        yield* Deferred.await(entered)
        const creator = yield* Effect.fork(rt.createWorker({ worker_id: Ids.WorkerId.make("half"), display_name: "H", scope }))
        yield* awaitAllocated(registry, "half")
        const interrupter = yield* Effect.fork(Fiber.interrupt(creator))
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(interrupter)
        yield* Fiber.join(holder)
        const exists = Either.isRight(yield* Effect.either(rt.getWorker("half")))
        const allocated = Option.isSome(yield* registry.get("half"))
        assert.strictEqual(allocated, exists)
      }).pipe(Effect.provide(Layers.layerMemory({ policy: testPolicy })))
    }))

  it.effect("a cancel whose caller is interrupted while the turn winds down still records the cancellation", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const winding = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const slow: Engine.Engine = {
        provider: "slow",
        tools: [],
        validate: () => Effect.void,
        turn: () =>
          Stream.fromEffect(Effect.as(Deferred.succeed(started, undefined), { _tag: "TextDelta", text: "part" } as const))
            .pipe(
              Stream.concat(Stream.never),
              Stream.ensuring(Effect.zipRight(Deferred.succeed(winding, undefined), Deferred.await(gate)))
            )
      }
      yield* Effect.gen(function*() {
        const rt = yield* Runtime.Runtime
        const { worker } = yield* rt.createWorker({ display_name: "Slow", engine: { profile: "slow" } })
        const accepted = yield* rt.sendInput(worker.worker_id, { text: "go" })
        yield* Deferred.await(started)
        const canceller = yield* Effect.fork(rt.cancel(worker.worker_id))
        yield* Deferred.await(winding)
        const interrupter = yield* Effect.fork(Fiber.interrupt(canceller))
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(interrupter)
        const after = yield* rt.getWorker(worker.worker_id)
        assert.strictEqual(after.status, "idle")
        assert.strictEqual(after.last_turn?.turn_id, accepted.turn_id)
        assert.strictEqual(after.last_turn?.outcome, "cancelled")
      }).pipe(Effect.provide(Layers.layerMemory({ policy: testPolicy, engines: [slow] })))
    }))
})

describe("review: races on one client worker_id", () => {
  it.effect("a create with initial_input never dies when inputs and stops race it", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      for (let round = 0; round < 20; round++) {
        const id = Ids.WorkerId.make(`race-${round}`)
        const spin = <E extends { readonly _tag: string }>(command: Effect.Effect<unknown, E>) =>
          Effect.gen(function*() {
            for (let i = 0; i < 10_000; i++) {
              const result = yield* Effect.either(command)
              if (Either.isRight(result) || result.left._tag !== "WorkerNotFound") return
              yield* Effect.yieldNow()
            }
          })
        const [create] = yield* Effect.all([
          Effect.exit(rt.createWorker({ worker_id: id, display_name: "Racer", engine: held, initial_input: "first" })),
          ...Array.from({ length: 5 }, () => spin(rt.sendInput(id, { text: "second" }))),
          ...Array.from({ length: 5 }, () => spin(rt.stop(id)))
        ], { concurrency: "unbounded" }).pipe(Effect.withMaxOpsBeforeYield(64))
        assert.isTrue(Exit.isSuccess(create), `round ${round}: ${Exit.isFailure(create) ? String(create.cause) : ""}`)
      }
    }).pipe(Effect.provide(Layers.layerMemory({ policy: testPolicy }))))
})

describe("review: drain", () => {
  it.effect("drain cancels a turn whose start was still being committed when it began", () =>
    Effect.gen(function*() {
      const entered = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      yield* Effect.gen(function*() {
        const rt = yield* Runtime.Runtime
        const log = yield* EventLog.EventLog
        const { worker } = yield* rt.createWorker({ display_name: "Late", engine: held })
        yield* Effect.fork(log.consistent(Effect.zipRight(Deferred.succeed(entered, undefined), Deferred.await(gate))))
        yield* Deferred.await(entered)
        const sender = yield* Effect.fork(rt.sendInput(worker.worker_id, { text: "late" }))
        for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
        const drainer = yield* Effect.fork(rt.drain(0))
        for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(drainer)
        yield* Fiber.join(sender)
        const after = yield* rt.getWorker(worker.worker_id)
        assert.strictEqual(after.status, "idle")
        assert.strictEqual(after.last_turn?.outcome, "cancelled")
      }).pipe(Effect.provide(Layers.layerMemory({ policy: testPolicy })))
    }))
})

describe("review: durable replay", () => {
  it.scoped("a replay that starts after its events were pruned ends with stream.lagged instead of skipping them", () =>
    withSqliteRuntime({ filename: ":memory:", eventRetention: 20, eventBacklog: 4 }, (rt) =>
      Effect.scoped(Effect.gen(function*() {
        for (let i = 0; i < 30; i++) yield* rt.createWorker({ display_name: `A${i}` })
        const { epoch, seq } = Either.getOrThrow(Cursor.decode(yield* rt.headCursor))
        const from = seq - 15
        const stream = yield* rt.subscribe({ cursor: Cursor.encode(epoch, from) })
        for (let i = 0; i < 40; i++) yield* rt.createWorker({ display_name: `B${i}` })
        const head = yield* rt.headCursor
        const events = Chunk.toArray(
          yield* stream.pipe(Stream.takeUntil((e) => e.cursor === head || e.kind === "stream.lagged"), Stream.runCollect)
        )
        const delivered = events.filter((e) => e.kind !== "stream.lagged")
        delivered.forEach((e, i) => assert.strictEqual(e.seq, from + 1 + i))
        const last = events[events.length - 1]!
        if (last.kind === "stream.lagged") {
          const resume = delivered.length === 0 ? Cursor.encode(epoch, from) : delivered.at(-1)!.cursor
          assert.strictEqual(last.cursor, resume)
        } else {
          assert.strictEqual(last.cursor, head)
        }
      }))))
})
