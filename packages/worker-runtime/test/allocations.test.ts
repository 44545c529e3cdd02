import { testPolicy } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { AllocationRegistry, type Domain, Ids, Layers, Runtime, WorkerStore } from "@yoi/worker-runtime"
import { allStores, durableStores, type StoreKind } from "./fixtures/stores.js"

type Rule = readonly [path: string, access: Domain.Access]

const scope = (
  allow: ReadonlyArray<Rule>,
  deny: ReadonlyArray<string> = [],
  delegatedFrom?: string
): Domain.ScopeSpec => ({
  allow: allow.map(([path, access]) => ({ path, access })),
  deny: deny.map((path) => ({ path })),
  ...(delegatedFrom === undefined ? {} : { delegated_from: Ids.WorkerId.make(delegatedFrom) })
})

/** Runs `f` against a fresh allocation registry of `kind`, closed when `f` ends. */
const withRegistry = <A, E>(
  kind: StoreKind,
  f: (r: AllocationRegistry.AllocationRegistryService) => Effect.Effect<A, E>
) =>
  Effect.scoped(Effect.gen(function*() {
    const place = yield* kind.place
    return yield* Effect.flatMap(AllocationRegistry.AllocationRegistry, f).pipe(Effect.provide(kind.storage(place)))
  }))

/** Runs `f` against a runtime on a store of `kind` at `place`, closed when `f` ends. */
const withStoreRuntime = <A, E, R>(
  kind: StoreKind,
  place: string,
  f: (rt: Runtime.RuntimeService) => Effect.Effect<A, E, R>
) => Effect.scoped(Effect.flatMap(Runtime.Runtime, f).pipe(Effect.provide(kind.runtime(place, { policy: testPolicy }))))

/** Runs `f` against a runtime on a fresh store of `kind`. */
const withRuntime = <A, E, R>(kind: StoreKind, f: (rt: Runtime.RuntimeService) => Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.flatMap(kind.place, (place) => withStoreRuntime(kind, place, f)))

/** Fails the test unless `allocate` fails with a ScopeConflict on `path` held by `holder`. */
const assertConflict = (
  effect: Effect.Effect<unknown, { readonly _tag: string }>,
  path: string,
  holder: string
) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(effect)
    assert.strictEqual(error._tag, "ScopeConflict")
    const conflict = error as unknown as { readonly path: string; readonly holder_worker_id?: string }
    assert.strictEqual(conflict.path, path)
    assert.strictEqual(conflict.holder_worker_id, holder)
  })

