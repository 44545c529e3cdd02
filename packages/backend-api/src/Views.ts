import { Domain } from "@yoi/worker-runtime/schema"
import { Schema } from "effect"

// What browsers see. Nothing here carries an endpoint, token, socket path, session path or file path.

export const RuntimeKind = Schema.Literal("embedded", "remote", "legacy")
export type RuntimeKind = typeof RuntimeKind.Type

/** `online`: reached and ready; `degraded`: reached but not ready (draining, refusing us); `offline`: not reached. */
export const RuntimeHealth = Schema.Literal("online", "degraded", "offline")
export type RuntimeHealth = typeof RuntimeHealth.Type

export const RuntimeView = Schema.Struct({
  runtime_id: Schema.String,
  display_name: Schema.String,
  kind: RuntimeKind,
  /** True for the legacy pod adapter: a read-only compatibility view, never the authority. */
  compatibility: Schema.Boolean,
  read_only: Schema.Boolean,
  status: RuntimeHealth,
  last_seen_at: Schema.optional(Schema.String),
  /** Why the runtime is degraded or offline, in words that name no endpoint or path. */
  status_reason: Schema.optional(Schema.String),
  counts: Schema.optional(Domain.StatusCounts),
  /** The runtime's own summary: the live one for an embedded runtime, the last probed one for a remote. */
  summary: Schema.optional(Domain.RuntimeSummary)
})
export type RuntimeView = typeof RuntimeView.Type

export const RuntimeList = Schema.Struct({ items: Schema.Array(RuntimeView) })
export type RuntimeList = typeof RuntimeList.Type

export const Liveness = Schema.Literal("alive", "stale", "inactive")
export type Liveness = typeof Liveness.Type

/** A worker as browsers see it: the runtime's view, plus compatibility fields for legacy pods. */
export const WorkerView = Schema.Struct({
  ...Domain.Worker.fields,
  compatibility: Schema.optional(Schema.Boolean),
  /** Legacy pods only: `alive` (its process runs), `stale` (allocated to a dead process), `inactive`. */
  liveness: Schema.optional(Liveness)
})
export type WorkerView = typeof WorkerView.Type

export const WorkerPage = Schema.Struct({
  items: Schema.Array(WorkerView),
  next_page_token: Schema.optional(Schema.String)
})
export type WorkerPage = typeof WorkerPage.Type

export const CreateResult = Schema.Struct({ worker: WorkerView, created: Schema.Boolean })
export type CreateResult = typeof CreateResult.Type

export const InputAccepted = Schema.Struct({ turn_id: Schema.String, worker: WorkerView })
export type InputAccepted = typeof InputAccepted.Type

/** `busy: "enqueue"` while a turn ran: the input waits in the worker's queue at `position`. */
export const InputQueued = Schema.Struct({
  queued: Schema.Literal(true),
  input_id: Schema.String,
  position: Schema.Number,
  worker: WorkerView
})
export type InputQueued = typeof InputQueued.Type

export const InputResult = Schema.Union(InputAccepted, InputQueued)
export type InputResult = typeof InputResult.Type

export const CancelResult = Schema.Struct({
  cancelled: Schema.Boolean,
  turn_id: Schema.optional(Schema.String),
  outcome: Schema.optional(Schema.String),
  worker: WorkerView
})
export type CancelResult = typeof CancelResult.Type

/** A worker's queued inputs, in the order they will start. */
export const WorkerQueue = Domain.WorkerQueue
export type WorkerQueue = Domain.WorkerQueue

/** The inputs a queue cancel took out of the worker's queue. */
export const QueueCancelled = Schema.Struct({
  worker_id: Schema.String,
  cancelled: Schema.Array(Schema.String),
  worker: WorkerView
})
export type QueueCancelled = typeof QueueCancelled.Type

export const DeleteResult = Schema.Struct({ worker_id: Schema.String, deleted: Schema.Boolean })
export type DeleteResult = typeof DeleteResult.Type

export const TranscriptPage = Domain.TranscriptPage
export type TranscriptPage = Domain.TranscriptPage

