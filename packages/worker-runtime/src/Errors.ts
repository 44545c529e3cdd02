import { Schema } from "effect"

/** The worker does not exist in this runtime (never created, or deleted). HTTP 404. */
export class WorkerNotFound extends Schema.TaggedError<WorkerNotFound>()("WorkerNotFound", {
  worker_id: Schema.String,
  message: Schema.String
}) {
  static of(workerId: string) {
    return new WorkerNotFound({ worker_id: workerId, message: `worker ${workerId} does not exist` })
  }
}

/** A turn is already running on the worker (single flight). Names the running turn. HTTP 409. */
export class WorkerBusy extends Schema.TaggedError<WorkerBusy>()("WorkerBusy", {
  worker_id: Schema.String,
  turn_id: Schema.String,
  message: Schema.String
}) {
  static of(workerId: string, turnId: string) {
    return new WorkerBusy({
      worker_id: workerId,
      turn_id: turnId,
      message: `worker ${workerId} is running turn ${turnId}; cancel it or wait for it to finish`
    })
  }
}

/** The worker is stopped: restore it before sending input. HTTP 409. */
export class WorkerStopped extends Schema.TaggedError<WorkerStopped>()("WorkerStopped", {
  worker_id: Schema.String,
  message: Schema.String
}) {
  static of(workerId: string, action: string) {
    return new WorkerStopped({
      worker_id: workerId,
      message: `worker ${workerId} is stopped; restore it before ${action}`
    })
  }
}

/** A worker with this client-supplied id exists with a different spec. HTTP 409. */
export class WorkerAlreadyExists extends Schema.TaggedError<WorkerAlreadyExists>()("WorkerAlreadyExists", {
  worker_id: Schema.String,
  message: Schema.String
}) {
  static of(workerId: string) {
    return new WorkerAlreadyExists({
      worker_id: workerId,
      message: `worker ${workerId} already exists with a different spec`
    })
  }
}

/** A lifecycle action that the worker's status does not allow (delete while not stopped). HTTP 409. */
export class WorkerStateConflict extends Schema.TaggedError<WorkerStateConflict>()("WorkerStateConflict", {
  worker_id: Schema.String,
  status: Schema.String,
  message: Schema.String
}) {}

/** Two writers on overlapping paths, or a delegation outside the parent's scope. HTTP 409. */
export class ScopeConflict extends Schema.TaggedError<ScopeConflict>()("ScopeConflict", {
  path: Schema.String,
  holder_worker_id: Schema.optional(Schema.String),
  message: Schema.String
}) {}

/**
 * The scope (or a filesystem tool grant) is not allowed by the runtime's configuration: a path outside its
 * `scope_roots` (compared after resolving symlinks), access wider than the root's, or no roots at all. Names the
 * refused field, never a root. HTTP 403.
 */
export class ScopeNotPermitted extends Schema.TaggedError<ScopeNotPermitted>()("ScopeNotPermitted", {
  field: Schema.String,
  message: Schema.String
}) {}

/** The request is malformed or out of range; nothing was changed. HTTP 400. */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  message: Schema.String,
  field: Schema.optional(Schema.String)
}) {}

/** The cursor is malformed or belongs to another store or another life of an ephemeral runtime. HTTP 400. */
export class CursorInvalid extends Schema.TaggedError<CursorInvalid>()("CursorInvalid", {
  cursor: Schema.String,
  message: Schema.String
}) {}

/** The cursor points before the retained backlog: re-list the transcript and resume from its cursor. HTTP 410. */
export class CursorExpired extends Schema.TaggedError<CursorExpired>()("CursorExpired", {
  cursor: Schema.String,
  earliest_cursor: Schema.String,
  message: Schema.String
}) {}

/** The runtime or adapter does not implement this operation. HTTP 501. */
export class UnsupportedOperation extends Schema.TaggedError<UnsupportedOperation>()("UnsupportedOperation", {
  operation: Schema.String,
  message: Schema.String
}) {}

/** The runtime cannot serve the request now (store failure, draining, overloaded). HTTP 503. */
export class RuntimeUnavailable extends Schema.TaggedError<RuntimeUnavailable>()("RuntimeUnavailable", {
  message: Schema.String
}) {}

/**
 * The worker's input queue holds `limit` inputs already; nothing was queued. HTTP 429: it is back-pressure that
 * clears as turns finish (retry later), unlike `WorkerBusy`'s 409, which asks the caller to choose a policy.
 */
export class QueueFull extends Schema.TaggedError<QueueFull>()("QueueFull", {
  worker_id: Schema.String,
  limit: Schema.Number,
  message: Schema.String
}) {
  static of(workerId: string, limit: number) {
    return new QueueFull({
      worker_id: workerId,
      limit,
      message: `the input queue of worker ${workerId} is full (${limit} inputs); retry when a turn has finished`
    })
  }
}

/** The queue holds no input with this id (never queued, already started, or cancelled). HTTP 404. */
export class QueuedInputNotFound extends Schema.TaggedError<QueuedInputNotFound>()("QueuedInputNotFound", {
  worker_id: Schema.String,
  input_id: Schema.String,
  message: Schema.String
}) {
  static of(workerId: string, inputId: string) {
    return new QueuedInputNotFound({
      worker_id: workerId,
      input_id: inputId,
      message: `input ${inputId} is not in the queue of worker ${workerId} (never queued, already started or cancelled)`
    })
  }
}

/** The worker has no record of this turn (never its turn, or ended before this runtime last started). HTTP 404. */
export class TurnNotFound extends Schema.TaggedError<TurnNotFound>()("TurnNotFound", {
  worker_id: Schema.String,
  turn_id: Schema.String,
  message: Schema.String
}) {
  static of(workerId: string, turnId: string) {
    return new TurnNotFound({
      worker_id: workerId,
      turn_id: turnId,
      message: `worker ${workerId} has no record of turn ${turnId}`
    })
  }
}

/**
 * A cancel with `wait_ms` was requested but the turn had not ended when the wait ran out; the cancel goes on and the
 * turn's end arrives on the event stream. HTTP 504 (Kubernetes answers a timed-out wait the same way).
 */
export class TurnWaitTimeout extends Schema.TaggedError<TurnWaitTimeout>()("TurnWaitTimeout", {
  worker_id: Schema.String,
  turn_id: Schema.String,
  wait_ms: Schema.Number,
  message: Schema.String
}) {}
