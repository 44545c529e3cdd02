import { echo, testPolicy } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Deferred, Effect, Exit, Fiber, Layer, Option, Redacted, Ref, Scope } from "effect"
import { AllocationRegistry, Ids, Runtime, WorkerStore } from "@yoi/worker-runtime"
import * as Pg from "@yoi/worker-runtime/pg"
import * as PgFixture from "./fixtures/pg.js"
import { fullTranscript } from "./fixtures/sqlite.js"

const held = echo({ delay_ms: 60_000, chunk_size: 4 })

/** Builds a layer in a scope of its own, so a test can close it (an owner going away) while the test goes on. */
const open = <A, E>(layer: Layer.Layer<A, E>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(layer, scope)
    return { context, close: Scope.close(scope, Exit.void) }
  })

const storage = (url: string, options: Partial<Pg.PgStoreOptions> = {}) =>
  Pg.layerStorage({ url: Redacted.make(url), runtimeId: "alpha", ...options })

const leaseRow = (url: string) =>
  Effect.map(
    PgFixture.exec(url, ["SELECT instance_id, expires_at FROM yoi_runtime.owner_lease"]),
    (results) => results[0]![0] as { instance_id: string; expires_at: string }
  )

describe("PostgreSQL owner lease", () => {
  it.scoped("a second instance waits as a standby and takes over once the owner gives the store up", () =>
    Effect.gen(function*() {
      const url = yield* PgFixture.tempDatabase
      const owner = yield* open(storage(url, { leaseMs: 2_000 }))
      yield* Context.get(owner.context, WorkerStore.WorkerStore).commit({ deleted: [Ids.WorkerId.make("nobody")] })
      const standby = yield* Deferred.make<Pg.LeaseHolder>()
      const second = yield* Effect.fork(open(storage(url, {
        leaseMs: 2_000,
        pollMs: 50,
        onStandby: (holder) => Deferred.succeed(standby, holder)
      })))
      const holder = yield* Deferred.await(standby)
      assert.strictEqual(holder.runtime_id, "alpha")
      assert.strictEqual(holder.pid, process.pid)
      assert.strictEqual((yield* leaseRow(url)).instance_id, holder.instance_id)
      assert.isTrue(Option.isNone(yield* Fiber.poll(second)))
      yield* owner.close
      const taken = yield* Fiber.join(second)
      assert.notStrictEqual((yield* leaseRow(url)).instance_id, holder.instance_id)
      yield* taken.close
      assert.strictEqual(Number((yield* leaseRow(url)).expires_at), 0)
    }))

  it.scoped("a clean close gives the lease up even while a renewal is in flight: the next owner never waits", () =>
    Effect.gen(function*() {
      const url = yield* PgFixture.tempDatabase
      const waited = yield* Ref.make(0)
      for (let i = 0; i < 12; i++) {
        // A long lease renewed constantly: a close racing a renewal would leave the lease alive for a minute.
        const owner = yield* open(storage(url, {
          leaseMs: 60_000,
          renewMs: 5,
          pollMs: 50,
          onStandby: () => Ref.update(waited, (n) => n + 1)
        }))
        yield* Effect.sleep("15 millis").pipe(Effect.withClock(Clock.make()))
        yield* owner.close
        assert.strictEqual(Number((yield* leaseRow(url)).expires_at), 0)
      }
      assert.strictEqual(yield* Ref.get(waited), 0)
    }))

  it.scoped("a deposed owner can never write: commits, diagnostics and allocations are refused", () =>
    Effect.gen(function*() {
      const url = yield* PgFixture.tempDatabase
      const owner = yield* open(storage(url, { leaseMs: 60_000 }))
      const store = Context.get(owner.context, WorkerStore.WorkerStore)
      const registry = Context.get(owner.context, AllocationRegistry.AllocationRegistry)
      yield* registry.allocate("a", { allow: [{ path: "/repo", access: "write" }] })
      // Another instance takes the lease over, as a standby would once this one stalled past its lease.
      yield* PgFixture.exec(url, [
        "UPDATE yoi_runtime.owner_lease SET instance_id = 'i_thief', " +
        "expires_at = (extract(epoch from clock_timestamp()) * 1000)::bigint + 60000"
      ])
      const refused = yield* Effect.flip(store.commit({ deleted: [Ids.WorkerId.make("a")] }))
      assert.strictEqual(refused._tag, "StoreError")
      assert.include(refused.message, "no longer holds the owner lease of runtime alpha")
      assert.strictEqual((yield* Effect.flip(store.addDiagnostic({ severity: "info", code: "x", message: "y" })))._tag, "StoreError")
      const allocation = yield* Effect.flip(registry.allocate("b", { allow: [{ path: "/other", access: "write" }] }))
      assert.strictEqual(allocation._tag, "RuntimeUnavailable")
      const rows = yield* PgFixture.exec(url, [
        "SELECT worker_id FROM yoi_runtime.allocations",
        "SELECT count(*)::int AS n FROM yoi_runtime.diagnostics WHERE code = 'x'"
      ])
      assert.deepStrictEqual(rows[0], [{ worker_id: "a" }])
      assert.deepStrictEqual(rows[1], [{ n: 0 }])
      yield* owner.close
      assert.strictEqual((yield* leaseRow(url)).instance_id, "i_thief")
    }))

  it.scoped("a takeover after the owner's lease expired recovers its running turns as interrupted", () =>
    Effect.gen(function*() {
      const url = yield* PgFixture.tempDatabase
      const runtime = (leaseMs: number) =>
        Pg.layerPg({ url: Redacted.make(url), runtimeId: "alpha", leaseMs, pollMs: 50, policy: testPolicy })
      const first = yield* open(runtime(60_000))
      const rt = Context.get(first.context, Runtime.Runtime)
      const created = yield* Effect.forEach(
        [0, 1, 2, 3, 4],
        (i) => rt.createWorker({ display_name: `W${i}`, engine: held, scope: { allow: [{ path: `/w${i}`, access: "write" }] } }),
        { concurrency: "unbounded" }
      )
      const accepted = yield* Effect.forEach(created, (c) => rt.sendInput(c.worker.worker_id, { text: "hold" }), {
        concurrency: "unbounded"
      })
      const head = yield* rt.headCursor
      // The owner stalls past its lease (its renewals stop reaching the database): the lease expires.
      yield* PgFixture.exec(url, ["UPDATE yoi_runtime.owner_lease SET expires_at = 1"])
      const second = yield* open(runtime(60_000))
      const next = Context.get(second.context, Runtime.Runtime)
      const workers = (yield* next.listWorkers()).items
      assert.strictEqual(workers.length, 5)
      for (const w of workers) {
        assert.strictEqual(w.status, "idle")
        assert.strictEqual(w.last_turn?.outcome, "interrupted")
      }
      const transcript = yield* fullTranscript(next, created[0]!.worker.worker_id)
      assert.deepStrictEqual(transcript.map((e) => e.data._tag), ["user_input", "notice"])
      assert.strictEqual(transcript[0]!.turn_id, accepted[0]!.turn_id)
      const registry = Context.get(second.context, AllocationRegistry.AllocationRegistry)
      assert.isTrue(yield* registry.check(created[0]!.worker.worker_id, "/w0/x", "write"))
      // The cursor of the first owner resumes on the second: same epoch, no expiry.
      const stream = yield* Effect.either(Effect.scoped(next.subscribe({ cursor: head })))
      assert.isTrue(stream._tag === "Right")
      // The deposed owner's writes are refused.
      const refused = yield* Effect.flip(rt.createWorker({ display_name: "late" }))
      assert.strictEqual(refused._tag, "RuntimeUnavailable")
      const rows = yield* PgFixture.exec(url, ["SELECT count(*)::int AS n FROM yoi_runtime.workers"])
      assert.deepStrictEqual(rows[0], [{ n: 5 }])
      yield* first.close
      yield* second.close
    }))
})
