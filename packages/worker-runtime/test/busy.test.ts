import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Either, FiberId, Fiber, Stream, TestClock } from "effect"
import { type Domain, type Engine, Ids, type Runtime } from "@yoi/worker-runtime"
import { awaitPendingSleep, eventsSince, fullTranscript, snapshot, textOf, withRuntime } from "./utils.js"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/**
 * An engine the test controls: an input starting with `hold` waits for the gate (interruptibly), one starting with
 * `stubborn` waits for it uninterruptibly (its cancel cannot finish before the gate opens), anything else echoes at
 * once.
 */
const gated = () => {
  const gate = Deferred.unsafeMake<void>(FiberId.none)
  const engine: Engine.Engine = {
    provider: "gate",
    tools: [],
    validate: () => Effect.void,
    turn: (ctx) => {
      const reply: Stream.Stream<Engine.EngineEvent> = Stream.succeed({ _tag: "TextDelta", text: ctx.input })
      if (ctx.input.startsWith("hold")) return Stream.concat(Stream.drain(Stream.fromEffect(Deferred.await(gate))), reply)
      if (ctx.input.startsWith("stubborn")) {
        return Stream.concat(Stream.drain(Stream.fromEffect(Effect.uninterruptible(Deferred.await(gate)))), reply)
      }
      return reply
    }
  }
  return { gate, engine }
}

const gateEngine = { profile: "gate" }

/** Polls (yielding) until the worker is idle with an empty queue. */
const awaitQuiet = (rt: Runtime.RuntimeService, workerId: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200_000; i++) {
      const worker = yield* rt.getWorker(workerId)
      if (worker.status === "idle" && worker.queue_length === 0) return worker
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`worker ${workerId} never became quiet`)
  })

const started = (result: Domain.InputResult): Domain.InputAccepted => {
  assert.isTrue("turn_id" in result, "the input started a turn")
  return result as Domain.InputAccepted
}

const queued = (result: Domain.InputResult): Domain.InputQueued => {
  assert.isTrue("queued" in result, "the input was queued")
  return result as Domain.InputQueued
}

/** Asserts that the worker's turns never overlap: each `turn.started` is followed by its own end before the next. */
const assertSingleFlight = (events: ReadonlyArray<Domain.RuntimeEvent>) => {
  let running: string | undefined
  for (const e of events) {
    if (e.kind === "turn.started") {
      assert.isUndefined(running, `turn ${e.turn_id} started while ${running} was running`)
      running = e.turn_id
    } else if (e.kind === "turn.completed" || e.kind === "turn.cancelled" || e.kind === "turn.failed") {
      assert.strictEqual(e.turn_id, running, "a turn ends only while it is the running one")
      running = undefined
    }
  }
}

