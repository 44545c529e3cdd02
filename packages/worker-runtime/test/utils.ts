import { testPolicy } from "@yoi/worker-runtime/testing"
import { Chunk, Effect, Option, Stream, TestClock } from "effect"
import { Domain, layerMemory, Runtime, type RuntimeOptions } from "@yoi/worker-runtime"

export type RuntimeService = Runtime.RuntimeService

/** Runs `f` against a fresh in-memory runtime (whose other services `f` may also use), torn down when `f` ends. */
export const withRuntime = <A, E, R>(
  f: (rt: RuntimeService) => Effect.Effect<A, E, R>,
  options: RuntimeOptions = {}
) => Effect.flatMap(Runtime.Runtime, f).pipe(Effect.provide(layerMemory({ policy: testPolicy, ...options })))

export const terminalKinds: ReadonlySet<string> = new Set([
  "turn.completed",
  "turn.failed",
  "turn.cancelled",
  "turn.interrupted"
])

/**
 * Waits for the terminal event of `turnId`, replaying from `cursor` so an already finished turn is found too, and
 * resuming from the lagged cursor if this subscriber falls behind.
 */
export const awaitTurnEnd = (
  rt: RuntimeService,
  workerId: string,
  turnId: string,
  cursor: string
): Effect.Effect<Domain.TurnEndEvent, unknown> =>
  Effect.scoped(Effect.gen(function*() {
    const stream = yield* rt.subscribe({ cursor, worker_id: workerId, kinds: [...terminalKinds, "stream.lagged"] })
    const head = yield* stream.pipe(
      Stream.filter((e) => e.kind === "stream.lagged" || e.turn_id === turnId),
      Stream.runHead
    )
    return Option.getOrThrow(head)
  })).pipe(
    Effect.flatMap((e) =>
      e.kind === "stream.lagged"
        ? awaitTurnEnd(rt, workerId, turnId, e.cursor)
        : Domain.isTurnEnd(e)
          ? Effect.succeed(e)
          : Effect.dieMessage(`the stream gave ${e.kind} instead of the end of turn ${turnId}`)
    )
  )

/** Sends input and waits for the turn to end; returns the acceptance and the terminal event. */
export const runTurn = (rt: RuntimeService, workerId: string, text: string) =>
  Effect.gen(function*() {
    const cursor = yield* rt.headCursor
    const accepted = yield* rt.sendInput(workerId, { text })
    const end = yield* awaitTurnEnd(rt, workerId, accepted.turn_id, cursor)
    return { accepted, end }
  })

/** Every event after `cursor` up to the current head, as one array (the stream is closed once the head is reached). */
export const eventsSince = (rt: RuntimeService, cursor: string, workerId?: string) =>
  Effect.scoped(Effect.gen(function*() {
    const head = yield* rt.headCursor
    if (head === cursor) return [] as Array<Domain.RuntimeEvent>
    const stream = yield* rt.subscribe({ cursor })
    const events = yield* stream.pipe(
      Stream.takeUntil((e) => e.cursor === head || e.kind === "stream.lagged"),
      Stream.runCollect
    )
    return Chunk.toArray(events).filter((e) => workerId === undefined || e.worker_id === workerId)
  }))

/** Every transcript entry of a worker, following page tokens. */
export const fullTranscript = (rt: RuntimeService, workerId: string, limit = 500) =>
  Effect.gen(function*() {
    const items: Array<Domain.TranscriptEntry> = []
    let token: string | undefined
    let cursor: string
    do {
      const page = yield* rt.transcript(workerId, token === undefined ? { limit } : { limit, page_token: token })
      items.push(...page.items)
      cursor = page.cursor
      token = page.next_page_token
    } while (token !== undefined)
    return { items, cursor }
  })

/** Polls (yielding to other fibers) until the TestClock has a pending sleep, i.e. a held turn reached its delay. */
export const awaitPendingSleep = Effect.gen(function*() {
  for (let i = 0; i < 10_000; i++) {
    if (Chunk.isNonEmpty(yield* TestClock.sleeps())) return
    yield* Effect.yieldNow()
  }
  return yield* Effect.dieMessage("no fiber went to sleep on the TestClock")
})

/** Polls (yielding to other fibers) until the worker's status is `status`. */
export const awaitStatus = (rt: RuntimeService, workerId: string, status: Domain.WorkerStatus) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100_000; i++) {
      const worker = yield* rt.getWorker(workerId)
      if (worker.status === status) return worker
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`worker ${workerId} never became ${status}`)
  })

/** A fingerprint of everything observable about a runtime, to prove that a rejected command changed nothing. */
export const snapshot = (rt: RuntimeService) =>
  Effect.gen(function*() {
    const summary = yield* rt.summary
    const list = yield* rt.listWorkers({ limit: 500 })
    const transcripts = yield* Effect.forEach(list.items, (w) => fullTranscript(rt, w.worker_id))
    return JSON.stringify({
      head: yield* rt.headCursor,
      counts: summary.counts,
      usage: summary.usage,
      workers: list.items,
      transcripts: transcripts.map((t) => t.items)
    })
  })

export const textOf = (entry: Domain.TranscriptEntry): string | undefined =>
  entry.data._tag === "user_input" || entry.data._tag === "assistant_message" ? entry.data.text : undefined
