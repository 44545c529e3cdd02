import { Context, Effect, Layer, type Scope, type Stream } from "effect"
import type { AllocationRegistry } from "./AllocationRegistry.js"
import type {
  CancelResult,
  CreateResult,
  CreateWorker,
  DeleteResult,
  Diagnostic,
  InputAccepted,
  InputResult,
  QueueCancelled,
  RuntimeEvent,
  RuntimeSummary,
  SendInput,
  TranscriptPage,
  UsageOverview,
  Worker,
  WorkerPage,
  WorkerQueue
} from "./Domain.js"
import type { Engines } from "./Engine.js"
import {
  type CursorExpired,
  type CursorInvalid,
  InvalidInput,
  type QueuedInputNotFound,
  type QueueFull,
  type RuntimeUnavailable,
  type ScopeConflict,
  type ScopeNotPermitted,
  type TurnNotFound,
  type TurnWaitTimeout,
  type UnsupportedOperation,
  type WorkerAlreadyExists,
  type WorkerBusy,
  type WorkerNotFound,
  type WorkerStateConflict,
  type WorkerStopped
} from "./Errors.js"
import { EventLog } from "./EventLog.js"
import { RuntimeId } from "./Ids.js"
import * as Admission from "./internal/admission.js"
import * as Commit from "./internal/commit.js"
import { isKind } from "./internal/inputChecks.js"
import * as ReadModels from "./internal/readModels.js"
import * as Recovery from "./internal/recovery.js"
import * as Turns from "./internal/turns.js"
import * as WorkerCommands from "./internal/workerCommands.js"
import * as WorkerTable from "./internal/workerTable.js"
import type * as Profiles from "./Profiles.js"
import type { StoreError, WorkerStore } from "./WorkerStore.js"

export {
  decodeCreate,
  decodeInput,
  MAX_INPUT_DEPTH,
  TRANSCRIPT_PAGE_MAX,
  WORKER_PAGE_MAX
} from "./internal/inputChecks.js"

import { VERSION } from "./Domain.js"

export { VERSION }

export interface RuntimeConfigShape {
  readonly runtimeId: RuntimeId
  readonly displayName: string
  /** Recent events (deltas included) kept in memory for resume. */
  readonly eventBacklog: number
  /** Undelivered events one subscriber may hold before it gets `stream.lagged`. */
  readonly subscriberBuffer: number
  /** How often a filtered event stream gets a `stream.bookmark` (when its position moved). */
  readonly bookmarkIntervalMs: number
  /** The most transcript entries an engine may read as history for one turn. */
  readonly historyLimit: number
  /** `embedded` in another process, or `process` when served on its own (`yoi-runtime`). */
  readonly kind: "embedded" | "process"
  /** Named engine profiles and the default; `echo` is always added. */
  readonly engines: Profiles.EnginesConfig | undefined
  /** Providers (engines added in code) that get a same-named profile unless one is configured. */
  readonly implicitProfiles: ReadonlyArray<string>
  /** Tools a worker may be granted; none unless configured. */
  readonly tools: ReadonlyArray<string>
  /** Where worker scopes may be granted; none (no scopes, no filesystem tools) unless configured. */
  readonly scopeRoots: ReadonlyArray<Profiles.ScopeRoot>
  /** The most inputs one worker's queue holds (`busy: "enqueue"`); beyond it `QueueFull`. */
  readonly queueLimit: number
}

export const DEFAULT_QUEUE_LIMIT = 16
export const MAX_QUEUE_LIMIT = 10_000

export class RuntimeConfig extends Context.Tag("@yoi/worker-runtime/RuntimeConfig")<
  RuntimeConfig,
  RuntimeConfigShape
>() {}

export const defaultConfig = (runtimeId = "local"): RuntimeConfigShape => ({
  runtimeId: RuntimeId.make(runtimeId),
  displayName: runtimeId,
  eventBacklog: 10_000,
  subscriberBuffer: 1_024,
  bookmarkIntervalMs: 30_000,
  historyLimit: 1_000,
  kind: "embedded",
  engines: undefined,
  implicitProfiles: [],
  tools: [],
  scopeRoots: [],
  queueLimit: DEFAULT_QUEUE_LIMIT
})

export interface ListWorkersQuery {
  readonly status?: string | undefined
  /** Only workers whose `yoi.workspace` metadata is this. */
  readonly workspace?: string | undefined
  readonly limit?: number | undefined
  readonly page_token?: string | undefined
}

