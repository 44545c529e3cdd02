import { echo, testPolicy } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, Layer, Stream, TestClock } from "effect"
import { AllocationRegistry, Domain, type Engine, Ids, Layers, Runtime, WorkerStore } from "@yoi/worker-runtime"
import {
  awaitPendingSleep,
  awaitStatus,
  awaitTurnEnd,
  eventsSince,
  fullTranscript,
  runTurn,
  terminalKinds,
  textOf,
  withRuntime
} from "./utils.js"

const held = echo({ delay_ms: 60_000 })

describe("create", () => {
  it.effect("creates an idle worker with a generated, creation-sorted id and a worker.created event", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const before = yield* rt.headCursor
        const results = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          (i) => rt.createWorker({ display_name: `Worker ${i}` })
        )
        for (const { worker, created } of results) {
          assert.isTrue(created)
          assert.match(worker.worker_id, /^w_[0-9a-z]{26}$/)
          assert.strictEqual(worker.status, "idle")
          assert.strictEqual(worker.runtime_id, "alpha")
          assert.deepStrictEqual(worker.engine, { profile: "echo", provider: "echo" })
          assert.strictEqual(worker.transcript_length, 0)
          assert.deepStrictEqual(worker.usage, Domain.emptyUsage)
        }
        assert.strictEqual(results[3]!.worker.display_ref, "Worker 3@alpha")
        const ids = results.map((r) => r.worker.worker_id)
        assert.deepStrictEqual([...ids].sort(), ids)
        const listed = yield* rt.listWorkers({ limit: 500 })
        assert.deepStrictEqual(listed.items.map((w) => w.worker_id), ids)
        const events = yield* eventsSince(rt, before)
        assert.deepStrictEqual(events.map((e) => e.kind), ids.map(() => "worker.created"))
        assert.deepStrictEqual(events.map((e) => e.worker_id), ids)
        const first = events[0]!
        assert.deepStrictEqual(first.kind === "worker.created" ? first.data.worker : undefined, results[0]!.worker)
      }), { runtimeId: "alpha" }))

  it.effect("is idempotent for a client worker_id with the same spec, and refuses a different spec", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const spec = { worker_id: Ids.WorkerId.make("coder-1"), display_name: "Coder", metadata: { team: "a" } }
        const first = yield* rt.createWorker(spec)
        const head = yield* rt.headCursor
        const again = yield* rt.createWorker({ metadata: { team: "a" }, display_name: "Coder", worker_id: spec.worker_id })
        assert.isTrue(first.created)
        assert.isFalse(again.created)
        assert.deepStrictEqual(again.worker, first.worker)
        assert.strictEqual(yield* rt.headCursor, head)
        const conflict = yield* Effect.flip(rt.createWorker({ ...spec, display_name: "Other" }))
        assert.strictEqual(conflict._tag, "WorkerAlreadyExists")
        assert.strictEqual(yield* rt.headCursor, head)
        assert.strictEqual((yield* rt.getWorker("coder-1")).display_name, "Coder")
      })))

  it.effect("creates exactly one worker when 50 identical creates race", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const before = yield* rt.headCursor
        const spec = { worker_id: Ids.WorkerId.make("racer"), display_name: "Racer", initial_input: "go" }
        const results = yield* Effect.all(Array.from({ length: 50 }, () => rt.createWorker(spec)), {
          concurrency: "unbounded"
        })
        assert.strictEqual(results.filter((r) => r.created).length, 1)
        assert.isTrue(results.every((r) => r.worker.worker_id === "racer"))
        assert.strictEqual((yield* rt.summary).counts.total, 1)
        yield* awaitStatus(rt, "racer", "idle")
        const events = yield* eventsSince(rt, before)
        assert.strictEqual(events.filter((e) => e.kind === "worker.created").length, 1)
        assert.strictEqual(events.filter((e) => e.kind === "turn.started").length, 1)
        const { items } = yield* fullTranscript(rt, "racer")
        assert.deepStrictEqual(items.map((e) => e.data._tag), ["user_input", "assistant_message"])
      })))

  it.effect("starts a turn from initial_input", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const before = yield* rt.headCursor
        const { worker } = yield* rt.createWorker({ display_name: "Greeter", initial_input: "hello there" })
        assert.strictEqual(worker.status, "running")
        assert.isDefined(worker.current_turn_id)
        const end = yield* awaitTurnEnd(rt, worker.worker_id, worker.current_turn_id!, before)
        assert.strictEqual(end.kind, "turn.completed")
        const { items } = yield* fullTranscript(rt, worker.worker_id)
        assert.deepStrictEqual(items.map(textOf), ["hello there", "hello there"])
      })))
})

