import { echo, testPolicy } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { RuntimeClient, type RuntimeClientService } from "@yoi/runtime-api"
import { type Domain, Ids, layerMemory, Runtime } from "@yoi/worker-runtime"
import { Effect, Layer, Redacted, Schedule } from "effect"
import { Auth, RuntimeServer } from "../src/index.js"

const TOKEN = "client-test-token-0123456789"
const wid = Ids.WorkerId.make

const serve = () =>
  RuntimeServer.layerTest({ auth: Auth.token(Redacted.make(TOKEN)), docs: false }).pipe(
    Layer.provideMerge(layerMemory({ policy: testPolicy, runtimeId: "rt-client" }))
  )

const client = RuntimeClient.make({ token: Redacted.make(TOKEN), retries: 0 })

/** A worker whose turns take a minute: it stays `running` until cancelled. */
const slow = echo({ delay_ms: 60_000, chunk_size: 1 })

const untilIdle = (c: RuntimeClientService, workerId: string) =>
  c.workers.get({ path: { worker_id: workerId } }).pipe(
    Effect.filterOrFail((w) => w.status === "idle", () => "still running"),
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("10 seconds")))
  )

describe("RuntimeClient against a real server", () => {
  it.live("refuses a worker_id that would address another route, before anything is sent", () =>
    Effect.gen(function*() {
      const c = yield* client
      yield* c.workers.create({ payload: { worker_id: wid("victim"), display_name: "Victim" } })
      for (const id of ["a/../victim", "../victim", "victim/..", "a%2F..%2Fvictim"]) {
        const error = yield* Effect.flip(c.workers.stop({ path: { worker_id: id } }))
        assert.strictEqual(error._tag, "ParseError", id)
      }
      assert.strictEqual((yield* c.workers.get({ path: { worker_id: "victim" } })).status, "idle")
    }).pipe(Effect.provide(serve())))

  it.live("probes and the runtime summary", () =>
    Effect.gen(function*() {
      const c = yield* client
      assert.deepStrictEqual(yield* c.health.healthz(), { status: "ok" })
      assert.deepStrictEqual(yield* c.health.readyz(), { status: "ready", runtime_id: "rt-client" })
      const summary = yield* c.runtime.summary()
      assert.strictEqual(summary.runtime_id, "rt-client")
      assert.strictEqual(summary.status, "ready")
      assert.strictEqual(summary.store, "memory")
      assert.strictEqual(summary.counts.total, 0)
    }).pipe(Effect.provide(serve())))

  it.live("create (201, then 200 for an idempotent repeat), get, list with filter and pages", () =>
    Effect.gen(function*() {
      const c = yield* client
      const first = yield* c.workers.create({ payload: { worker_id: wid("ada"), display_name: "Ada" } })
      assert.isTrue(first.created)
      assert.strictEqual(first.worker.display_ref, "Ada@rt-client")
      const again = yield* c.workers.create({ payload: { worker_id: wid("ada"), display_name: "Ada" } })
      assert.isFalse(again.created)
      assert.strictEqual(again.worker.worker_id, "ada")
      const conflict = yield* Effect.flip(c.workers.create({ payload: { worker_id: wid("ada"), display_name: "Bob" } }))
      assert.strictEqual(conflict._tag, "WorkerAlreadyExists")

      yield* c.workers.create({ payload: { worker_id: wid("bob"), display_name: "Bob" } })
      yield* c.workers.stop({ path: { worker_id: "bob" } })
      assert.strictEqual((yield* c.workers.get({ path: { worker_id: "ada" } })).status, "idle")

      const page1 = yield* c.workers.list({ urlParams: { limit: 1 } })
      assert.deepStrictEqual(page1.items.map((w) => w.worker_id), ["ada"])
      assert.isString(page1.next_page_token)
      const page2 = yield* c.workers.list({ urlParams: { limit: 1, page_token: page1.next_page_token! } })
      assert.deepStrictEqual(page2.items.map((w) => w.worker_id), ["bob"])
      assert.isUndefined(page2.next_page_token)
      const stopped = yield* c.workers.list({ urlParams: { status: "stopped" } })
      assert.deepStrictEqual(stopped.items.map((w) => w.worker_id), ["bob"])
      assert.strictEqual((yield* c.runtime.summary()).counts.stopped, 1)
    }).pipe(Effect.provide(serve())))

  it.live("input (202) runs a turn whose transcript comes back in pages with a cursor", () =>
    Effect.gen(function*() {
      const c = yield* client
      yield* c.workers.create({ payload: { worker_id: wid("echo"), display_name: "Echo" } })
      const result = yield* c.workers.input({ path: { worker_id: "echo" }, payload: { text: "hello there" } })
      assert.isTrue("turn_id" in result, "an input to an idle worker starts a turn")
      const accepted = result as Domain.InputAccepted
      assert.match(accepted.turn_id, /^t_/)
      assert.strictEqual(accepted.worker.current_turn_id, accepted.turn_id)
      const idle = yield* untilIdle(c, "echo")
      assert.strictEqual(idle.last_turn?.outcome, "completed")
      assert.strictEqual(idle.usage.turns, 1)

      const page = yield* c.workers.transcript({ path: { worker_id: "echo" }, urlParams: { limit: 1 } })
      assert.deepStrictEqual(page.items.map((e) => e.data), [{ _tag: "user_input", text: "hello there" }])
      assert.match(page.cursor, /^c1\./)
      const rest = yield* c.workers.transcript({
        path: { worker_id: "echo" },
        urlParams: { page_token: page.next_page_token! }
      })
      assert.deepStrictEqual(rest.items.map((e) => e.data), [{ _tag: "assistant_message", text: "hello there" }])
      assert.isUndefined(rest.next_page_token)

      const usage = yield* c.runtime.usage({ urlParams: {} })
      assert.strictEqual(usage.totals.turns, 1)
      assert.deepStrictEqual(usage.workers.map((w) => w.worker_id), ["echo"])
      const diagnostics = yield* c.runtime.diagnostics({ urlParams: { limit: 10 } })
      assert.isArray(diagnostics.items)
    }).pipe(Effect.provide(serve())))

  it.live("busy under concurrent inputs over HTTP: exactly one turn starts, the rest get WorkerBusy", () =>
    Effect.gen(function*() {
      const c = yield* client
      yield* c.workers.create({ payload: { worker_id: wid("busy"), display_name: "Busy", engine: slow } })
      const results = yield* Effect.all(
        Array.from({ length: 12 }, (_, i) =>
          Effect.either(c.workers.input({ path: { worker_id: "busy" }, payload: { text: `input ${i}` } }))),
        { concurrency: "unbounded" }
      )
      const started = results.filter((r) => r._tag === "Right")
      const busy = results.flatMap((r) => (r._tag === "Left" ? [r.left] : []))
      assert.strictEqual(started.length, 1)
      assert.strictEqual(busy.length, 11)
      const turnId = started[0]!._tag === "Right" ? (started[0]!.right as Domain.InputAccepted).turn_id : ""
      for (const error of busy) {
        assert.strictEqual(error._tag, "WorkerBusy")
        if (error._tag === "WorkerBusy") assert.strictEqual(error.turn_id, turnId)
      }
      const worker = yield* c.workers.get({ path: { worker_id: "busy" } })
      assert.strictEqual(worker.transcript_length, 1)

      const cancelled = yield* c.workers.cancel({ path: { worker_id: "busy" }, payload: null, urlParams: {} })
      assert.isTrue(cancelled.cancelled)
      assert.strictEqual(cancelled.turn_id, turnId)
      assert.strictEqual(cancelled.worker.status, "idle")
      const noop = yield* c.workers.cancel({ path: { worker_id: "busy" }, payload: null, urlParams: {} })
      assert.isFalse(noop.cancelled)
    }).pipe(Effect.provide(serve())))

  it.live("stop, input refused, restore, delete only when stopped, then gone", () =>
    Effect.gen(function*() {
      const c = yield* client
      const path = { worker_id: "life" }
      yield* c.workers.create({ payload: { worker_id: wid("life"), display_name: "Life", engine: slow } })
      yield* c.workers.input({ path, payload: { text: "long" } })
      const notStopped = yield* Effect.flip(c.workers.delete({ path }))
      assert.strictEqual(notStopped._tag, "WorkerStateConflict")
      assert.strictEqual((yield* c.workers.stop({ path })).status, "stopped")
      assert.strictEqual((yield* c.workers.stop({ path })).status, "stopped")
      const refused = yield* Effect.flip(c.workers.input({ path, payload: { text: "again" } }))
      assert.strictEqual(refused._tag, "WorkerStopped")
      assert.strictEqual((yield* c.workers.restore({ path })).status, "idle")
      yield* c.workers.stop({ path })
      assert.deepStrictEqual(yield* c.workers.delete({ path }), { worker_id: "life", deleted: true })
      const gone = yield* Effect.flip(c.workers.get({ path }))
      assert.strictEqual(gone._tag, "WorkerNotFound")
    }).pipe(Effect.provide(serve())))

  it.live("typed errors: unknown worker on every worker route, scope conflict, bad limit", () =>
    Effect.gen(function*() {
      const c = yield* client
      const path = { worker_id: "nobody" }
      const errors = yield* Effect.all([
        Effect.flip(c.workers.get({ path })),
        Effect.flip(c.workers.input({ path, payload: { text: "hi" } })),
        Effect.flip(c.workers.cancel({ path, payload: null, urlParams: {} })),
        Effect.flip(c.workers.stop({ path })),
        Effect.flip(c.workers.restore({ path })),
        Effect.flip(c.workers.delete({ path })),
        Effect.flip(c.workers.transcript({ path, urlParams: {} }))
      ])
      assert.deepStrictEqual(errors.map((e) => e._tag), Array(7).fill("WorkerNotFound"))

      const scope = { allow: [{ path: "/srv/repo", access: "write" as const }] }
      yield* c.workers.create({ payload: { display_name: "Writer", scope } })
      const clash = yield* Effect.flip(c.workers.create({ payload: { display_name: "Other", scope } }))
      assert.strictEqual(clash._tag, "ScopeConflict")

      const limit = yield* Effect.flip(c.workers.list({ urlParams: { limit: 100_000 } }))
      assert.strictEqual(limit._tag, "InvalidInput")
      if (limit._tag === "InvalidInput") assert.strictEqual(limit.field, "limit")
    }).pipe(Effect.provide(serve())))

  it.live("a draining runtime answers RuntimeUnavailable to input and to /readyz", () =>
    Effect.gen(function*() {
      const c = yield* client
      const runtime = yield* Runtime.Runtime
      yield* c.workers.create({ payload: { worker_id: wid("late"), display_name: "Late" } })
      yield* runtime.drain(0)
      const refused = yield* Effect.flip(c.workers.input({ path: { worker_id: "late" }, payload: { text: "hi" } }))
      assert.strictEqual(refused._tag, "RuntimeUnavailable")
      const ready = yield* Effect.flip(c.health.readyz())
      assert.strictEqual(ready._tag, "RuntimeUnavailable")
      assert.strictEqual((yield* c.runtime.summary()).status, "draining")
    }).pipe(Effect.provide(serve())))

  it.live("a wrong token fails every authenticated route with Unauthorized, not the probes", () =>
    Effect.gen(function*() {
      const c = yield* RuntimeClient.make({ token: Redacted.make("not-the-token-at-all"), retries: 0 })
      const errors = yield* Effect.all([
        Effect.flip(c.runtime.summary()),
        Effect.flip(c.workers.list({ urlParams: {} })),
        Effect.flip(c.workers.create({ payload: { display_name: "X" } }))
      ])
      assert.deepStrictEqual(errors.map((e) => e._tag), ["Unauthorized", "Unauthorized", "Unauthorized"])
      assert.strictEqual((yield* c.health.healthz()).status, "ok")
      const runtime = yield* Runtime.Runtime
      assert.strictEqual((yield* runtime.summary).counts.total, 0)
    }).pipe(Effect.provide(serve())))
})