export const RuntimeProblem = Schema.Struct({
  runtime_id: Schema.String,
  _tag: Schema.String,
  message: Schema.String
})
export type RuntimeProblem = typeof RuntimeProblem.Type

/** `GET /api/workers`: every visible worker of every runtime; runtimes that could not answer are named. */
export const AllWorkers = Schema.Struct({
  items: Schema.Array(WorkerView),
  unavailable: Schema.Array(RuntimeProblem)
})
export type AllWorkers = typeof AllWorkers.Type

/** `GET /api/hosts`: the older host listing, one host per runtime. */
export const HostView = Schema.Struct({
  host_id: Schema.String,
  runtime_id: Schema.String,
  display_name: Schema.String,
  kind: RuntimeKind,
  compatibility: Schema.Boolean,
  status: RuntimeHealth,
  last_seen_at: Schema.optional(Schema.String),
  worker_count: Schema.optional(Schema.Number)
})
export type HostView = typeof HostView.Type

export const HostList = Schema.Struct({ items: Schema.Array(HostView) })
export type HostList = typeof HostList.Type

/** The most audit records one page holds. */
export const AUDIT_PAGE_MAX = 500

export const AuditAction = Schema.Literal("create", "input", "cancel", "stop", "restore", "delete")
export type AuditAction = typeof AuditAction.Type

export const AuditOutcome = Schema.Literal("ok", "denied", "failed")
export type AuditOutcome = typeof AuditOutcome.Type

export const AuditRecord = Schema.Struct({
  id: Schema.Number,
  at: Schema.String,
  actor: Schema.String,
  runtime_id: Schema.String,
  worker_id: Schema.NullOr(Schema.String),
  action: AuditAction,
  outcome: AuditOutcome,
  error_tag: Schema.NullOr(Schema.String),
  request_id: Schema.String
})
export type AuditRecord = typeof AuditRecord.Type

export const AuditPage = Schema.Struct({
  items: Schema.Array(AuditRecord),
  next_page_token: Schema.optional(Schema.String)
})
export type AuditPage = typeof AuditPage.Type

/**
 * How an observed event stream ended: `closed` (the connection closed: the client left, or the Backend stopped),
 * `lagged` (it fell behind and got `stream.lagged`), `error` (a final `stream.error`), `ended` (its source ended).
 */
export const ObservationEnd = Schema.Literal("closed", "lagged", "error", "ended")
export type ObservationEnd = typeof ObservationEnd.Type

/**
 * One event stream a caller opened through the Backend (audited observation): who, which stream and filters, from
 * which cursor, when it opened and closed, how many events it delivered, and why it ended.
 */
export const ObservationRecord = Schema.Struct({
  id: Schema.Number,
  actor: Schema.String,
  request_id: Schema.String,
  /** `all` (`GET /api/events`) or `worker` (one worker's events). */
  stream: Schema.Literal("all", "worker"),
  runtime_id: Schema.NullOr(Schema.String),
  worker_id: Schema.NullOr(Schema.String),
  /** The cursor the caller asked for (`Last-Event-ID` or `?cursor=`), null for "from now". */
  cursor: Schema.NullOr(Schema.String),
  /** The position the stream started from (the open frame's id). */
  start_cursor: Schema.NullOr(Schema.String),
  /** The id of the last event delivered: where the caller resumes. */
  last_cursor: Schema.NullOr(Schema.String),
  opened_at: Schema.String,
  closed_at: Schema.String,
  duration_ms: Schema.Number,
  /** Events written to the caller (heartbeats and the open frame not counted). */
  events: Schema.Number,
  end_reason: ObservationEnd,
  /** The error of a stream that ended with one (`error`). */
  error_tag: Schema.NullOr(Schema.String)
})
export type ObservationRecord = typeof ObservationRecord.Type

export const ObservationPage = Schema.Struct({
  items: Schema.Array(ObservationRecord),
  next_page_token: Schema.optional(Schema.String)
})
export type ObservationPage = typeof ObservationPage.Type