describe("turns", () => {
  it.effect("runs a complete echo turn: transcript, usage, last_turn and back to idle", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "Echo", engine: echo({ chunk_size: 4 }) })
        const { accepted, end } = yield* runTurn(rt, worker.worker_id, "the quick brown fox")
        assert.strictEqual(accepted.worker.status, "running")
        assert.strictEqual(accepted.worker.current_turn_id, accepted.turn_id)
        assert.strictEqual(end.kind, "turn.completed")
        const after = yield* rt.getWorker(worker.worker_id)
        assert.strictEqual(after.status, "idle")
        assert.isUndefined(after.current_turn_id)
        assert.strictEqual(after.last_turn?.turn_id, accepted.turn_id)
        assert.strictEqual(after.last_turn?.outcome, "completed")
        assert.strictEqual(after.transcript_length, 2)
        assert.strictEqual(after.usage.input_tokens, 4)
        assert.strictEqual(after.usage.output_tokens, 4)
        assert.strictEqual(after.usage.turns, 1)
        const { items } = yield* fullTranscript(rt, worker.worker_id)
        assert.deepStrictEqual(items.map((e) => [e.index, e.data._tag, textOf(e), e.turn_id]), [
          [0, "user_input", "the quick brown fox", accepted.turn_id],
          [1, "assistant_message", "the quick brown fox", accepted.turn_id]
        ])
        assert.isUndefined((items[1]!.data as { partial?: boolean }).partial)
      })))

  it.effect("accepts exactly one of 100 concurrent inputs while the turn is in flight", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "Busy", engine: held })
        const before = yield* rt.headCursor
        const results = yield* Effect.all(
          Array.from({ length: 100 }, (_, i) => Effect.either(rt.sendInput(worker.worker_id, { text: `input ${i}` }))),
          { concurrency: "unbounded" }
        )
        const accepted = results.filter(Either.isRight).map((r) => r.right)
        const rejected = results.filter(Either.isLeft).map((r) => r.left)
        assert.strictEqual(accepted.length, 1)
        assert.strictEqual(rejected.length, 99)
        for (const e of rejected) {
          assert.strictEqual(e._tag, "WorkerBusy")
          assert.strictEqual(e._tag === "WorkerBusy" ? e.turn_id : undefined, accepted[0]!.turn_id)
        }
        const events = yield* eventsSince(rt, before)
        assert.strictEqual(events.filter((e) => e.kind === "turn.started").length, 1)
        const { items } = yield* fullTranscript(rt, worker.worker_id)
        assert.strictEqual(items.filter((e) => e.data._tag === "user_input").length, 1)
        assert.strictEqual((yield* rt.getWorker(worker.worker_id)).current_turn_id, accepted[0]!.turn_id)
      })))

  it.effect("never overlaps two turns when 100 inputs race against turns that finish at once", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "Racy", engine: echo({ chunk_size: 1 }) })
        const before = yield* rt.headCursor
        const results = yield* Effect.all(
          Array.from({ length: 100 }, (_, i) =>
            Effect.either(Effect.zipRight(Effect.yieldNow(), rt.sendInput(worker.worker_id, { text: `n${i}` })))),
          { concurrency: "unbounded" }
        )
        const accepted = results.filter(Either.isRight).map((r) => r.right.turn_id)
        assert.isAtLeast(accepted.length, 1)
        for (const r of results) if (Either.isLeft(r)) assert.strictEqual(r.left._tag, "WorkerBusy")
        const final = yield* awaitStatus(rt, worker.worker_id, "idle")
        assert.strictEqual(final.usage.turns, accepted.length)
        const events = yield* eventsSince(rt, before, worker.worker_id)
        let open: string | undefined
        for (const e of events) {
          if (e.kind === "turn.started") {
            assert.isUndefined(open, "a turn started while another was running")
            open = e.turn_id
          } else if (terminalKinds.has(e.kind)) {
            assert.strictEqual(e.turn_id, open)
            open = undefined
          }
        }
        assert.deepStrictEqual(events.filter((e) => e.kind === "turn.started").map((e) => e.turn_id), accepted.sort())
      })))

  it.effect("records a failing turn as a typed notice and a turn.failed event, and stays usable", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({
          display_name: "Flaky",
          engine: echo({ chunk_size: 2, fail_after_chunks: 1 })
        })
        const before = yield* rt.headCursor
        const { accepted, end } = yield* runTurn(rt, worker.worker_id, "abcdef")
        assert.strictEqual(end.kind, "turn.failed")
        const data = end.data
        assert.strictEqual(data.outcome, "failed")
        assert.strictEqual(data.error?._tag, "EngineError")
        assert.strictEqual(data.error?.code, "echo_failure")
        const events = yield* eventsSince(rt, before)
        assert.deepStrictEqual(events.map((e) => e.kind), [
          "turn.started",
          "transcript.appended",
          "worker.status",
          "turn.delta",
          "transcript.appended",
          "transcript.appended",
          "turn.failed",
          "worker.status"
        ])
        const { items } = yield* fullTranscript(rt, worker.worker_id)
        assert.deepStrictEqual(items.map((e) => e.data), [
          { _tag: "user_input", text: "abcdef" },
          { _tag: "assistant_message", text: "ab", partial: true },
          {
            _tag: "notice",
            code: "turn_failed",
            message: "turn failed: echo failed after 1 chunks",
            error: { _tag: "EngineError", code: "echo_failure", message: "echo failed after 1 chunks" }
          }
        ])
        const after = yield* rt.getWorker(worker.worker_id)
        assert.strictEqual(after.status, "idle")
        assert.deepStrictEqual(after.last_turn && [after.last_turn.turn_id, after.last_turn.outcome], [
          accepted.turn_id,
          "failed"
        ])
        const next = yield* runTurn(rt, worker.worker_id, "ok")
        assert.strictEqual(next.end.kind, "turn.completed")
        assert.strictEqual((yield* rt.getWorker(worker.worker_id)).usage.turns, 2)
      })))

  it.effect("cancels a turn mid-stream: partial text kept, turn.cancelled, idle, and the engine stops", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({
          display_name: "Slow",
          engine: echo({ chunk_size: 3, delay_ms: 100 })
        })
        const before = yield* rt.headCursor
        const accepted = yield* rt.sendInput(worker.worker_id, { text: "abcdefghi" })
        yield* awaitPendingSleep
        yield* TestClock.adjust(100)
        const events = yield* rt.subscribe({ cursor: before, worker_id: worker.worker_id })
        yield* events.pipe(Stream.filter((e) => e.kind === "turn.delta"), Stream.runHead)
        const cancelled = yield* rt.cancel(worker.worker_id)
        assert.isTrue(cancelled.cancelled)
        assert.strictEqual(cancelled.turn_id, accepted.turn_id)
        assert.strictEqual(cancelled.worker.status, "idle")
        assert.strictEqual(cancelled.worker.last_turn?.outcome, "cancelled")
        const head = yield* rt.headCursor
        yield* TestClock.adjust(10_000)
        assert.strictEqual(yield* rt.headCursor, head, "the cancelled engine kept emitting")
        const { items } = yield* fullTranscript(rt, worker.worker_id)
        assert.deepStrictEqual(items.map((e) => e.data), [
          { _tag: "user_input", text: "abcdefghi" },
          { _tag: "assistant_message", text: "abc", partial: true }
        ])
        const kinds = (yield* eventsSince(rt, before)).map((e) => e.kind)
        assert.deepStrictEqual(kinds, [
          "turn.started",
          "transcript.appended",
          "worker.status",
          "turn.delta",
          "transcript.appended",
          "turn.cancelled",
          "worker.status"
        ])
        const again = yield* rt.cancel(worker.worker_id)
        assert.isFalse(again.cancelled)
        assert.isUndefined(again.turn_id)
        assert.strictEqual(yield* rt.headCursor, head)
        const next = yield* rt.sendInput(worker.worker_id, { text: "x" })
        assert.notStrictEqual(next.turn_id, accepted.turn_id)
      }).pipe(Effect.scoped)))

  it.effect("cancel on an idle worker is a no-op that says so", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "Idle" })
        const head = yield* rt.headCursor
        const result = yield* rt.cancel(worker.worker_id)
        assert.deepStrictEqual(result, { cancelled: false, worker })
        assert.strictEqual(yield* rt.headCursor, head)
      })))
})

