import { Effect, Option } from "effect"
import { AllocationRegistry } from "../AllocationRegistry.js"
import type { WorkerRecord } from "../Domain.js"
import { IdGenerator } from "../Ids.js"
import * as Profiles from "../Profiles.js"
import { EventLog } from "../EventLog.js"
import { type DiagnosticDraft, type StoreError, WorkerStore } from "../WorkerStore.js"
import type { Admission } from "./admission.js"
import { newTurn, type Turns } from "./turns.js"
import { newState, type WorkerState, type WorkerTable } from "./workerTable.js"

/**
 * Start-up: loads the stored workers and their input queues into the table (upgrading engines stored before
 * profiles), re-allocates their scopes, releases allocations whose worker no longer exists, records diagnostics for
 * missing or unready profiles, ends every turn the previous life left running as interrupted, and then resumes each
 * idle worker's queue.
 */
export const recover = (options: {
  readonly table: WorkerTable
  readonly admission: Admission
  readonly turns: Turns
}): Effect.Effect<void, StoreError, WorkerStore | AllocationRegistry | EventLog> =>
  Effect.gen(function*() {
    const { admission, table, turns } = options
    const { workers } = table
    const { defaultProfile, profileProblem, profiles } = admission
    const { finishLocked, startNextLocked } = turns
    const store = yield* WorkerStore
    const allocations = yield* AllocationRegistry
    const ids = yield* IdGenerator
    const log = yield* EventLog

    /** Records a diagnostic and publishes it at once as a durable `runtime.diagnostic` event. */
    const diagnose = (draft: DiagnosticDraft) =>
      Effect.flatMap(store.addDiagnostic(draft), (d) =>
        log.append([{
          worker_id: d.worker_id,
          kind: "runtime.diagnostic",
          data: {
            id: d.id,
            severity: d.severity,
            code: d.code,
            message: d.message,
            ...(d.worker_id === undefined ? {} : { worker_id: d.worker_id })
          }
        }], (events) => store.commit({ events })))

    const records = yield* store.loadWorkers
    const storedIds = new Set<string>(records.map((r) => r.worker_id))
    // Orphans: left by a crash between allocating and committing a create, or between committing and releasing a
    // delete. Swept before the stored workers' scopes are restored, so an orphan never blocks a real worker. Only
    // this instance's allocations are swept; a failure is recorded, never fatal.
    const swept = yield* allocations.sweep((workerId) => storedIds.has(workerId)).pipe(
      Effect.catchAll((e) =>
        Effect.as(
          diagnose({
            severity: "warning",
            code: "orphan_sweep_failed",
            message: `orphaned allocations could not be swept: ${e.message}`
          }),
          []
        )
      )
    )
    if (swept.length > 0) {
      yield* diagnose({
        severity: "info",
        code: "orphaned_allocations_released",
        message: `released ${swept.length} allocation(s) whose worker no longer exists: ${swept.slice(0, 20).join(", ")}` +
          (swept.length > 20 ? ", ..." : "")
      })
    }
    const interrupted: Array<WorkerState> = []
    for (const stored of records) {
      const engine = Profiles.upgradeStoredEngine(stored.spec.engine)
      const record: WorkerRecord = engine === stored.spec.engine ? stored : {
        ...stored,
        spec: { ...stored.spec, ...(engine === undefined ? {} : { engine }) }
      }
      const profileName = engine?.profile ?? defaultProfile
      if (!profiles.has(profileName)) {
        yield* diagnose({
          severity: "warning",
          code: "profile_missing",
          message: `worker ${record.worker_id} uses engine profile ${profileName}, which this runtime no longer ` +
            "configures; its turns fail until the profile is configured again",
          worker_id: record.worker_id
        })
      }
      const state: WorkerState = newState(record)
      workers.set(record.worker_id, state)
      if (record.status === "running") interrupted.push(state)
      if (record.spec.scope !== undefined) {
        const held = yield* allocations.get(record.worker_id).pipe(Effect.orElseSucceed(() => Option.none()))
        if (Option.isNone(held)) {
          yield* allocations.allocate(record.worker_id, record.spec.scope).pipe(
            Effect.catchAll((e) =>
              diagnose({
                severity: "warning",
                code: "allocation_not_restored",
                message: `the scope of worker ${record.worker_id} could not be re-allocated: ${e.message}`,
                worker_id: record.worker_id
              }))
          )
        }
      }
    }
    const queued = yield* store.loadQueued
    for (const q of queued) {
      const state = workers.get(q.worker_id)
      if (state !== undefined) state.queue.push(q)
    }
    for (const [name, spec] of profiles) {
      const problem = yield* profileProblem(spec)
      if (Option.isSome(problem)) {
        yield* diagnose({
          severity: "warning",
          code: "profile_not_ready",
          message: `engine profile ${name} is not ready: ${problem.value}`
        })
      }
    }
    for (const state of interrupted) {
      const turnId = state.record.current_turn_id ?? ids.turnId()
      const turn = newTurn(turnId)
      state.turn = turn
      yield* finishLocked(state, turn, "interrupted", {
        reason: "interrupted",
        notice: {
          code: "turn_interrupted",
          message: "the runtime stopped while this turn was running; the turn was not completed"
        }
      }).pipe(Effect.catchAll((e) => Effect.logError("could not record an interrupted turn", e)))
    }
    for (const state of workers.values()) {
      if (state.queue.length > 0) yield* state.lock.withPermits(1)(startNextLocked(state))
    }
  })