describe.each(allStores)("overlap rule: $name", (kind) => {
  it.effect("two writers on overlapping paths conflict, whichever is wider", () =>
    withRegistry(kind, (r) =>
      Effect.gen(function*() {
        yield* r.allocate("a", scope([["/repo/src", "write"]]))
        yield* assertConflict(r.allocate("b", scope([["/repo", "write"]])), "/repo/src", "a")
        yield* assertConflict(r.allocate("c", scope([["/repo/src/lib", "write"]])), "/repo/src/lib", "a")
        yield* assertConflict(r.allocate("d", scope([["/repo/src", "write"]])), "/repo/src", "a")
        yield* assertConflict(r.allocate("e", scope([["/", "write"]])), "/repo/src", "a")
        yield* assertConflict(r.allocate("f", scope([["/repo/./lib/../src/", "write"]])), "/repo/src", "a")
        assert.deepStrictEqual((yield* r.list).map((a) => a.worker_id), ["a"])
      })))

  it.effect("readers never conflict, a reader and a writer may overlap, and siblings are not prefixes", () =>
    withRegistry(kind, (r) =>
      Effect.gen(function*() {
        yield* r.allocate("writer", scope([["/repo", "write"]]))
        yield* r.allocate("reader1", scope([["/repo", "read"]]))
        yield* r.allocate("reader2", scope([["/", "read"], ["/repo/src", "read"]]))
        yield* r.allocate("sibling", scope([["/repository", "write"], ["/rep", "write"]]))
        assert.strictEqual((yield* r.list).length, 4)
      })))

  it.effect("a deny rule on either side carves the overlap out", () =>
    withRegistry(kind, (r) =>
      Effect.gen(function*() {
        yield* r.allocate("a", scope([["/repo", "write"]], ["/repo/docs"]))
        yield* r.allocate("docs", scope([["/repo/docs", "write"]]))
        yield* r.allocate("deep", scope([["/repo/docs/api", "read"], ["/repo/docs/../docs/x", "read"]]))
        yield* assertConflict(r.allocate("b", scope([["/repo/src", "write"]])), "/repo/src", "a")
        yield* assertConflict(r.allocate("c", scope([["/repo", "write"]])), "/repo", "a")
        yield* r.allocate("outer", scope([["/", "write"]], ["/repo"]))
        assert.deepStrictEqual((yield* r.list).map((x) => x.worker_id).sort(), ["a", "deep", "docs", "outer"])
      })))

  it.effect("check grants by path and access, honours deny, and normalises the asked path", () =>
    withRegistry(kind, (r) =>
      Effect.gen(function*() {
        yield* r.allocate("w", scope([["/repo", "write"], ["/docs", "read"]], ["/repo/.git"]))
        assert.isTrue(yield* r.check("w", "/repo/src/main.ts", "write"))
        assert.isTrue(yield* r.check("w", "/repo", "read"))
        assert.isTrue(yield* r.check("w", "/docs/a.md", "read"))
        assert.isFalse(yield* r.check("w", "/docs/a.md", "write"))
        assert.isFalse(yield* r.check("w", "/repo/.git/config", "read"))
        assert.isFalse(yield* r.check("w", "/repo/src/../.git/config", "write"))
        assert.isFalse(yield* r.check("w", "/repository", "read"))
        assert.isFalse(yield* r.check("w", "repo/src", "read"))
        assert.isFalse(yield* r.check("nobody", "/repo", "read"))
      })))

  it.effect("a released scope can be taken again", () =>
    withRegistry(kind, (r) =>
      Effect.gen(function*() {
        yield* r.allocate("a", scope([["/repo", "write"]]))
        yield* r.release("a")
        yield* r.allocate("b", scope([["/repo", "write"]]))
        assert.isTrue(Option.isNone(yield* r.get("a")))
        assert.strictEqual(Option.getOrThrow(yield* r.get("b")).allow[0]!.path, "/repo")
      })))
})

