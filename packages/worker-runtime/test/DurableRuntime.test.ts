import { echo, echoProfiles, testPolicy } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Option, TestClock } from "effect"
import { AllocationRegistry, Cursor, type Domain, Ids, Runtime, type RuntimeOptions } from "@yoi/worker-runtime"
import { SEQ_GAP_AFTER_CRASH } from "@yoi/worker-runtime/sqlite"
import { eventsSince, fullTranscript, runTurn, withSqliteRuntime } from "./fixtures/sqlite.js"
import { durableStores, type StoreKind } from "./fixtures/stores.js"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)
const seqOf = (cursor: string) => Either.getOrThrow(Cursor.decode(cursor)).seq
const textOf = (e: Domain.TranscriptEntry) =>
  e.data._tag === "user_input" || e.data._tag === "assistant_message" ? e.data.text : undefined
const held = echo({ delay_ms: 60_000, chunk_size: 4 })

/** Runs `f` against a runtime on the store of `kind` at `place`, closed (as by a crash: no drain) when `f` ends. */
const withDurable = <A, E, R>(
  kind: StoreKind,
  place: string,
  options: RuntimeOptions & { readonly eventRetention?: number },
  f: (rt: Runtime.RuntimeService) => Effect.Effect<A, E, R>
) =>
  Effect.scoped(
    Effect.flatMap(Runtime.Runtime, f).pipe(Effect.provide(kind.runtime(place, { policy: testPolicy, ...options })))
  )

/** The profile `q` held forever in one life and instant in the next (profiles are runtime configuration). */
const queuePolicy = (spec: Domain.EngineSpec) => ({
  ...testPolicy,
  engines: { profiles: { ...echoProfiles, q: spec } }
})

const awaitQuiet = (rt: Runtime.RuntimeService, workerId: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200_000; i++) {
      const worker = yield* rt.getWorker(workerId)
      if (worker.status === "idle" && worker.queue_length === 0) return worker
      yield* Effect.sleep("5 millis")
    }
    return yield* Effect.dieMessage(`worker ${workerId} never became quiet`)
  })