describe("busy: enqueue", () => {
  it.effect("100 parallel enqueued inputs run exactly once in accepted order; the 101st is QueueFull and changes nothing", () => {
    const { engine, gate } = gated()
    return withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "Q", engine: gateEngine })
        const w = worker.worker_id
        const cursor = yield* rt.headCursor
        const first = started(yield* rt.sendInput(w, { text: "hold first", busy: "enqueue" }))
        const texts = range(100).map((i) => `input ${i}`)
        const results = yield* Effect.forEach(
          texts,
          (text) => Effect.map(rt.sendInput(w, { text, busy: "enqueue" }), (r) => ({ text, r: queued(r) })),
          { concurrency: "unbounded" }
        )
        const byPosition = [...results].sort((a, b) => a.r.position - b.r.position)
        assert.deepStrictEqual(byPosition.map((x) => x.r.position), range(100).map((i) => i + 1))
        assert.strictEqual(new Set(results.map((x) => x.r.input_id)).size, 100)

        const listed = yield* rt.queue(w)
        assert.strictEqual(listed.limit, 100)
        assert.deepStrictEqual(listed.items.map((q) => q.input_id), byPosition.map((x) => x.r.input_id))
        assert.deepStrictEqual(listed.items.map((q) => q.text), byPosition.map((x) => x.text))
        assert.strictEqual((yield* rt.getWorker(w)).queue_length, 100)

        const before = yield* snapshot(rt)
        const full = yield* Effect.flip(rt.sendInput(w, { text: "one too many", busy: "enqueue" }))
        assert.strictEqual(full._tag, "QueueFull")
        if (full._tag === "QueueFull") assert.strictEqual(full.limit, 100)
        assert.strictEqual(yield* snapshot(rt), before)
        assert.strictEqual((yield* rt.queue(w)).items.length, 100)
        const busy = yield* Effect.flip(rt.sendInput(w, { text: "plain" }))
        assert.strictEqual(busy._tag, "WorkerBusy")

        yield* Deferred.succeed(gate, undefined)
        const quiet = yield* awaitQuiet(rt, w)
        assert.strictEqual(quiet.usage.turns, 101)
        const inputs = (yield* fullTranscript(rt, w)).items.filter((e) => e.data._tag === "user_input").map(textOf)
        assert.deepStrictEqual(inputs, ["hold first", ...byPosition.map((x) => x.text)])

        const events = yield* eventsSince(rt, cursor, w)
        assertSingleFlight(events)
        const queuedEvents = events.filter((e): e is Domain.EventOf<"input.queued"> => e.kind === "input.queued")
        assert.strictEqual(queuedEvents.length, 100)
        const dequeued = events.filter((e): e is Domain.EventOf<"input.dequeued"> => e.kind === "input.dequeued")
        assert.deepStrictEqual(dequeued.map((e) => e.data.input_id), byPosition.map((x) => x.r.input_id))
        assert.isTrue(dequeued.every((e) => e.data.reason === "started"))
        const turnStarts = events.filter((e): e is Domain.EventOf<"turn.started"> => e.kind === "turn.started")
        assert.strictEqual(turnStarts[0]!.turn_id, first.turn_id)
        assert.deepStrictEqual(turnStarts.slice(1).map((e) => e.data.input_id), byPosition.map((x) => x.r.input_id))
        assert.deepStrictEqual(turnStarts.slice(1).map((e) => e.turn_id), dequeued.map((e) => e.data.turn_id))
      }), { engines: [engine], queueLimit: 100, ids: Ids.sequentialIds() })
  })

  it.effect("queued inputs are cancelled one by one and all at once; a stopped worker keeps its queue until restored", () => {
    const { engine, gate } = gated()
    return withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "Q", engine: gateEngine })
        const w = worker.worker_id
        const cursor = yield* rt.headCursor
        started(yield* rt.sendInput(w, { text: "hold 0" }))
        const ids = yield* Effect.forEach(range(5), (i) =>
          Effect.map(rt.sendInput(w, { text: `q ${i}`, busy: "enqueue" }), (r) => queued(r).input_id))

        const one = yield* rt.cancelQueued(w, ids[1]!)
        assert.deepStrictEqual(one.cancelled, [ids[1]!])
        assert.strictEqual(one.worker.queue_length, 4)
        assert.deepStrictEqual((yield* rt.queue(w)).items.map((q) => [q.input_id, q.position]), [
          [ids[0], 1],
          [ids[2], 2],
          [ids[3], 3],
          [ids[4], 4]
        ])
        const again = yield* Effect.flip(rt.cancelQueued(w, ids[1]!))
        assert.strictEqual(again._tag, "QueuedInputNotFound")

        // Stop cancels the running turn and pauses the queue; restore resumes it with the oldest input.
        const stopped = yield* rt.stop(w)
        assert.strictEqual(stopped.status, "stopped")
        assert.strictEqual(stopped.queue_length, 4)
        const refused = yield* Effect.flip(rt.sendInput(w, { text: "q late", busy: "enqueue" }))
        assert.strictEqual(refused._tag, "WorkerStopped")
        const restored = yield* rt.restore(w)
        assert.strictEqual(restored.status, "running")
        assert.strictEqual(restored.queue_length, 3)
        yield* awaitQuiet(rt, w)
        let inputs = (yield* fullTranscript(rt, w)).items.filter((e) => e.data._tag === "user_input").map(textOf)
        assert.deepStrictEqual(inputs, ["hold 0", "q 0", "q 2", "q 3", "q 4"])

        started(yield* rt.sendInput(w, { text: "hold 1" }))
        yield* Effect.forEach(range(3), (i) => rt.sendInput(w, { text: `r ${i}`, busy: "enqueue" }))
        const all = yield* rt.clearQueue(w)
        assert.strictEqual(all.cancelled.length, 3)
        assert.strictEqual(all.worker.queue_length, 0)
        assert.deepStrictEqual((yield* rt.clearQueue(w)).cancelled, [])
        yield* Deferred.succeed(gate, undefined)
        yield* awaitQuiet(rt, w)
        inputs = (yield* fullTranscript(rt, w)).items.filter((e) => e.data._tag === "user_input").map(textOf)
        assert.deepStrictEqual(inputs.slice(-1), ["hold 1"])

        // Delete drops what is still queued, each with `worker_deleted`.
        started(yield* rt.sendInput(w, { text: "plain" }))
        yield* awaitQuiet(rt, w)
        yield* rt.stop(w)
        const reasons = (yield* eventsSince(rt, cursor, w))
          .filter((e): e is Domain.EventOf<"input.dequeued"> => e.kind === "input.dequeued")
          .map((e) => e.data.reason)
        assert.deepStrictEqual(reasons.filter((r) => r === "cancelled").length, 4)
        assert.deepStrictEqual(reasons.filter((r) => r === "started").length, 4)
      }), { engines: [engine] })
  })

  it.effect("delete drops a stopped worker's queue with worker_deleted events", () => {
    const { engine } = gated()
    return withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "Q", engine: gateEngine })
        const w = worker.worker_id
        started(yield* rt.sendInput(w, { text: "hold" }))
        const ids = yield* Effect.forEach(range(2), (i) =>
          Effect.map(rt.sendInput(w, { text: `q ${i}`, busy: "enqueue" }), (r) => queued(r).input_id))
        yield* rt.stop(w)
        const cursor = yield* rt.headCursor
        yield* rt.delete(w)
        const events = yield* eventsSince(rt, cursor, w)
        assert.deepStrictEqual(events.map((e) => e.kind), ["input.dequeued", "input.dequeued", "worker.deleted"])
        assert.deepStrictEqual(
          events.flatMap((e) => (e.kind === "input.dequeued" ? [[e.data.input_id, e.data.reason]] : [])),
          ids.map((id) => [id, "worker_deleted"])
        )
      }), { engines: [engine] })
  })
})

