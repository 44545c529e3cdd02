import { Effect, Fiber, type Scope } from "effect"
import { AllocationRegistry } from "../AllocationRegistry.js"
import {
  type CancelResult,
  type CreateResult,
  type CreateWorker,
  type DeleteResult,
  emptyUsage,
  type QueueCancelled,
  type SendInput,
  type WorkerQueue,
  type Worker,
  type WorkerRecord
} from "../Domain.js"
import {
  InvalidInput,
  QueuedInputNotFound,
  RuntimeUnavailable,
  TurnNotFound,
  TurnWaitTimeout,
  WorkerAlreadyExists,
  WorkerBusy,
  WorkerStateConflict,
  WorkerStopped
} from "../Errors.js"
import type { EventDraft } from "../EventLog.js"
import { IdGenerator, TurnId } from "../Ids.js"
import type { Admission } from "./admission.js"
import { type Committer, revise } from "./commit.js"
import { decodeCancelRequest, decodeCreate, decodeSendInput, MAX_WAIT_MS } from "./inputChecks.js"
import type { CancelOptions, RuntimeService } from "../Runtime.js"
import * as Json from "./json.js"
import type { Turns } from "./turns.js"
import { newState, type WorkerState, type WorkerTable } from "./workerTable.js"

/**
 * The commands that change a worker: create, send input, cancel, stop, restore, delete; and the shutdown drain. Their
 * types are the Runtime's own.
 */
export type WorkerCommands =
  & Pick<RuntimeService, "createWorker" | "sendInput" | "cancel" | "stop" | "restore" | "drain" | "queue" | "cancelQueued" | "clearQueue">
  & { readonly deleteWorker: RuntimeService["delete"] }