describe.each(durableStores)("Runtime on a durable store: $name", (kind) => {
  it.scopedLive("a stored input queue survives a crash: the held turn is interrupted, then the queue runs in order", () =>
    Effect.gen(function*() {
      const place = yield* kind.place
      const first = yield* withDurable(
        kind,
        place,
        { runtimeId: "queue", policy: queuePolicy({ provider: "echo", delay_ms: 60_000 }) },
        (rt) =>
          Effect.gen(function*() {
            const { worker } = yield* rt.createWorker({ display_name: "Q", engine: { profile: "q" } })
            yield* rt.sendInput(worker.worker_id, { text: "held" })
            const queued = yield* Effect.forEach(range(5), (i) =>
              rt.sendInput(worker.worker_id, { text: `q ${i}`, busy: "enqueue" }), { concurrency: "unbounded" })
            const ids = queued.map((q) => ("input_id" in q ? q.input_id : ""))
            yield* rt.cancelQueued(worker.worker_id, ids[2]!)
            return { workerId: worker.worker_id, queue: yield* rt.queue(worker.worker_id) }
          })
      )
      assert.strictEqual(first.queue.items.length, 4)
      yield* withDurable(kind, place, { runtimeId: "queue", policy: queuePolicy({ provider: "echo" }) }, (rt) =>
        Effect.gen(function*() {
          const quiet = yield* awaitQuiet(rt, first.workerId)
          assert.strictEqual(quiet.usage.turns, 5)
          const inputs = (yield* fullTranscript(rt, first.workerId)).flatMap((e) =>
            e.data._tag === "user_input" ? [e.data.text] : [])
          // The concurrent enqueues were accepted in some order: the queue ran them in exactly that order.
          const order = first.queue.items.map((q) => q.text)
          assert.deepStrictEqual(inputs, ["held", ...order])
          assert.sameMembers(order, ["q 0", "q 1", "q 3", "q 4"])
          assert.deepStrictEqual((yield* rt.queue(first.workerId)).items, [])
        }))
    }))

  it.scoped("a restart on the same store preserves workers, statuses, transcripts, usage and cursors", () =>
    Effect.gen(function*() {
      const place = yield* kind.place
      const options = { runtimeId: "alpha" }
      const before = yield* withDurable(kind, place, options, (rt) =>
        Effect.gen(function*() {
          const a = (yield* rt.createWorker({ display_name: "A", engine: echo({ chunk_size: 2 }) })).worker
          const b = (yield* rt.createWorker({ display_name: "B", metadata: { team: "x" } })).worker
          const c = (yield* rt.createWorker({ worker_id: Ids.WorkerId.make("client-c"), display_name: "C" })).worker
          yield* runTurn(rt, a.worker_id, "hello there, durable store")
          const middle = yield* rt.headCursor
          yield* runTurn(rt, a.worker_id, "a second turn")
          yield* runTurn(rt, b.worker_id, "b speaks once")
          yield* rt.stop(b.worker_id)
          yield* rt.stop(c.worker_id)
          yield* rt.delete(c.worker_id)
          return {
            a: a.worker_id,
            b: b.worker_id,
            c: c.worker_id,
            middle,
            head: yield* rt.headCursor,
            events: yield* eventsSince(rt, middle),
            workers: (yield* rt.listWorkers()).items,
            transcripts: [yield* fullTranscript(rt, a.worker_id), yield* fullTranscript(rt, b.worker_id)],
            summary: yield* rt.summary,
            usage: yield* rt.usage()
          }
        }))
      assert.isTrue(before.events.some((e) => e.kind === "turn.delta"))
      yield* withDurable(kind, place, options, (rt) =>
        Effect.gen(function*() {
          assert.deepStrictEqual((yield* rt.listWorkers()).items, before.workers)
          assert.deepStrictEqual(before.workers.map((w) => w.status), ["idle", "stopped"])
          assert.deepStrictEqual(
            [yield* fullTranscript(rt, before.a), yield* fullTranscript(rt, before.b)],
            before.transcripts
          )
          assert.strictEqual(before.transcripts[0]!.length, 4)
          const summary = yield* rt.summary
          assert.deepStrictEqual(summary.counts, before.summary.counts)
          assert.deepStrictEqual(summary.usage, before.summary.usage)
          assert.strictEqual(summary.usage.turns, 3)
          assert.strictEqual(summary.store, kind.name)
          assert.isTrue(summary.capabilities.durable)
          assert.deepStrictEqual(yield* rt.usage(), before.usage)
          assert.strictEqual(yield* rt.headCursor, before.head)
          // A cursor from the previous life replays its durable events; the deltas are previews and are not kept.
          assert.deepStrictEqual(
            yield* eventsSince(rt, before.middle),
            before.events.filter((e) => e.kind !== "turn.delta")
          )
          assert.strictEqual((yield* Effect.flip(rt.getWorker(before.c)))._tag, "WorkerNotFound")
          assert.strictEqual((yield* Effect.flip(rt.sendInput(before.b, { text: "no" })))._tag, "WorkerStopped")
          yield* rt.restore(before.b)
          const next = yield* eventsSince(rt, before.head)
          assert.deepStrictEqual(next.map((e) => [e.seq, e.kind]), [[seqOf(before.head) + 1, "worker.status"]])
          const { end } = yield* runTurn(rt, before.b, "after the restart")
          assert.strictEqual(end.kind, "turn.completed")
          const items = yield* fullTranscript(rt, before.b)
          assert.deepStrictEqual(items.map((e) => e.index), [0, 1, 2, 3])
        }))
    }))

  it.scoped("50 concurrent creates and inputs keep single flight, and the held turns recover as interrupted", () =>
    Effect.gen(function*() {
      const place = yield* kind.place
      const options = { runtimeId: "beta" }
      const before = yield* withDurable(kind, place, options, (rt) =>
        Effect.gen(function*() {
          const shared = yield* Effect.forEach(
            range(50),
            () => rt.createWorker({ worker_id: Ids.WorkerId.make("shared"), display_name: "Shared", engine: held }),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(shared.filter((r) => r.created).length, 1)
          const distinct = yield* Effect.forEach(
            range(50),
            (i) => rt.createWorker({ display_name: `W${i}`, engine: held }),
            { concurrency: "unbounded" }
          )
          const inputs = yield* Effect.forEach(
            range(50),
            (i) => Effect.either(rt.sendInput("shared", { text: `input ${i}` })),
            { concurrency: "unbounded" }
          )
          const accepted = inputs.filter(Either.isRight).map((r) => r.right)
          assert.strictEqual(accepted.length, 1)
          for (const rejected of inputs.filter(Either.isLeft)) {
            assert.strictEqual(rejected.left._tag, "WorkerBusy")
            if (rejected.left._tag === "WorkerBusy") assert.strictEqual(rejected.left.turn_id, accepted[0]!.turn_id)
          }
          const perWorker = yield* Effect.forEach(
            [...distinct, ...distinct],
            (d, i) => Effect.either(rt.sendInput(d.worker.worker_id, { text: `to ${i}` })),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(perWorker.filter(Either.isRight).length, 50)
          const transcript = yield* fullTranscript(rt, "shared")
          assert.deepStrictEqual(transcript.map((e) => e.data._tag), ["user_input"])
          assert.strictEqual(transcript[0]!.turn_id, accepted[0]!.turn_id)
          return { head: yield* rt.headCursor, turn: accepted[0]!.turn_id }
        }))
      yield* withDurable(kind, place, options, (rt) =>
        Effect.gen(function*() {
          const workers = (yield* rt.listWorkers({ limit: 500 })).items
          assert.strictEqual(workers.length, 51)
          for (const w of workers) {
            assert.strictEqual(w.status, "idle")
            assert.strictEqual(w.last_turn?.outcome, "interrupted")
            assert.strictEqual(w.transcript_length, 2)
            assert.strictEqual(w.usage.turns, 1)
          }
          const transcript = yield* fullTranscript(rt, "shared")
          assert.deepStrictEqual(transcript.map((e) => e.data._tag), ["user_input", "notice"])
          assert.strictEqual((transcript[1]!.data as { code: string }).code, "turn_interrupted")
          assert.strictEqual(transcript[1]!.turn_id, before.turn)
          const events = yield* eventsSince(rt, before.head)
          assert.strictEqual(events.filter((e) => e.kind === "turn.interrupted").length, 51)
          assert.isAbove(events[0]!.seq, seqOf(before.head) + SEQ_GAP_AFTER_CRASH)
        }))
    }))

  it.scoped("a cursor at a text delta of a crashed life resumes after the restart, and scopes stay allocated", () =>
    Effect.gen(function*() {
      const place = yield* kind.place
      const options = { runtimeId: "gamma" }
      const scope = { allow: [{ path: "/repo/app", access: "write" as const }] }
      const before = yield* withDurable(kind, place, options, (rt) =>
        Effect.gen(function*() {
          const { worker } = yield* rt.createWorker({ display_name: "Coder", engine: held, scope })
          const start = yield* rt.headCursor
          const accepted = yield* rt.sendInput(worker.worker_id, { text: "streaming slowly" })
          const durableHead = yield* rt.headCursor
          yield* TestClock.adjust(60_000)
          yield* Effect.iterate(0, { while: (n) => n < 1000, body: (n) => Effect.as(Effect.yieldNow(), n + 1) })
          const deltaHead = yield* rt.headCursor
          assert.isAbove(seqOf(deltaHead), seqOf(durableHead))
          return { worker: worker.worker_id, start, turn: accepted.turn_id, deltaHead }
        }))
      yield* withDurable(kind, place, options, (rt) =>
        Effect.gen(function*() {
          const afterDelta = yield* eventsSince(rt, before.deltaHead)
          assert.includeMembers(afterDelta.map((e) => e.kind), ["turn.interrupted", "worker.status"])
          assert.isTrue(afterDelta.every((e) => e.seq > seqOf(before.deltaHead)))
          const all = yield* eventsSince(rt, before.start)
          assert.deepStrictEqual(all.slice(0, 3).map((e) => e.kind), ["turn.started", "transcript.appended", "worker.status"])
          assert.isFalse(all.some((e) => e.kind === "turn.delta"))
          const interrupted = all.find((e) => e.kind === "turn.interrupted")
          assert.strictEqual(interrupted?.turn_id, before.turn)

          const registry = yield* AllocationRegistry.AllocationRegistry
          const held = yield* registry.get(before.worker)
          assert.deepStrictEqual(Option.map(held, (a) => a.allow), Option.some(scope.allow))
          const conflict = yield* Effect.flip(rt.createWorker({ display_name: "Other", scope }))
          assert.strictEqual(conflict._tag, "ScopeConflict")
          const diagnostics = yield* rt.diagnostics()
          assert.isTrue(diagnostics.some((d: Domain.Diagnostic) => d.code === "allocations_adopted"))
        }))
    }))

  it.scoped("a cursor older than the retained durable events is expired after a restart, a newer one resumes", () =>
    Effect.gen(function*() {
      const place = yield* kind.place
      const options = { runtimeId: "delta", eventRetention: 10, eventBacklog: 5 }
      const cursors = yield* withDurable(kind, place, options, (rt) =>
        Effect.gen(function*() {
          const early = yield* rt.headCursor
          for (const i of range(30)) yield* rt.createWorker({ display_name: `W${i}` })
          const late = yield* rt.headCursor
          yield* rt.createWorker({ display_name: "last" })
          return { early, late }
        }))
      yield* withDurable(kind, place, options, (rt) =>
        Effect.gen(function*() {
          const expired = yield* Effect.flip(Effect.scoped(rt.subscribe({ cursor: cursors.early })))
          assert.strictEqual(expired._tag, "CursorExpired")
          const resumed = yield* eventsSince(rt, cursors.late)
          assert.deepStrictEqual(resumed.map((e) => [e.seq, e.kind]), [[seqOf(cursors.late) + 1, "worker.created"]])
        }))
    }))
})

describe("SqliteRuntime", () => {
  it.scoped("runs on a private :memory: store", () =>
    withSqliteRuntime({ filename: ":memory:", runtimeId: "mem" }, (rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "M" })
        const { end } = yield* runTurn(rt, worker.worker_id, "in memory")
        assert.strictEqual(end.kind, "turn.completed")
        assert.deepStrictEqual((yield* fullTranscript(rt, worker.worker_id)).map(textOf), ["in memory", "in memory"])
        assert.strictEqual((yield* rt.summary).store, "sqlite")
      })))
})