describe("busy: interrupt", () => {
  it.effect("a storm of interrupts and plain inputs never runs two turns; every accepted input's turn exists", () => {
    const { engine } = gated()
    return withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "I", engine: gateEngine })
        const w = worker.worker_id
        const cursor = yield* rt.headCursor
        const policies: ReadonlyArray<"interrupt" | "reject" | undefined> = ["interrupt", "reject", undefined]
        const results = yield* Effect.forEach(range(90), (i) => {
          const busy = policies[i % 3]
          return Effect.either(rt.sendInput(w, busy === undefined ? { text: `hold ${i}` } : { text: `hold ${i}`, busy }))
        }, { concurrency: "unbounded" })
        const accepted = results.flatMap((r, i) => (Either.isRight(r) ? [{ i, turnId: r.right.turn_id }] : []))
        for (const [i, r] of results.entries()) {
          if (i % 3 === 0) assert.isTrue(Either.isRight(r), "an interrupt is always accepted")
          else if (Either.isLeft(r)) assert.strictEqual(r.left._tag, "WorkerBusy")
        }
        const last = yield* rt.getWorker(w)
        assert.strictEqual(last.status, "running")
        yield* rt.cancel(w)

        const events = yield* eventsSince(rt, cursor, w)
        assertSingleFlight(events)
        const startedIds = events.filter((e) => e.kind === "turn.started").map((e) => e.turn_id)
        assert.deepStrictEqual([...startedIds].sort(), accepted.map((a) => a.turnId).sort())
        const ends = events.filter((e): e is Domain.TurnEndEvent => Domain_isEnd(e))
        assert.strictEqual(ends.length, accepted.length)
        assert.isTrue(ends.every((e) => e.data.outcome === "cancelled"))
        assert.deepStrictEqual(ends.slice(0, -1).map((e) => e.data.reason), ends.slice(0, -1).map(() => "interrupted_by_input"))
        assert.strictEqual(ends[ends.length - 1]!.turn_id, last.current_turn_id)
        assert.strictEqual(ends[ends.length - 1]!.data.reason, "cancelled")
        // Each interrupted turn was ended by an interrupt's turn, which started right after it.
        for (const [n, end] of ends.slice(0, -1).entries()) {
          const next = startedIds[n + 1]!
          const nextInput = accepted.find((a) => a.turnId === next)!
          assert.strictEqual(nextInput.i % 3, 0, `turn ${end.turn_id} was interrupted by an interrupt input`)
        }
      }), { engines: [engine] })
  })
})

const Domain_isEnd = (e: Domain.RuntimeEvent): e is Domain.TurnEndEvent =>
  e.kind === "turn.completed" || e.kind === "turn.cancelled" || e.kind === "turn.failed" || e.kind === "turn.interrupted"

