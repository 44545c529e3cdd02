import { Effect, Fiber } from "effect"
import { AllocationRegistry } from "../AllocationRegistry.js"
import {
  type CancelResult,
  type CreateResult,
  type CreateWorker,
  type DeleteResult,
  emptyUsage,
  type SendInput,
  type Worker,
  type WorkerRecord
} from "../Domain.js"
import { RuntimeUnavailable, WorkerAlreadyExists, WorkerBusy, WorkerStateConflict } from "../Errors.js"
import { IdGenerator } from "../Ids.js"
import type { Admission } from "./admission.js"
import { type Committer, revise } from "./commit.js"
import { decodeCreate, decodeSendInput } from "./inputChecks.js"
import type { RuntimeService } from "../Runtime.js"
import * as Json from "./json.js"
import type { Turns } from "./turns.js"
import { newState, type WorkerState, type WorkerTable } from "./workerTable.js"

/**
 * The commands that change a worker: create, send input, cancel, stop, restore, delete; and the shutdown drain. Their
 * types are the Runtime's own.
 */
export type WorkerCommands =
  & Pick<RuntimeService, "createWorker" | "sendInput" | "cancel" | "stop" | "restore" | "drain">
  & { readonly deleteWorker: RuntimeService["delete"] }

export const make = (options: {
  readonly table: WorkerTable
  readonly committer: Committer
  readonly admission: Admission
  readonly turns: Turns
  readonly toWorker: (r: WorkerRecord) => Worker
}): Effect.Effect<WorkerCommands, never, AllocationRegistry> =>
  Effect.gen(function*() {
    const { admission, committer, table, toWorker: view, turns } = options
    const { lookup, registryLock, withWorker, workers } = table
    const { commit, now } = committer
    const { admit } = admission
    const { cancelLocked, startTurnLocked } = turns
    const allocations = yield* AllocationRegistry
    const ids = yield* IdGenerator

    const sendInput = Effect.fn("Runtime.sendInput")(function*(workerId: string, input: SendInput) {
      const { text } = yield* decodeSendInput(input)
      const state = yield* lookup(workerId)
      // Fast path: a busy worker answers at once instead of queueing behind the turn's lock.
      if (state.turn !== undefined && state.record.current_turn_id !== undefined) {
        return yield* WorkerBusy.of(state.record.worker_id, state.record.current_turn_id)
      }
      return yield* withWorker(workerId, (s) => startTurnLocked(s, text))
    })

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

    const cancel = Effect.fn("Runtime.cancel")(function*(workerId: string) {
      return yield* withWorker(workerId, (state) =>
        Effect.map(cancelLocked(state, "idle"), (turnId): CancelResult =>
          turnId === undefined
            ? { cancelled: false, worker: view(state.record) }
            : { cancelled: true, turn_id: turnId, worker: view(state.record) }))
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
          return view(record)
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
            commit([{ worker_id: workerId, kind: "worker.deleted", data: { worker_id: workerId } }], {
              deleted: [state.record.worker_id]
            }, () => {
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

    return { createWorker, sendInput, cancel, stop, restore, deleteWorker, drain }
  })