describe("turns that go wrong", () => {
  const crasher: Engine.Engine = {
    provider: "crasher",
    tools: [],
    validate: () => Effect.void,
    turn: () => Stream.concat(Stream.make({ _tag: "TextDelta" as const, text: "hi" }), Stream.dieMessage("boom"))
  }

  it.effect("an engine that dies ends the turn as failed with a typed error, and the worker stays usable", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "Crashy", engine: { profile: "crasher" } })
        const { end } = yield* runTurn(rt, worker.worker_id, "x")
        assert.strictEqual(end.kind, "turn.failed")
        assert.deepStrictEqual(end.data.error, {
          _tag: "EngineError",
          code: "engine_defect",
          message: "the engine failed unexpectedly"
        })
        const after = yield* rt.getWorker(worker.worker_id)
        assert.strictEqual(after.status, "idle")
        const { items } = yield* fullTranscript(rt, worker.worker_id)
        assert.deepStrictEqual(items.map((e) => e.data._tag === "notice" ? e.data.code : e.data._tag), [
          "user_input",
          "assistant_message",
          "turn_failed"
        ])
        assert.strictEqual((yield* runTurn(rt, worker.worker_id, "y")).end.kind, "turn.failed")
      }), { engines: [crasher] }))

  it.effect("a caller interrupted while its input is being committed does not leave the worker running forever", () =>
    Effect.gen(function*() {
      const base = yield* WorkerStore.makeMemory
      const entered = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const store: WorkerStore.WorkerStoreService = {
        ...base,
        commit: (batch) =>
          (batch.events ?? []).some((e) => e.kind === "turn.started")
            ? Deferred.succeed(entered, undefined).pipe(
              Effect.zipRight(Deferred.await(gate)),
              Effect.zipRight(base.commit(batch))
            )
            : base.commit(batch)
      }
      const storage = Layer.merge(Layer.succeed(WorkerStore.WorkerStore, store), AllocationRegistry.layerMemory)
      yield* Effect.gen(function*() {
        const rt = yield* Runtime.Runtime
        const { worker } = yield* rt.createWorker({ display_name: "Interrupted" })
        const sender = yield* Effect.fork(rt.sendInput(worker.worker_id, { text: "hello" }))
        yield* Deferred.await(entered)
        const interrupter = yield* Effect.fork(Fiber.interrupt(sender))
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(interrupter)
        const after = yield* awaitStatus(rt, worker.worker_id, "idle")
        assert.strictEqual(after.last_turn?.outcome, "completed")
        assert.strictEqual(after.transcript_length, 2)
      }).pipe(Effect.provide(Layers.layerWith({ policy: testPolicy }, storage)))
    }))
})