describe.each(allStores)("delegation: $name", (kind) => {
  it.effect("a child must stay inside its parent's scope and respect its denies", () =>
    withRegistry(kind, (r) =>
      Effect.gen(function*() {
        yield* r.allocate("parent", scope([["/repo", "write"], ["/docs", "read"]], ["/repo/secrets"]))
        yield* r.allocate("child", scope([["/repo/src", "write"], ["/docs/api", "read"]], [], "parent"))
        yield* assertConflict(r.allocate("c2", scope([["/etc", "read"]], [], "parent")), "/etc", "parent")
        yield* assertConflict(r.allocate("c3", scope([["/docs", "write"]], [], "parent")), "/docs", "parent")
        yield* assertConflict(r.allocate("c4", scope([["/repo", "write"]], [], "parent")), "/repo/secrets", "parent")
        yield* assertConflict(r.allocate("c5", scope([["/repo/secrets/k", "read"]], [], "parent")), "/repo/secrets/k", "parent")
        yield* r.allocate("c6", scope([["/repo", "read"]], ["/repo/secrets"], "parent"))
        const missing = yield* Effect.flip(r.allocate("c7", scope([["/repo", "read"]], [], "ghost")))
        assert.strictEqual(missing._tag, "InvalidInput")
        const self = yield* Effect.flip(r.allocate("c8", scope([["/repo", "read"]], [], "c8")))
        assert.strictEqual(self._tag, "InvalidInput")
        assert.deepStrictEqual((yield* r.list).map((a) => a.worker_id).sort(), ["c6", "child", "parent"])
      })))

  it.effect("a lineage may overlap itself, but siblings and strangers may not overlap it", () =>
    withRegistry(kind, (r) =>
      Effect.gen(function*() {
        yield* r.allocate("parent", scope([["/repo", "write"]]))
        yield* r.allocate("child", scope([["/repo/src", "write"]], [], "parent"))
        yield* r.allocate("grandchild", scope([["/repo/src/lib", "write"]], [], "child"))
        yield* assertConflict(r.allocate("sibling", scope([["/repo/src/x", "write"]], [], "parent")), "/repo/src/x", "child")
        yield* assertConflict(r.allocate("stranger", scope([["/repo/README.md", "write"]])), "/repo/README.md", "parent")
        const cousin = yield* r.allocate("cousin", scope([["/repo/test", "write"]], [], "parent"))
        assert.strictEqual(cousin.delegated_from, "parent")
      })))

  it.effect("releasing a parent re-parents its children to the grandparent", () =>
    withRegistry(kind, (r) =>
      Effect.gen(function*() {
        yield* r.allocate("root", scope([["/repo", "write"]]))
        yield* r.allocate("mid", scope([["/repo/src", "write"]], [], "root"))
        yield* r.allocate("leaf", scope([["/repo/src/lib", "write"]], [], "mid"))
        yield* r.allocate("leaf2", scope([["/repo/src/bin", "read"]], [], "mid"))
        yield* r.release("mid")
        assert.strictEqual(Option.getOrThrow(yield* r.get("leaf")).delegated_from, "root")
        assert.strictEqual(Option.getOrThrow(yield* r.get("leaf2")).delegated_from, "root")
        yield* assertConflict(r.allocate("other", scope([["/repo/src/lib/x", "write"]], [], "root")), "/repo/src/lib/x", "leaf")
        yield* r.release("root")
        assert.isUndefined(Option.getOrThrow(yield* r.get("leaf")).delegated_from)
        yield* r.allocate("free", scope([["/repo/src/bin", "write"]]))
      })))
})

describe.each(allStores)("allocations through the runtime: $name", (kind) => {
  it.effect("a worker holds its scope until it is deleted, stopped or not", () =>
    withRuntime(kind, (rt) =>
      Effect.gen(function*() {
        const registry = yield* AllocationRegistry.AllocationRegistry
        const a = Ids.WorkerId.make("a")
        const { worker } = yield* rt.createWorker({ worker_id: a, display_name: "A", scope: scope([["/repo", "write"]]) })
        assert.deepStrictEqual(worker.scope, scope([["/repo", "write"]]))
        const spec = { display_name: "B", scope: scope([["/repo/src", "write"]]) }
        const conflict = yield* Effect.flip(rt.createWorker(spec))
        assert.strictEqual(conflict._tag, "ScopeConflict")
        yield* rt.stop(a)
        assert.strictEqual((yield* Effect.flip(rt.createWorker(spec)))._tag, "ScopeConflict")
        yield* rt.delete(a)
        assert.isTrue(Option.isNone(yield* registry.get(a)))
        const b = yield* rt.createWorker(spec)
        assert.isTrue(b.created)
        assert.isTrue(yield* registry.check(b.worker.worker_id, "/repo/src/x.ts", "write"))
      })))

  it.effect("deleting a delegating worker re-parents its delegates", () =>
    withRuntime(kind, (rt) =>
      Effect.gen(function*() {
        const registry = yield* AllocationRegistry.AllocationRegistry
        const lead = Ids.WorkerId.make("lead")
        const coder = Ids.WorkerId.make("coder")
        yield* rt.createWorker({ worker_id: lead, display_name: "Lead", scope: scope([["/repo", "write"]]) })
        const delegated = yield* Effect.flip(rt.createWorker({
          worker_id: coder,
          display_name: "Coder",
          scope: scope([["/elsewhere", "write"]], [], "lead")
        }))
        assert.strictEqual(delegated._tag, "ScopeConflict")
        yield* rt.createWorker({ worker_id: coder, display_name: "Coder", scope: scope([["/repo/src", "write"]], [], "lead") })
        yield* rt.stop(lead)
        yield* rt.delete(lead)
        const held = Option.getOrThrow(yield* registry.get(coder))
        assert.isUndefined(held.delegated_from)
        assert.strictEqual(held.allow[0]!.path, "/repo/src")
      })))
})

