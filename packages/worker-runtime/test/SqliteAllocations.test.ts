import { testPolicy } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Either, Layer, Option, TestClock } from "effect"
import { join } from "node:path"
import { AllocationRegistry, Ids, Runtime, WorkerStore } from "@yoi/worker-runtime"
import { layerAllocationRegistry, layerSqlite, layerWorkerStore, type SqliteStoreOptions } from "@yoi/worker-runtime/sqlite"
import { rawSql, tempDir } from "./fixtures/sqlite.js"

const write = (path: string) => ({ path, access: "write" as const })
const from = (id: string) => Ids.WorkerId.make(id)

/** An allocation registry instance on `filename` that lives as long as the test's scope. */
const registryOn = (filename: string, options: Omit<SqliteStoreOptions, "filename"> = {}) =>
  Effect.map(
    Layer.build(layerAllocationRegistry({ filename, synchronous: "normal", ...options })),
    Context.get(AllocationRegistry.AllocationRegistry)
  )

describe("SqliteAllocations", () => {
  it.scoped("instances sharing a file check conflicts against each other and cannot take over live allocations", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "alloc.db")
      const a = yield* registryOn(filename)
      const b = yield* registryOn(filename)
      yield* a.allocate("parent", { allow: [write("/repo")], deny: [{ path: "/repo/.git" }] })

      const overlap = yield* Effect.flip(b.allocate("other", { allow: [write("/repo/src")] }))
      assert.strictEqual(overlap._tag, "ScopeConflict")
      if (overlap._tag === "ScopeConflict") assert.strictEqual(overlap.holder_worker_id, "parent")

      const takeover = yield* Effect.flip(b.allocate("parent", { allow: [write("/elsewhere")] }))
      assert.strictEqual(takeover._tag, "ScopeConflict")
      assert.include(takeover.message, "held by live runtime instance")

      yield* b.allocate("child", {
        allow: [write("/repo/src")],
        deny: [{ path: "/repo/.git" }],
        delegated_from: from("parent")
      })
      yield* b.release("parent")
      assert.isTrue(Option.isSome(yield* a.get("parent")))
      assert.isTrue(yield* a.check("child", "/repo/src/main.ts", "write"))
      assert.isFalse(yield* a.check("child", "/repo/README", "read"))
      assert.deepStrictEqual(yield* a.list, yield* b.list)
      assert.deepStrictEqual((yield* a.list).map((x) => x.worker_id), ["child", "parent"])

      const race = yield* Effect.all([
        Effect.either(a.allocate("ra", { allow: [write("/race")] })),
        Effect.either(b.allocate("rb", { allow: [write("/race/inner")] }))
      ], { concurrency: "unbounded" })
      assert.strictEqual(race.filter(Either.isRight).length, 1)

      yield* a.release("parent")
      const child = Option.getOrThrow(yield* b.get("child"))
      assert.isUndefined(child.delegated_from)
    }))

  it.scoped("an instance whose lease expired is reclaimed and its delegated children are re-parented", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "alloc.db")
      // `stale` never renews within the test: it stands for a process that hung or died on another host.
      const stale = yield* registryOn(filename, { leaseMs: 1_000, renewMs: 10_000_000 })
      const live = yield* registryOn(filename, { leaseMs: 1_000, renewMs: 100 })
      yield* live.allocate("root", { allow: [write("/repo")] })
      yield* stale.allocate("mid", { allow: [write("/repo/pkg")], delegated_from: from("root") })
      yield* live.allocate("leaf", { allow: [write("/repo/pkg/sub")], delegated_from: from("mid") })
      yield* stale.allocate("solo", { allow: [write("/solo")] })
      assert.strictEqual((yield* Effect.flip(live.allocate("x", { allow: [write("/solo/a")] })))._tag, "ScopeConflict")

      yield* TestClock.adjust(500)
      assert.isTrue(Option.isSome(yield* live.get("mid")), "a live lease is not reclaimed")
      for (let i = 0; i < 50 && Option.isSome(yield* live.get("mid")); i++) yield* TestClock.adjust(100)

      assert.isTrue(Option.isNone(yield* live.get("mid")))
      assert.isTrue(Option.isNone(yield* live.get("solo")))
      assert.strictEqual(Option.getOrThrow(yield* live.get("leaf")).delegated_from, "root")
      yield* live.allocate("x", { allow: [write("/solo/a")] })
      assert.deepStrictEqual((yield* stale.list).map((x) => x.worker_id), ["leaf", "root", "x"])

      const diagnostics = yield* Effect.scoped(
        Effect.flatMap(WorkerStore.WorkerStore, (store) => store.diagnostics(10)).pipe(
          Effect.provide(layerWorkerStore({ filename }))
        )
      )
      const reclaimed = diagnostics.find((d) => d.code === "allocations_reclaimed")
      assert.strictEqual(reclaimed?.severity, "warning")
      assert.include(reclaimed?.message ?? "", "2 allocation(s)")
      assert.include(reclaimed?.message ?? "", "1 delegated allocation(s) re-parented")
    }))

  it.scoped("a corrupt allocation row becomes a diagnostic and is left out", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "alloc.db")
      const holder = yield* registryOn(filename)
      yield* holder.allocate("kept", { allow: [write("/kept")] })
      yield* holder.allocate("torn", { allow: [write("/torn")] })
      yield* rawSql(filename, ["UPDATE allocations SET allow = '[{\"path\": \"/to' WHERE worker_id = 'torn'"])
      const registry = yield* registryOn(filename)
      assert.deepStrictEqual((yield* registry.list).map((a) => a.worker_id), ["kept"])
      assert.isTrue(Option.isNone(yield* registry.get("torn")))
      const diagnostics = yield* Effect.scoped(
        Effect.flatMap(WorkerStore.WorkerStore, (store) => store.diagnostics(10)).pipe(
          Effect.provide(layerWorkerStore({ filename }))
        )
      )
      const corrupt = diagnostics.find((d) => d.code === "corrupt_allocation_row")
      assert.deepStrictEqual([corrupt?.severity, corrupt?.worker_id], ["error", "torn"])
    }))

  it.scoped("a second runtime on the same file is refused while the first is alive, then opens after it closes", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "rt.db")
      const workerId = yield* Effect.scoped(Effect.gen(function*() {
        const first = yield* Layer.build(layerSqlite({ policy: testPolicy, filename, runtimeId: "one" }))
        const { worker } = yield* Context.get(first, Runtime.Runtime).createWorker({
          display_name: "Scoped",
          scope: { allow: [write("/w")] }
        })
        const refused = yield* Effect.flip(Effect.scoped(Layer.build(layerSqlite({ policy: testPolicy, filename, runtimeId: "two" }))))
        assert.strictEqual(refused._tag, "StoreLocked")
        assert.include(refused.message, "one writer at a time")
        return worker.worker_id
      }))
      const second = yield* Layer.build(layerSqlite({ policy: testPolicy, filename, runtimeId: "two" }))
      assert.strictEqual((yield* Context.get(second, Runtime.Runtime).getWorker(workerId)).status, "idle")
      const allocation = yield* Context.get(second, AllocationRegistry.AllocationRegistry).get(workerId)
      assert.deepStrictEqual(Option.map(allocation, (a) => a.allow), Option.some([write("/w")]))
    }))
})