describe("stop, restore, delete", () => {
  it.effect("stop during a turn cancels it and stops the worker; input is then refused until restore", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "Stoppable", engine: held })
        const accepted = yield* rt.sendInput(worker.worker_id, { text: "long job" })
        const before = yield* rt.headCursor
        const stopped = yield* rt.stop(worker.worker_id)
        assert.strictEqual(stopped.status, "stopped")
        assert.isUndefined(stopped.current_turn_id)
        assert.deepStrictEqual(stopped.last_turn && [stopped.last_turn.turn_id, stopped.last_turn.outcome], [
          accepted.turn_id,
          "cancelled"
        ])
        const events = yield* eventsSince(rt, before)
        assert.deepStrictEqual(events.map((e) => [e.kind, e.turn_id]), [
          ["turn.cancelled", accepted.turn_id],
          ["worker.status", undefined]
        ])
        assert.deepStrictEqual(events[1]!.data, { status: "stopped", previous: "running" })
        const refused = yield* Effect.flip(rt.sendInput(worker.worker_id, { text: "more" }))
        assert.strictEqual(refused._tag, "WorkerStopped")
        const head = yield* rt.headCursor
        assert.strictEqual((yield* rt.stop(worker.worker_id)).status, "stopped")
        assert.isFalse((yield* rt.cancel(worker.worker_id)).cancelled)
        assert.strictEqual(yield* rt.headCursor, head, "a second stop or a cancel on a stopped worker changed state")
        const restored = yield* rt.restore(worker.worker_id)
        assert.strictEqual(restored.status, "idle")
        const restoreEvents = yield* eventsSince(rt, head)
        assert.deepStrictEqual(restoreEvents.map((e) => [e.kind, e.data]), [
          ["worker.status", { status: "idle", previous: "stopped" }]
        ])
        const head2 = yield* rt.headCursor
        assert.strictEqual((yield* rt.restore(worker.worker_id)).status, "idle")
        assert.strictEqual(yield* rt.headCursor, head2, "restoring an idle worker changed state")
        const next = yield* rt.sendInput(worker.worker_id, { text: "again" })
        assert.strictEqual(next.worker.status, "running")
      })))

  it.effect("stops an idle worker with one worker.status event", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "Idle" })
        const before = yield* rt.headCursor
        assert.strictEqual((yield* rt.stop(worker.worker_id)).status, "stopped")
        const events = yield* eventsSince(rt, before)
        assert.deepStrictEqual(events.map((e) => [e.kind, e.data]), [
          ["worker.status", { status: "stopped", previous: "idle" }]
        ])
        assert.deepStrictEqual((yield* rt.summary).counts, { idle: 0, running: 0, stopped: 1, total: 1 })
      })))

  it.effect("deletes only a stopped worker; afterwards it is gone and its id can be reused", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const id = Ids.WorkerId.make("doomed")
        yield* rt.createWorker({ worker_id: id, display_name: "Doomed", engine: held })
        const idle = yield* Effect.flip(rt.delete(id))
        assert.strictEqual(idle._tag, "WorkerStateConflict")
        assert.strictEqual(idle._tag === "WorkerStateConflict" ? idle.status : "", "idle")
        yield* rt.sendInput(id, { text: "working" })
        const running = yield* Effect.flip(rt.delete(id))
        assert.strictEqual(running._tag === "WorkerStateConflict" ? running.status : running._tag, "running")
        assert.strictEqual((yield* rt.getWorker(id)).status, "running")
        yield* rt.stop(id)
        const before = yield* rt.headCursor
        assert.deepStrictEqual(yield* rt.delete(id), { worker_id: id, deleted: true })
        const events = yield* eventsSince(rt, before)
        assert.deepStrictEqual(events.map((e) => [e.kind, e.worker_id]), [["worker.deleted", id]])
        const gone: ReadonlyArray<Effect.Effect<unknown, { readonly _tag: string }>> = [
          rt.getWorker(id),
          rt.sendInput(id, { text: "hi" }),
          rt.cancel(id),
          rt.stop(id),
          rt.restore(id),
          rt.delete(id),
          rt.transcript(id),
          Effect.scoped(rt.subscribe({ worker_id: id }))
        ]
        for (const failure of gone) {
          assert.strictEqual((yield* Effect.flip(failure))._tag, "WorkerNotFound")
        }
        assert.strictEqual((yield* rt.listWorkers()).items.length, 0)
        const again = yield* rt.createWorker({ worker_id: id, display_name: "Reborn" })
        assert.isTrue(again.created)
        assert.strictEqual(again.worker.transcript_length, 0)
        assert.strictEqual((yield* fullTranscript(rt, id)).items.length, 0)
      })))
})