describe("allocations across restarts", () => {
  it.effect("a restarted runtime re-allocates the scopes of its workers", () =>
    Effect.gen(function*() {
      const store = yield* WorkerStore.makeMemory
      type Life<A, E> = (rt: Runtime.RuntimeService) => Effect.Effect<A, E, AllocationRegistry.AllocationRegistry>
      const life = <A, E>(f: Life<A, E>) =>
        Effect.flatMap(Runtime.Runtime, f).pipe(Effect.provide(Layers.layerWith(
          { policy: testPolicy },
          Layer.merge(Layer.succeed(WorkerStore.WorkerStore, store), AllocationRegistry.layerMemory)
        )))
      yield* life((rt) =>
        rt.createWorker({ worker_id: Ids.WorkerId.make("keeper"), display_name: "K", scope: scope([["/repo", "write"]]) }))
      yield* life((rt) =>
        Effect.gen(function*() {
          const registry = yield* AllocationRegistry.AllocationRegistry
          assert.isTrue(yield* registry.check("keeper", "/repo/a", "write"))
          const conflict = yield* Effect.flip(rt.createWorker({ display_name: "X", scope: scope([["/repo", "write"]]) }))
          assert.strictEqual(conflict._tag, "ScopeConflict")
        }))
    }))
})

describe.each(durableStores)("allocations across restarts: $name", (kind) => {
  it.scoped("a reopened store keeps allocations and re-parenting; a restarted runtime keeps its workers' scopes", () =>
    Effect.gen(function*() {
      const place = yield* kind.place
      const registry = Effect.flatMap(AllocationRegistry.AllocationRegistry, Effect.succeed)
      yield* Effect.scoped(Effect.gen(function*() {
        const r = yield* registry
        yield* r.allocate("root", scope([["/repo", "write"]]))
        yield* r.allocate("mid", scope([["/repo/src", "write"]], [], "root"))
        yield* r.allocate("leaf", scope([["/repo/src/lib", "write"]], [], "mid"))
        yield* r.release("mid")
      }).pipe(Effect.provide(kind.storage(place))))
      yield* Effect.scoped(Effect.gen(function*() {
        const r = yield* registry
        assert.deepStrictEqual((yield* r.list).map((a) => [a.worker_id, a.delegated_from]), [
          ["leaf", "root"],
          ["root", undefined]
        ])
        yield* assertConflict(
          r.allocate("other", scope([["/repo/src/lib/x", "write"]], [], "root")),
          "/repo/src/lib/x",
          "leaf"
        )
        yield* r.release("root")
        yield* r.release("leaf")
      }).pipe(Effect.provide(kind.storage(place))))
      yield* withStoreRuntime(kind, place, (rt) =>
        rt.createWorker({ worker_id: Ids.WorkerId.make("keeper"), display_name: "K", scope: scope([["/repo", "write"]]) }))
      yield* withStoreRuntime(kind, place, (rt) =>
        Effect.gen(function*() {
          const r = yield* AllocationRegistry.AllocationRegistry
          assert.isTrue(yield* r.check("keeper", "/repo/a", "write"))
          const conflict = yield* Effect.flip(rt.createWorker({ display_name: "X", scope: scope([["/repo", "write"]]) }))
          assert.strictEqual(conflict._tag, "ScopeConflict")
        }))
    }))
})
