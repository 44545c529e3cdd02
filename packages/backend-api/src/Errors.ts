import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

// The Backend's own errors. Every one crosses HTTP, so its status is part of its schema. No message or field may
// carry a runtime endpoint, token, socket path, session path or file path: upstream errors are rebuilt here, never
// passed through raw.

/** No Backend token (cookie or bearer), or a wrong one. HTTP 401. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 401 })) {}

/** Policy refuses the command on this runtime (for example a read-only runtime). Audited. HTTP 403. */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  runtime_id: Schema.optional(Schema.String),
  action: Schema.optional(Schema.String),
  message: Schema.String
}, HttpApiSchema.annotations({ status: 403 })) {}

/** No runtime with this id is registered (or it is not visible to the caller). HTTP 404. */
export class RuntimeNotFound extends Schema.TaggedError<RuntimeNotFound>()("RuntimeNotFound", {
  runtime_id: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 404 })) {
  static of(runtimeId: string) {
    return new RuntimeNotFound({
      runtime_id: runtimeId.slice(0, 80),
      message: `runtime ${JSON.stringify(runtimeId.slice(0, 80))} is not registered`
    })
  }
}

/** The runtime exists but holds no worker with this id. HTTP 404. */
export class WorkerNotFound extends Schema.TaggedError<WorkerNotFound>()("WorkerNotFound", {
  runtime_id: Schema.String,
  worker_id: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 404 })) {
  static of(runtimeId: string, workerId: string) {
    return new WorkerNotFound({
      runtime_id: runtimeId,
      worker_id: workerId,
      message: `worker ${workerId} does not exist in runtime ${runtimeId}`
    })
  }
}

/** The request is malformed or out of range; nothing was changed. HTTP 400. */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  message: Schema.String,
  field: Schema.optional(Schema.String)
}, HttpApiSchema.annotations({ status: 400 })) {}

/** An event cursor is malformed, or belongs to another store or a previous life of a runtime. HTTP 400. */
export class CursorInvalid extends Schema.TaggedError<CursorInvalid>()("CursorInvalid", {
  runtime_id: Schema.optional(Schema.String),
  message: Schema.String
}, HttpApiSchema.annotations({ status: 400 })) {}

/** An event cursor points before what a runtime retains: re-list and resume from a fresh cursor. HTTP 410. */
export class CursorExpired extends Schema.TaggedError<CursorExpired>()("CursorExpired", {
  runtime_id: Schema.optional(Schema.String),
  earliest_cursor: Schema.optional(Schema.String),
  message: Schema.String
}, HttpApiSchema.annotations({ status: 410 })) {}

/** A turn is already running on the worker (single flight); names the running turn. HTTP 409. */
export class WorkerBusy extends Schema.TaggedError<WorkerBusy>()("WorkerBusy", {
  runtime_id: Schema.String,
  worker_id: Schema.String,
  turn_id: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 409 })) {}

/** The worker is stopped: restore it first. HTTP 409. */
export class WorkerStopped extends Schema.TaggedError<WorkerStopped>()("WorkerStopped", {
  runtime_id: Schema.String,
  worker_id: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 409 })) {}

/** A worker with this client-supplied id exists with a different spec. HTTP 409. */
export class WorkerAlreadyExists extends Schema.TaggedError<WorkerAlreadyExists>()("WorkerAlreadyExists", {
  runtime_id: Schema.String,
  worker_id: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 409 })) {}

/** The worker's status does not allow the action (delete while not stopped). HTTP 409. */
export class WorkerStateConflict extends Schema.TaggedError<WorkerStateConflict>()("WorkerStateConflict", {
  runtime_id: Schema.String,
  worker_id: Schema.String,
  status: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 409 })) {}