describe("lists, usage, summary", () => {
  it.effect("pages the worker list and filters it by status", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const created = yield* Effect.forEach(
          Array.from({ length: 7 }, (_, i) => i),
          (i) => Effect.map(rt.createWorker({ display_name: `W${i}` }), (r) => r.worker.worker_id)
        )
        yield* rt.stop(created[1]!)
        yield* rt.stop(created[5]!)
        const seen: Array<string> = []
        let token: string | undefined
        let pages = 0
        do {
          const page = yield* rt.listWorkers(token === undefined ? { limit: 3 } : { limit: 3, page_token: token })
          assert.isAtMost(page.items.length, 3)
          seen.push(...page.items.map((w) => w.worker_id))
          token = page.next_page_token
          pages += 1
        } while (token !== undefined)
        assert.deepStrictEqual(seen, created)
        assert.strictEqual(pages, 3)
        const stopped = yield* rt.listWorkers({ status: "stopped" })
        assert.deepStrictEqual(stopped.items.map((w) => w.worker_id), [created[1], created[5]])
        assert.strictEqual((yield* rt.listWorkers({ status: "idle" })).items.length, 5)
        assert.strictEqual((yield* rt.listWorkers({ status: "running" })).items.length, 0)
        const summary = yield* rt.summary
        assert.deepStrictEqual(summary.counts, { idle: 5, running: 0, stopped: 2, total: 7 })
        assert.strictEqual(summary.status, "ready")
        assert.strictEqual(summary.store, "memory")
        assert.deepStrictEqual(summary.capabilities.engines, ["echo"])
        assert.strictEqual(summary.cursor, yield* rt.headCursor)
      })))

  it.effect("keeps usage per worker and sums it per runtime", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const a = (yield* rt.createWorker({ display_name: "A" })).worker.worker_id
        const b = (yield* rt.createWorker({ display_name: "B" })).worker.worker_id
        const c = (yield* rt.createWorker({ display_name: "C", engine: echo({ fail_after_chunks: 0 }) }))
          .worker.worker_id
        yield* runTurn(rt, a, "one two three")
        yield* runTurn(rt, a, "four five")
        yield* runTurn(rt, b, "six")
        assert.strictEqual((yield* runTurn(rt, c, "seven eight")).end.kind, "turn.failed")
        const ua = (yield* rt.getWorker(a)).usage
        assert.deepStrictEqual([ua.input_tokens, ua.output_tokens, ua.cached_tokens, ua.turns], [5, 5, 0, 2])
        assert.isDefined(ua.last_activity_at)
        const uc = (yield* rt.getWorker(c)).usage
        assert.deepStrictEqual([uc.input_tokens, uc.output_tokens, uc.turns], [0, 0, 1])
        const overview = yield* rt.usage()
        assert.strictEqual(overview.runtime_id, "local")
        const t = overview.totals
        assert.deepStrictEqual([t.input_tokens, t.output_tokens, t.cached_tokens, t.turns], [6, 6, 0, 4])
        assert.deepStrictEqual(overview.workers.map((w) => w.worker_id), [a, b, c])
        assert.deepStrictEqual((yield* rt.usage({ limit: 1 })).workers.map((w) => w.display_name), ["A"])
        const summary = yield* rt.summary
        assert.deepStrictEqual(summary.usage, overview.totals)
        const latest = [ua, (yield* rt.getWorker(b)).usage, uc].map((u) => u.last_activity_at!).sort().at(-1)
        assert.strictEqual(t.last_activity_at, latest)
      })))
})

