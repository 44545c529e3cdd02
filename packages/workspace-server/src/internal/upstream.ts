import * as Errors from "@yoi/backend-api/Errors"

/** The fields a runtime's typed error may carry; read by tag, never trusted for wording. */
interface UpstreamError {
  readonly _tag: string
  readonly message?: unknown
  readonly worker_id?: unknown
  readonly turn_id?: unknown
  readonly status?: unknown
  readonly field?: unknown
  readonly holder_worker_id?: unknown
  readonly operation?: unknown
  readonly earliest_cursor?: unknown
  readonly limit?: unknown
  readonly input_id?: unknown
  readonly wait_ms?: unknown
}

/** Removes any configured secret or endpoint from a message that is passed on (defence in depth). */
export const scrub = (text: string, secrets: ReadonlyArray<string>): string =>
  secrets.reduce((acc, secret) => (secret.length >= 4 ? acc.split(secret).join("[redacted]") : acc), text)

/**
 * Maps a runtime's typed error (from the embedded library or a remote's response body) to the Backend's own.
 * Messages are rebuilt from fields, except validation messages, which describe the caller's own input and are
 * scrubbed of secrets. Anything unknown is `RuntimeUnavailable` with a generic message.
 */
export const mapRuntimeError = (
  runtimeId: string,
  error: UpstreamError,
  context: { readonly workerId?: string | undefined; readonly secrets?: ReadonlyArray<string> } = {}
): Errors.HandleError => {
  const secrets = context.secrets ?? []
  // Every field passed on is scrubbed (before it is cut, so no prefix of a secret survives), not only messages: a
  // runtime that echoes its own endpoint or token in any field must not reach a browser through the Backend.
  const text = (value: unknown): string | undefined =>
    typeof value === "string" ? scrub(value, secrets).slice(0, 200) : undefined
  const str = (value: unknown, fallback = ""): string => text(value) ?? fallback
  const workerId = str(error.worker_id, context.workerId ?? "")
  switch (error._tag) {
    case "WorkerNotFound":
      return Errors.WorkerNotFound.of(runtimeId, workerId)
    case "WorkerBusy": {
      const turnId = str(error.turn_id, "unknown")
      return new Errors.WorkerBusy({
        runtime_id: runtimeId,
        worker_id: workerId,
        turn_id: turnId,
        message: `worker ${workerId} is running turn ${turnId}; cancel it or wait for it to finish`
      })
    }
    case "QueueFull": {
      const limit = typeof error.limit === "number" ? error.limit : 0
      return new Errors.QueueFull({
        runtime_id: runtimeId,
        worker_id: workerId,
        limit,
        message: `the input queue of worker ${workerId} is full (${limit} inputs); retry when a turn has finished`
      })
    }
    case "QueuedInputNotFound": {
      const inputId = str(error.input_id, "unknown")
      return new Errors.QueuedInputNotFound({
        runtime_id: runtimeId,
        worker_id: workerId,
        input_id: inputId,
        message: `input ${inputId} is not in the queue of worker ${workerId}`
      })
    }
    case "TurnNotFound": {
      const turnId = str(error.turn_id, "unknown")
      return new Errors.TurnNotFound({
        runtime_id: runtimeId,
        worker_id: workerId,
        turn_id: turnId,
        message: `worker ${workerId} has no record of turn ${turnId}`
      })
    }
    case "TurnWaitTimeout": {
      const turnId = str(error.turn_id, "unknown")
      const waitMs = typeof error.wait_ms === "number" ? error.wait_ms : 0
      return new Errors.TurnWaitTimeout({
        runtime_id: runtimeId,
        worker_id: workerId,
        turn_id: turnId,
        wait_ms: waitMs,
        message: `turn ${turnId} of worker ${workerId} had not ended after ${waitMs} ms; the cancel goes on`
      })
    }
    case "WorkerStopped":
      return new Errors.WorkerStopped({
        runtime_id: runtimeId,
        worker_id: workerId,
        message: `worker ${workerId} is stopped; restore it first`
      })
    case "WorkerAlreadyExists":
      return new Errors.WorkerAlreadyExists({
        runtime_id: runtimeId,
        worker_id: workerId,
        message: `worker ${workerId} already exists in runtime ${runtimeId} with a different spec`
      })
    case "WorkerStateConflict": {
      const status = str(error.status, "unknown")
      return new Errors.WorkerStateConflict({
        runtime_id: runtimeId,
        worker_id: workerId,
        status,
        message: `worker ${workerId} is ${status}; stop it first`
      })
    }
    case "ScopeConflict": {
      const holder = text(error.holder_worker_id)
      return new Errors.ScopeConflict({
        runtime_id: runtimeId,
        ...(holder === undefined ? {} : { holder_worker_id: holder }),
        message: holder === undefined
          ? "the requested scope is not allowed (it leaves its parent's scope or conflicts with another allocation)"
          : `the requested scope overlaps a path that worker ${holder} holds for writing`
      })
    }
    case "ScopeNotPermitted": {
      const field = str(error.field, "scope")
      return new Errors.ScopeNotPermitted({
        runtime_id: runtimeId,
        field,
        message: `runtime ${runtimeId} does not grant this: ${field} is outside what its configuration allows`
      })
    }
    case "InvalidInput": {
      const field = text(error.field)
      return new Errors.InvalidInput({
        message: str(error.message, "invalid input"),
        ...(field === undefined ? {} : { field })
      })
    }
    case "CursorInvalid":
      return new Errors.CursorInvalid({
        runtime_id: runtimeId,
        message: `the cursor for runtime ${runtimeId} is invalid (malformed, or from another store or a previous ` +
          "life of the runtime); reconnect without a cursor after re-listing"
      })
    case "CursorExpired": {
      const earliest = text(error.earliest_cursor)
      return new Errors.CursorExpired({
        runtime_id: runtimeId,
        ...(earliest === undefined ? {} : { earliest_cursor: earliest }),
        message: `the cursor for runtime ${runtimeId} has expired; re-list the transcript and resume from its cursor`
      })
    }
    case "UnsupportedOperation":
      return new Errors.UnsupportedOperation({
        runtime_id: runtimeId,
        operation: str(error.operation, "unknown"),
        message: `runtime ${runtimeId} does not support ${str(error.operation, "this operation")}`
      })
    case "PayloadTooLarge":
      return new Errors.InvalidInput({ message: `runtime ${runtimeId} refused the request as too large` })
    default:
      return new Errors.RuntimeUnavailable({
        runtime_id: runtimeId,
        message: `runtime ${runtimeId} cannot serve the request now`
      })
  }
}