export const make = (options: {
  readonly table: WorkerTable
  readonly committer: Committer
  readonly admission: Admission
  readonly turns: Turns
  readonly toWorker: (r: WorkerRecord) => Worker
  readonly queueLimit: number
  readonly runtimeScope: Scope.Scope
}): Effect.Effect<WorkerCommands, never, AllocationRegistry> =>
  Effect.gen(function*() {
    const { admission, committer, queueLimit, runtimeScope, table, toWorker: view, turns } = options
    const { lookup, registryLock, withWorker, workers } = table
    const { commit, now } = committer
    const { admit } = admission
    const { cancelLocked, enqueueLocked, startNextLocked, startTurnLocked } = turns
    const allocations = yield* AllocationRegistry
    const ids = yield* IdGenerator

    const sendInput = Effect.fn("Runtime.sendInput")(function*(workerId: string, input: SendInput) {
      const { busy = "reject", text } = yield* decodeSendInput(input)
      const state = yield* lookup(workerId)
      switch (busy) {
        case "reject": {
          // Fast path: a busy worker answers at once instead of queueing behind the turn's lock.
          if (state.turn !== undefined && state.record.current_turn_id !== undefined) {
            return yield* WorkerBusy.of(state.record.worker_id, state.record.current_turn_id)
          }
          return yield* withWorker(workerId, (s) => startTurnLocked(s, text))
        }
        case "enqueue":
          return yield* withWorker(workerId, (s) =>
            Effect.gen(function*() {
              if (s.record.status === "stopped") return yield* WorkerStopped.of(workerId, "sending input")
              if (table.draining) return yield* new RuntimeUnavailable({ message: "the runtime is shutting down" })
              if (s.turn === undefined && s.queue.length === 0) return yield* startTurnLocked(s, text)
              const queued = yield* enqueueLocked(s, text)
              // An idle worker with a queue (a queued start that failed) starts its oldest input now.
              yield* startNextLocked(s)
              return queued
            }))
        case "interrupt":
          // One hold of the lock: the running turn ends as cancelled and this input's turn starts, with nothing
          // in between. Uninterruptible, so a caller that goes away cannot leave the cancel without its new turn.
          return yield* withWorker(workerId, (s) =>
            Effect.uninterruptible(Effect.gen(function*() {
              if (s.record.status === "stopped") return yield* WorkerStopped.of(workerId, "sending input")
              if (table.draining) return yield* new RuntimeUnavailable({ message: "the runtime is shutting down" })
              yield* cancelLocked(s, "idle", undefined, "interrupted_by_input")
              return yield* startTurnLocked(s, text)
            })))
      }
    }) as RuntimeService["sendInput"]

    const specKey = (spec: CreateWorker) => Json.canonical({ ...spec, worker_id: undefined })

    const createWorker = Effect.fn("Runtime.createWorker")(function*(raw: CreateWorker) {
      const requested = yield* decodeCreate(raw)
      if (table.draining) return yield* new RuntimeUnavailable({ message: "the runtime is shutting down" })
      const spec = yield* admit(requested)
      return yield* registryLock.withPermits(1)(Effect.gen(function*() {
        const workerId = spec.worker_id ?? ids.workerId()
        const existing = workers.get(workerId)
        if (existing !== undefined && !existing.deleted) {
          if (specKey(existing.record.spec) === specKey(spec)) {
            return { worker: view(existing.record), created: false } satisfies CreateResult
          }
          return yield* WorkerAlreadyExists.of(workerId)
        }
        // Allocation, record and initial turn in one uninterruptible step under the new worker's lock: an interrupted
        // caller cannot leak the allocation, and no other command can reach the worker before its initial turn.
        return yield* Effect.uninterruptible(Effect.gen(function*() {
          if (spec.scope !== undefined) yield* allocations.allocate(workerId, spec.scope)
          const at = now()
          const record: WorkerRecord = {
            worker_id: workerId,
            spec: { ...spec, worker_id: workerId },
            status: "idle",
            created_at: at,
            updated_at: at,
            current_turn_id: undefined,
            last_turn: undefined,
            usage: emptyUsage,
            transcript_length: 0,
            revision: 1
          }
          const state: WorkerState = newState(record)
          return yield* state.lock.withPermits(1)(Effect.gen(function*() {
            yield* commit(
              [{ worker_id: workerId, kind: "worker.created", data: { worker: view(record) } }],
              { workers: [record] },
              () => workers.set(workerId, state)
            ).pipe(
              Effect.tapError(() =>
                spec.scope === undefined ? Effect.void : Effect.ignore(allocations.release(workerId))
              )
            )
            if (spec.initial_input === undefined) return { worker: view(record), created: true } satisfies CreateResult
            const accepted = yield* startTurnLocked(state, spec.initial_input).pipe(
              Effect.catchTags({ WorkerBusy: (e) => Effect.die(e), WorkerStopped: (e) => Effect.die(e) })
            )
            return { worker: accepted.worker, created: true } satisfies CreateResult
          }))
        }))
      }))
    })

    /**
     * Cancels the running turn (or only `turn_id`, never a later one); the next queued input then starts. A named
     * turn that already ended answers `cancelled: false` with its outcome.
     */
    const cancelNow = (workerId: string, turnId: string | undefined) =>
      withWorker(workerId, (state): Effect.Effect<CancelResult, TurnNotFound | RuntimeUnavailable> =>
        Effect.gen(function*() {
          if (turnId !== undefined && state.turn?.turnId !== turnId) {
            const last = state.record.last_turn
            const outcome = state.outcomes.get(turnId) ?? (last?.turn_id === turnId ? last.outcome : undefined)
            if (outcome === undefined) return yield* TurnNotFound.of(workerId, turnId)
            return { cancelled: false, turn_id: TurnId.make(turnId), outcome, worker: view(state.record) }
          }
          const cancelled = yield* Effect.uninterruptible(
            Effect.zipLeft(cancelLocked(state, "idle"), startNextLocked(state))
          )
          return cancelled === undefined
            ? { cancelled: false, worker: view(state.record) }
            : { cancelled: true, turn_id: cancelled, outcome: "cancelled", worker: view(state.record) }
        }))

    const cancel = Effect.fn("Runtime.cancel")(function*(workerId: string, options?: CancelOptions | null) {
      const { turn_id } = yield* decodeCancelRequest(options?.turn_id === undefined ? {} : { turn_id: options.turn_id })
      const waitMs = options?.wait_ms
      if (waitMs !== undefined && !(Number.isInteger(waitMs) && waitMs >= 0 && waitMs <= MAX_WAIT_MS)) {
        return yield* new InvalidInput({ field: "wait_ms", message: `wait_ms must be an integer from 0 to ${MAX_WAIT_MS}` })
      }
      const state = yield* lookup(workerId)
      if (waitMs === undefined) return yield* cancelNow(workerId, turn_id)
      // The cancel runs on in the runtime's scope; the caller waits at most wait_ms for the turn's end.
      const target = turn_id ?? state.turn?.turnId ?? "(none)"
      const fiber = yield* Effect.forkIn(cancelNow(workerId, turn_id), runtimeScope)
      return yield* Fiber.join(fiber).pipe(
        Effect.timeoutFail({
          duration: waitMs,
          onTimeout: () =>
            new TurnWaitTimeout({
              worker_id: workerId,
              turn_id: target,
              wait_ms: waitMs,
              message: `turn ${target} of worker ${workerId} had not ended after ${waitMs} ms; the cancel goes on and ` +
                "the turn's end will be on the event stream"
            })
        })
      )
    })

    const queue = Effect.fn("Runtime.queue")(function*(workerId: string) {
      const state = yield* lookup(workerId)
      return {
        worker_id: state.record.worker_id,
        limit: queueLimit,
        items: state.queue.map((q, i) => ({
          input_id: q.input_id,
          position: i + 1,
          queued_at: q.queued_at,
          text: q.text
        }))
      } satisfies WorkerQueue
    })

    const dequeuedDrafts = (
      workerId: string,
      inputIds: ReadonlyArray<string>,
      reason: "cancelled" | "worker_deleted"
    ): Array<EventDraft> =>
      inputIds.map((inputId) => ({ worker_id: workerId, kind: "input.dequeued", data: { input_id: inputId, reason } }))

    const removeQueued = (workerId: string, inputId: string | undefined) =>
      withWorker(workerId, (state) =>
        Effect.gen(function*() {
          const gone = inputId === undefined
            ? state.queue.map((q) => q.input_id)
            : state.queue.some((q) => q.input_id === inputId)
              ? [inputId]
              : yield* QueuedInputNotFound.of(workerId, inputId)
          if (gone.length > 0) {
            const drop = new Set(gone)
            yield* commit(dequeuedDrafts(workerId, gone, "cancelled"), { unqueued: gone }, () => {
              state.queue = state.queue.filter((q) => !drop.has(q.input_id))
            })
          }
          const worker = view(state.record)
          return { worker_id: state.record.worker_id, cancelled: gone, worker } satisfies QueueCancelled
        }))

    const cancelQueued = Effect.fn("Runtime.cancelQueued")(function*(workerId: string, inputId: string) {
      return yield* removeQueued(workerId, inputId)
    })

    const clearQueue = Effect.fn("Runtime.clearQueue")(function*(workerId: string) {
      return yield* Effect.catchTag(removeQueued(workerId, undefined), "QueuedInputNotFound", Effect.die)
    })

    const stop = Effect.fn("Runtime.stop")(function*(workerId: string) {
      return yield* withWorker(workerId, (state) =>
        Effect.gen(function*() {
          if (state.record.status === "stopped") return view(state.record)
          if (state.turn !== undefined) {
            yield* cancelLocked(state, "stopped")
            return view(state.record)
          }
          const at = now()
          const record = revise(state.record, { status: "stopped" }, at)
          yield* commit([{
            worker_id: workerId,
            kind: "worker.status",
            data: { status: "stopped", previous: state.record.status }
          }], { workers: [record] }, () => {
            state.record = record
          })
          return view(record)
        }))
    })

    const restore = Effect.fn("Runtime.restore")(function*(workerId: string) {
      return yield* withWorker(workerId, (state) =>
        Effect.gen(function*() {
          if (state.record.status !== "stopped") return view(state.record)
          const record = revise(state.record, { status: "idle" }, now())
          yield* commit([{ worker_id: workerId, kind: "worker.status", data: { status: "idle", previous: "stopped" } }], {
            workers: [record]
          }, () => {
            state.record = record
          })
          // A stopped worker keeps its queue paused; restoring it resumes the queue.
          yield* startNextLocked(state)
          return view(state.record)
        }))
    })

    const deleteWorker = Effect.fn("Runtime.delete")(function*(workerId: string) {
      return yield* registryLock.withPermits(1)(withWorker(workerId, (state) =>
        Effect.gen(function*() {
          if (state.record.status !== "stopped") {
            return yield* new WorkerStateConflict({
              worker_id: workerId,
              status: state.record.status,
              message: `worker ${workerId} is ${state.record.status}; stop it before deleting it`
            })
          }
          // Uninterruptible, so a caller interrupted once the delete is committed cannot leak the allocation.
          yield* Effect.uninterruptible(Effect.zipRight(
            commit([
              ...dequeuedDrafts(workerId, state.queue.map((q) => q.input_id), "worker_deleted"),
              { worker_id: workerId, kind: "worker.deleted", data: { worker_id: workerId } }
            ], {
              deleted: [state.record.worker_id]
            }, () => {
              state.queue = []
              state.deleted = true
              workers.delete(workerId)
            }),
            state.record.spec.scope === undefined ? Effect.void : allocations.release(workerId).pipe(
              Effect.catchAll((e) => Effect.logWarning("allocation release failed", e))
            )
          ))
          return { worker_id: state.record.worker_id, deleted: true } satisfies DeleteResult
        })))
    })

    const drain = (graceMs: number) =>
      Effect.gen(function*() {
        table.draining = true
        const fibers = Array.from(workers.values()).flatMap((s) => (s.turn?.fiber === undefined ? [] : [s.turn.fiber]))
        // Interruptible, so the grace period also ends the wait when drain runs inside a finalizer.
        yield* Effect.interruptible(Fiber.awaitAll(fibers)).pipe(Effect.timeout(graceMs), Effect.ignore)
        // Every worker, under its lock: a turn whose start was being committed when drain began is running by then.
        yield* Effect.forEach(Array.from(workers.values()), (state) =>
          state.lock.withPermits(1)(cancelLocked(state, "idle", {
            code: "runtime_shutdown",
            message: "the runtime shut down before the turn finished"
          })).pipe(Effect.catchAll((e) => Effect.logWarning("could not record a cancelled turn at shutdown", e))),
        { discard: true })
      })

    return { createWorker, sendInput, cancel, stop, restore, deleteWorker, drain, queue, cancelQueued, clearQueue }
  })