describe("drain", () => {
  it.effect("refuses new input, then cancels turns still running after the grace period", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const slow = (yield* rt.createWorker({ display_name: "Slow", engine: held })).worker.worker_id
        const idle = (yield* rt.createWorker({ display_name: "Idle" })).worker.worker_id
        const accepted = yield* rt.sendInput(slow, { text: "never finishes in time" })
        yield* awaitPendingSleep
        const draining = yield* Effect.fork(rt.drain(5_000))
        for (let i = 0; i < 10_000 && (yield* TestClock.sleeps()).length < 2; i++) yield* Effect.yieldNow()
        assert.isTrue(yield* rt.isDraining)
        assert.strictEqual((yield* rt.summary).status, "draining")
        assert.strictEqual((yield* Effect.flip(rt.sendInput(idle, { text: "hi" })))._tag, "RuntimeUnavailable")
        yield* TestClock.adjust(5_000)
        yield* Fiber.join(draining)
        const after = yield* rt.getWorker(slow)
        assert.strictEqual(after.status, "idle")
        assert.deepStrictEqual(after.last_turn && [after.last_turn.turn_id, after.last_turn.outcome], [
          accepted.turn_id,
          "cancelled"
        ])
        const { items } = yield* fullTranscript(rt, slow)
        assert.deepStrictEqual(items.at(-1)?.data, {
          _tag: "notice",
          code: "runtime_shutdown",
          message: "the runtime shut down before the turn finished"
        })
        assert.strictEqual((yield* rt.getWorker(idle)).transcript_length, 0)
      })))

  it.live("lets a turn that finishes within the grace period complete", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({
          display_name: "Quick",
          engine: echo({ chunk_size: 2, delay_ms: 2 })
        })
        const accepted = yield* rt.sendInput(worker.worker_id, { text: "abcdef" })
        yield* rt.drain(60_000)
        const after = yield* rt.getWorker(worker.worker_id)
        assert.strictEqual(after.status, "idle")
        assert.strictEqual(after.last_turn?.turn_id, accepted.turn_id)
        assert.strictEqual(after.last_turn?.outcome, "completed")
      })))
})

