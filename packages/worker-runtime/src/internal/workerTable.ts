import { Deferred, Effect, type Fiber, FiberId } from "effect"
import type { QueuedInput, TurnOutcome, WorkerRecord } from "../Domain.js"
import { InvalidInput, WorkerNotFound } from "../Errors.js"
import type { TurnId } from "../Ids.js"
import { isWorkerId } from "./inputChecks.js"

/** A turn in flight: its fiber and what it streamed since the last committed entry. */
export interface ActiveTurn {
  readonly turnId: TurnId
  fiber: Fiber.RuntimeFiber<void> | undefined
  /** Assistant text streamed since the last committed entry. */
  text: string
  usage: { input_tokens: number; output_tokens: number; cached_tokens: number }
  /** Completed with the outcome once the turn's end is committed. */
  readonly ended: Deferred.Deferred<TurnOutcome>
}

/** How many ended turns per worker a cancel by `turn_id` can still name (besides the record's `last_turn`). */
export const OUTCOMES_KEPT = 1024

/** A worker in memory: its last committed record, its lock, its active turn and its input queue. */

export interface WorkerState {
  record: WorkerRecord
  readonly lock: Effect.Semaphore
  turn: ActiveTurn | undefined
  deleted: boolean
  /** Committed queued inputs in order; changed only with the lock held, after the store accepted the change. */
  queue: Array<QueuedInput>
  /** Outcomes of this life's ended turns, newest last, at most `OUTCOMES_KEPT`. */
  readonly outcomes: Map<string, TurnOutcome>
}

export const newState = (record: WorkerRecord): WorkerState => ({
  record,
  lock: Effect.unsafeMakeSemaphore(1),
  turn: undefined,
  deleted: false,
  queue: [],
  outcomes: new Map()
})

export const newEnded = (): Deferred.Deferred<TurnOutcome> => Deferred.unsafeMake<TurnOutcome>(FiberId.none)

/** Remembers how a turn ended, forgetting the oldest beyond `OUTCOMES_KEPT`. */
export const rememberOutcome = (state: WorkerState, turnId: string, outcome: TurnOutcome) => {
  state.outcomes.set(turnId, outcome)
  if (state.outcomes.size > OUTCOMES_KEPT) {
    const oldest = state.outcomes.keys().next()
    if (oldest.done !== true) state.outcomes.delete(oldest.value)
  }
}

/**
 * The runtime's workers in memory, and the locking rules every command follows:
 *
 * - Each worker has its own lock (one permit). A change to a worker's record or active turn happens holding it;
 *   functions named `...Locked` expect their caller to hold it, and `withWorker` takes it.
 * - The registry lock serialises the commands that change the set of workers (create, delete). It is taken before
 *   a worker's lock, never while holding one, so the two cannot deadlock.
 * - A turn's fiber takes its worker's lock only for each commit (a tool call, a tool result, the end of the turn),
 *   never while the engine streams; text deltas and usage are published without it.
 * - Reads take no lock: they see the last installed record, and a record is installed only after the store and the
 *   event log accepted its batch.
 * - A deleted worker is flagged before it leaves the map, so a command that looked it up before the delete and then
 *   waited for its lock fails with `WorkerNotFound` instead of acting on it.
 */
export interface WorkerTable {
  readonly workers: Map<string, WorkerState>
  readonly registryLock: Effect.Semaphore
  /** Set by `drain`: no new turns, no new workers. */
  draining: boolean
  readonly lookup: (workerId: string) => Effect.Effect<WorkerState, WorkerNotFound | InvalidInput>
  /** Runs `f` holding the worker's lock, re-checking that the worker still exists. */
  readonly withWorker: <A, E>(
    workerId: string,
    f: (state: WorkerState) => Effect.Effect<A, E>
  ) => Effect.Effect<A, E | WorkerNotFound | InvalidInput>
}

export const make: Effect.Effect<WorkerTable> = Effect.gen(function*() {
  const workers = new Map<string, WorkerState>()
  const registryLock = yield* Effect.makeSemaphore(1)

  const lookup = (workerId: string): Effect.Effect<WorkerState, WorkerNotFound | InvalidInput> => {
    if (!isWorkerId(workerId)) {
      return Effect.fail(new InvalidInput({ field: "worker_id", message: `worker_id ${JSON.stringify(String(workerId).slice(0, 140))} is malformed` }))
    }
    const state = workers.get(workerId)
    return state === undefined || state.deleted ? Effect.fail(WorkerNotFound.of(workerId)) : Effect.succeed(state)
  }

  /** Runs `f` holding the worker's lock, re-checking that the worker still exists. */
  const withWorker = <A, E>(
    workerId: string,
    f: (state: WorkerState) => Effect.Effect<A, E>
  ): Effect.Effect<A, E | WorkerNotFound | InvalidInput> =>
    Effect.flatMap(lookup(workerId), (state) =>
      state.lock.withPermits(1)(
        Effect.suspend((): Effect.Effect<A, E | WorkerNotFound> =>
          state.deleted ? Effect.fail(WorkerNotFound.of(workerId)) : f(state)
        )
      ))

  return { workers, registryLock, draining: false, lookup, withWorker }
})