describe("cancel by turn_id", () => {
  it.effect("never cancels a later turn, racing each turn's end and the next turn's start", () => {
    const { engine } = gated()
    return withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "C", engine: gateEngine })
        const w = worker.worker_id
        const cursor = yield* rt.headCursor
        const rounds: Array<{ turnId: string; cancel: Domain.CancelResult }> = []
        for (const i of range(60)) {
          yield* awaitQuiet(rt, w)
          const a = started(yield* rt.sendInput(w, { text: `a ${i}` }))
          // A varying number of yields before the cancel lets the turn's end (and the next start) win some rounds.
          const [cancel] = yield* Effect.all([
            Effect.zipRight(Effect.repeatN(Effect.yieldNow(), i % 8), rt.cancel(w, { turn_id: a.turn_id })),
            rt.sendInput(w, { text: `b ${i}`, busy: "enqueue" })
          ], { concurrency: "unbounded" })
          if (cancel.cancelled) assert.strictEqual(cancel.turn_id, a.turn_id)
          else assert.deepStrictEqual([cancel.turn_id, cancel.outcome], [a.turn_id, "completed"])
          rounds.push({ turnId: a.turn_id, cancel })
        }
        yield* awaitQuiet(rt, w)
        // The race went both ways: some cancels came first, some found their turn already ended.
        assert.isTrue(rounds.some((r) => r.cancel.cancelled) && rounds.some((r) => !r.cancel.cancelled))
        const ends = (yield* eventsSince(rt, cursor, w)).filter(Domain_isEnd)
        const outcome = new Map(ends.map((e) => [e.turn_id!, e.data.outcome]))
        const targeted = new Set(rounds.map((r) => r.turnId))
        for (const r of rounds) {
          assert.strictEqual(outcome.get(r.turnId), r.cancel.cancelled ? "cancelled" : "completed")
        }
        const others = ends.filter((e) => !targeted.has(e.turn_id!))
        assert.strictEqual(others.length, 60)
        assert.isTrue(others.every((e) => e.data.outcome === "completed"), "no later turn was cancelled")
      }), { engines: [engine] })
  })

  it.effect("answers an ended turn's outcome, a typed 404 for an unknown turn, and refuses a bad wait_ms", () => {
    const { engine } = gated()
    return withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "C", engine: gateEngine })
        const w = worker.worker_id
        const done = started(yield* rt.sendInput(w, { text: "fast" }))
        yield* awaitQuiet(rt, w)
        const running = started(yield* rt.sendInput(w, { text: "hold" }))
        const ended = yield* rt.cancel(w, { turn_id: done.turn_id })
        assert.deepStrictEqual([ended.cancelled, ended.turn_id, ended.outcome], [false, done.turn_id, "completed"])
        assert.strictEqual(ended.worker.current_turn_id, running.turn_id)
        const unknown = yield* Effect.flip(rt.cancel(w, { turn_id: "t_nope" }))
        assert.strictEqual(unknown._tag, "TurnNotFound")
        for (const wait_ms of [-1, 1.5, 60_001]) {
          const bad = yield* Effect.flip(rt.cancel(w, { wait_ms }))
          assert.strictEqual(bad._tag, "InvalidInput")
          if (bad._tag === "InvalidInput") assert.strictEqual(bad.field, "wait_ms")
        }
        assert.strictEqual((yield* rt.getWorker(w)).current_turn_id, running.turn_id)
        const cancelled = yield* rt.cancel(w, { turn_id: running.turn_id, wait_ms: 5_000 })
        assert.deepStrictEqual([cancelled.cancelled, cancelled.turn_id, cancelled.outcome], [
          true,
          running.turn_id,
          "cancelled"
        ])
        const repeat = yield* rt.cancel(w, { turn_id: running.turn_id })
        assert.deepStrictEqual([repeat.cancelled, repeat.outcome], [false, "cancelled"])
      }), { engines: [engine] })
  })

  it.effect("wait_ms answers TurnWaitTimeout when the turn cannot end in time; the cancel still happens", () => {
    const { engine, gate } = gated()
    return withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "C", engine: gateEngine })
        const w = worker.worker_id
        const stubborn = started(yield* rt.sendInput(w, { text: "stubborn" }))
        const fiber = yield* Effect.fork(Effect.flip(rt.cancel(w, { turn_id: stubborn.turn_id, wait_ms: 1_000 })))
        yield* awaitPendingSleep
        yield* TestClock.adjust(1_000)
        const timeout = yield* Fiber.join(fiber)
        assert.strictEqual(timeout._tag, "TurnWaitTimeout")
        if (timeout._tag === "TurnWaitTimeout") assert.strictEqual(timeout.turn_id, stubborn.turn_id)
        yield* Deferred.succeed(gate, undefined)
        const after = yield* awaitQuiet(rt, w)
        assert.deepStrictEqual([after.last_turn?.turn_id, after.last_turn?.outcome], [stubborn.turn_id, "cancelled"])
      }), { engines: [engine] })
  })
})