describe("recovery", () => {
  it.effect("a runtime that restarts over the same store records a running turn as interrupted", () =>
    Effect.gen(function*() {
      const store = yield* WorkerStore.makeMemory
      const storage = Layer.merge(Layer.succeed(WorkerStore.WorkerStore, store), AllocationRegistry.layerMemory)
      const life = <A, E>(f: (rt: Runtime.RuntimeService) => Effect.Effect<A, E>) =>
        Effect.flatMap(Runtime.Runtime, f).pipe(Effect.provide(Layers.layerWith({ policy: testPolicy }, storage)))
      const { running, stopped, turnId } = yield* life((rt) =>
        Effect.gen(function*() {
          const running = (yield* rt.createWorker({ display_name: "Running", engine: held })).worker.worker_id
          const stopped = (yield* rt.createWorker({ display_name: "Stopped" })).worker.worker_id
          yield* rt.stop(stopped)
          const { turn_id } = yield* rt.sendInput(running, { text: "in flight" })
          return { running, stopped, turnId: turn_id }
        })
      )
      yield* life((rt) =>
        Effect.gen(function*() {
          const worker = yield* rt.getWorker(running)
          assert.strictEqual(worker.status, "idle")
          assert.deepStrictEqual(worker.last_turn && [worker.last_turn.turn_id, worker.last_turn.outcome], [
            turnId,
            "interrupted"
          ])
          const { items } = yield* fullTranscript(rt, running)
          assert.deepStrictEqual(items.map((e) => e.data._tag === "notice" ? e.data.code : e.data._tag), [
            "user_input",
            "turn_interrupted"
          ])
          assert.strictEqual((yield* rt.getWorker(stopped)).status, "stopped")
          assert.strictEqual((yield* rt.sendInput(running, { text: "again" })).worker.status, "running")
        })
      )
    }))
})