/** The requested scope overlaps another writer's, or leaves its parent's scope. HTTP 409. */
export class ScopeConflict extends Schema.TaggedError<ScopeConflict>()("ScopeConflict", {
  runtime_id: Schema.String,
  holder_worker_id: Schema.optional(Schema.String),
  message: Schema.String
}, HttpApiSchema.annotations({ status: 409 })) {}

/**
 * The runtime's configuration does not allow this scope or filesystem tool grant (outside its scope roots, wider
 * access, or no roots). Names the refused field, never a root. HTTP 403.
 */
export class ScopeNotPermitted extends Schema.TaggedError<ScopeNotPermitted>()("ScopeNotPermitted", {
  runtime_id: Schema.String,
  field: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 403 })) {}

/** The request body is larger than the Backend accepts. HTTP 413. */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  limit_bytes: Schema.Number,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 413 })) {}

/** The runtime (or the legacy pod adapter) does not implement this operation. HTTP 501. */
export class UnsupportedOperation extends Schema.TaggedError<UnsupportedOperation>()("UnsupportedOperation", {
  runtime_id: Schema.String,
  operation: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 501 })) {}

/** The runtime cannot be reached or cannot serve now (down, draining, refused the Backend's credentials). HTTP 503. */
export class RuntimeUnavailable extends Schema.TaggedError<RuntimeUnavailable>()("RuntimeUnavailable", {
  runtime_id: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 503 })) {}

/** The runtime did not answer in time. HTTP 504. */
export class UpstreamTimeout extends Schema.TaggedError<UpstreamTimeout>()("UpstreamTimeout", {
  runtime_id: Schema.String,
  timeout_ms: Schema.Number,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 504 })) {}

/** A failure of the Backend itself; the cause is logged, never sent. HTTP 500. */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", {
  message: Schema.String
}, HttpApiSchema.annotations({ status: 500 })) {}

/** The worker's input queue is full; nothing was queued. HTTP 429 (retry when a turn has finished). */
export class QueueFull extends Schema.TaggedError<QueueFull>()("QueueFull", {
  runtime_id: Schema.String,
  worker_id: Schema.String,
  limit: Schema.Number,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 429 })) {}

/** The input is not in the worker's queue (never queued, already started or cancelled). HTTP 404. */
export class QueuedInputNotFound extends Schema.TaggedError<QueuedInputNotFound>()("QueuedInputNotFound", {
  runtime_id: Schema.String,
  worker_id: Schema.String,
  input_id: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 404 })) {}

/** The worker has no record of the named turn. HTTP 404. */
export class TurnNotFound extends Schema.TaggedError<TurnNotFound>()("TurnNotFound", {
  runtime_id: Schema.String,
  worker_id: Schema.String,
  turn_id: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 404 })) {}

/** A cancel with `wait_ms`: the turn had not ended in time; the cancel goes on. HTTP 504. */
export class TurnWaitTimeout extends Schema.TaggedError<TurnWaitTimeout>()("TurnWaitTimeout", {
  runtime_id: Schema.String,
  worker_id: Schema.String,
  turn_id: Schema.String,
  wait_ms: Schema.Number,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 504 })) {}

/** What any runtime handle may answer for a worker operation. */
export type HandleError =
  | QueueFull
  | QueuedInputNotFound
  | TurnNotFound
  | TurnWaitTimeout
  | WorkerNotFound
  | InvalidInput
  | CursorInvalid
  | CursorExpired
  | WorkerBusy
  | WorkerStopped
  | WorkerAlreadyExists
  | WorkerStateConflict
  | ScopeConflict
  | ScopeNotPermitted
  | UnsupportedOperation
  | RuntimeUnavailable
  | UpstreamTimeout

/** What a routed operation may answer: a handle's errors plus the registry's own. */
export type RouteError = HandleError | RuntimeNotFound | Forbidden

/** No route matches the method and path. HTTP 404. */
export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()("RouteNotFound", {
  method: Schema.String,
  path: Schema.String,
  message: Schema.String
}, HttpApiSchema.annotations({ status: 404 })) {}