export interface TranscriptQuery {
  readonly limit?: number | undefined
  readonly page_token?: string | undefined
}

export interface CancelOptions {
  /** Cancel this turn only: if it already ended, answer its outcome instead of cancelling a later turn. */
  readonly turn_id?: string | undefined
  /** Wait at most this long (0 to 60000 ms) for the turn to end, else `TurnWaitTimeout`. */
  readonly wait_ms?: number | undefined
}

export interface SubscribeQuery {
  readonly cursor?: string | undefined
  readonly worker_id?: string | undefined
  readonly kinds?: ReadonlyArray<string> | undefined
  /** One `stream.live` event after the replay; see `EventLog.SubscribeOptions`. */
  readonly live?: boolean | undefined
  /** `stream.bookmark` events at `bookmarkIntervalMs` while the position moves; see `EventLog.SubscribeOptions`. */
  readonly bookmarks?: boolean | undefined
}

/**
 * The authority for Worker semantics. Everything else (the REST server, the Backend, tests) calls it and never
 * re-implements a rule: single-flight turns, the idle/running/stopped lifecycle, the transcript and usage.
 */
export interface RuntimeService {
  readonly runtimeId: RuntimeId
  readonly summary: Effect.Effect<RuntimeSummary>
  readonly listWorkers: (query?: ListWorkersQuery) => Effect.Effect<WorkerPage, InvalidInput>
  readonly getWorker: (workerId: string) => Effect.Effect<Worker, WorkerNotFound | InvalidInput>
  readonly createWorker: (
    spec: CreateWorker
  ) => Effect.Effect<
    CreateResult,
    InvalidInput | WorkerAlreadyExists | ScopeConflict | ScopeNotPermitted | UnsupportedOperation | RuntimeUnavailable
  >
  /**
   * Starts a turn. While one runs, `busy` decides: `reject` (default) fails with `WorkerBusy`, `interrupt` cancels it
   * (reason `interrupted_by_input`) and starts this one in the same step, `enqueue` queues the input (`InputQueued`)
   * or fails with `QueueFull`.
   */
  readonly sendInput: {
    (
      workerId: string,
      input: SendInput & { readonly busy?: "reject" | "interrupt" | undefined }
    ): Effect.Effect<InputAccepted, WorkerNotFound | WorkerBusy | WorkerStopped | InvalidInput | RuntimeUnavailable>
    (
      workerId: string,
      input: SendInput
    ): Effect.Effect<
      InputResult,
      WorkerNotFound | WorkerBusy | WorkerStopped | QueueFull | InvalidInput | RuntimeUnavailable
    >
  }
  /** Cancels the running turn, or only `turn_id` (a turn already ended answers its outcome); see `CancelOptions`. */
  readonly cancel: (
    workerId: string,
    options?: CancelOptions | null
  ) => Effect.Effect<
    CancelResult,
    WorkerNotFound | TurnNotFound | TurnWaitTimeout | InvalidInput | RuntimeUnavailable
  >
  /** The worker's input queue, in the order the inputs will start. */
  readonly queue: (workerId: string) => Effect.Effect<WorkerQueue, WorkerNotFound | InvalidInput>
  /** Takes one queued input out of the worker's queue (`input.dequeued`, reason `cancelled`). */
  readonly cancelQueued: (
    workerId: string,
    inputId: string
  ) => Effect.Effect<QueueCancelled, WorkerNotFound | QueuedInputNotFound | InvalidInput | RuntimeUnavailable>
  /** Takes every queued input out of the worker's queue. */
  readonly clearQueue: (
    workerId: string
  ) => Effect.Effect<QueueCancelled, WorkerNotFound | InvalidInput | RuntimeUnavailable>
  readonly stop: (workerId: string) => Effect.Effect<Worker, WorkerNotFound | InvalidInput | RuntimeUnavailable>
  readonly restore: (workerId: string) => Effect.Effect<Worker, WorkerNotFound | InvalidInput | RuntimeUnavailable>
  readonly delete: (
    workerId: string
  ) => Effect.Effect<DeleteResult, WorkerNotFound | WorkerStateConflict | InvalidInput | RuntimeUnavailable>
  readonly transcript: (
    workerId: string,
    query?: TranscriptQuery
  ) => Effect.Effect<TranscriptPage, WorkerNotFound | InvalidInput | RuntimeUnavailable>
  readonly usage: (options?: { readonly limit?: number | undefined }) => Effect.Effect<UsageOverview, InvalidInput>
  readonly diagnostics: (
    options?: { readonly limit?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<Diagnostic>, InvalidInput | RuntimeUnavailable>
  /** Cursor and worker problems fail before anything streams; see `EventLog.subscribe`. */
  readonly subscribe: (
    query?: SubscribeQuery
  ) => Effect.Effect<
    Stream.Stream<RuntimeEvent, RuntimeUnavailable>,
    CursorInvalid | CursorExpired | WorkerNotFound | InvalidInput | RuntimeUnavailable,
    Scope.Scope
  >
  /** The cursor of the newest event. */
  readonly headCursor: Effect.Effect<string>
  /**
   * Graceful shutdown: refuse new input, let running turns finish for up to `graceMs`, then cancel the rest
   * (recorded as cancelled with a `runtime_shutdown` notice).
   */
  readonly drain: (graceMs: number) => Effect.Effect<void>
  readonly isDraining: Effect.Effect<boolean>
}

export class Runtime extends Context.Tag("@yoi/worker-runtime/Runtime")<Runtime, RuntimeService>() {}

/**
 * Assembles the runtime from its rooms: the worker table (`internal/workerTable`), admission of profiles, tools and
 * scopes (`internal/admission`), commits stamped by `Clock` and `IdGenerator` (`internal/commit`), the read models
 * (`internal/readModels`), the turn state machine (`internal/turns`), the worker commands
 * (`internal/workerCommands`), and recovery of the stored workers (`internal/recovery`).
 */
export const make: Effect.Effect<
  RuntimeService,
  StoreError | Profiles.RuntimeConfigError,
  RuntimeConfig | WorkerStore | EventLog | AllocationRegistry | Engines | Scope.Scope
> = Effect.gen(function*() {
  const config = yield* RuntimeConfig
  const log = yield* EventLog
  const runtimeScope = yield* Effect.scope
  const runtimeId = config.runtimeId
  const table = yield* WorkerTable.make
  const admission = yield* Admission.make(config)
  const committer = yield* Commit.make
  const startedAt = committer.now()
  const readModels = yield* ReadModels.make({ config, version: VERSION, startedAt, table, admission })
  const { toWorker } = readModels
  const turns = yield* Turns.make({ config, runtimeScope, table, committer, admission, toWorker })
  const commands = yield* WorkerCommands.make({
    table,
    committer,
    admission,
    turns,
    toWorker,
    queueLimit: config.queueLimit,
    runtimeScope
  })

  const subscribe = (query?: SubscribeQuery | null) =>
    Effect.gen(function*() {
      query = query ?? {}
      if (query.worker_id !== undefined) yield* table.lookup(query.worker_id)
      const unknownKind = (query.kinds ?? []).find((k) => !isKind(k))
      if (unknownKind !== undefined) {
        return yield* new InvalidInput({ field: "kinds", message: `unknown event kind ${JSON.stringify(unknownKind)}` })
      }
      return yield* log.subscribe({
        cursor: query.cursor,
        workerId: query.worker_id,
        kinds: query.kinds,
        live: query.live,
        bookmarks: query.bookmarks
      })
    })

  yield* Recovery.recover({ table, admission, turns })

  return {
    runtimeId,
    summary: readModels.summary,
    listWorkers: readModels.listWorkers,
    getWorker: readModels.getWorker,
    createWorker: commands.createWorker,
    sendInput: commands.sendInput,
    cancel: commands.cancel,
    queue: commands.queue,
    cancelQueued: commands.cancelQueued,
    clearQueue: commands.clearQueue,
    stop: commands.stop,
    restore: commands.restore,
    delete: commands.deleteWorker,
    transcript: readModels.transcript,
    usage: readModels.usage,
    diagnostics: readModels.diagnostics,
    subscribe,
    headCursor: Effect.sync(() => log.headCursor()),
    drain: commands.drain,
    isDraining: Effect.sync(() => table.draining)
  } satisfies RuntimeService
})

/** The Runtime over whatever store, allocation registry and engines are provided. */
export const layer: Layer.Layer<
  Runtime,
  StoreError | Profiles.RuntimeConfigError,
  RuntimeConfig | WorkerStore | EventLog | AllocationRegistry | Engines
> = Layer.scoped(Runtime, make)
