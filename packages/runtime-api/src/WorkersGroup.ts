import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import {
  Domain,
  Ids,
  InvalidInput,
  QueuedInputNotFound,
  QueueFull,
  Runtime,
  RuntimeUnavailable,
  ScopeConflict,
  ScopeNotPermitted,
  TurnNotFound,
  TurnWaitTimeout,
  UnsupportedOperation,
  WorkerAlreadyExists,
  WorkerBusy,
  WorkerNotFound,
  WorkerStateConflict,
  WorkerStopped
} from "@yoi/worker-runtime"
import { Schema } from "effect"

const strict = { parseOptions: { onExcessProperty: "error", errors: "all" } } as const

/**
 * The id is validated on both sides: the derived client puts it into the URL path unescaped, so an id with `/` or
 * `..` would address another route; with this schema such a call fails in the client before anything is sent.
 */
export const WorkerPath = Schema.Struct({ worker_id: Ids.WorkerId.from })

/**
 * A page size in the query string. Its JSON Schema is an integer with bounds, so a generated client passes a number;
 * the runtime checks the bounds itself and answers `InvalidInput` naming `limit` (the derived client does not refuse
 * it first).
 */
export const Limit = (max: number, fallback: number) =>
  Schema.NumberFromString.annotations({
    description: `page size, 1 to ${max} (default ${fallback})`,
    jsonSchema: { type: "integer", minimum: 1, maximum: max, default: fallback }
  })

const pageToken = Schema.String.annotations({ description: "the `next_page_token` of the previous page" })

export const ListWorkersParams = Schema.Struct({
  status: Schema.optional(Domain.WorkerStatus),
  /** Only workers whose `yoi.workspace` metadata is this (a Backend's own workers on a shared runtime). */
  workspace: Schema.optional(Schema.String.pipe(Schema.maxLength(128))),
  limit: Schema.optional(Limit(Runtime.WORKER_PAGE_MAX, 50)),
  page_token: Schema.optional(pageToken)
})

export const TranscriptParams = Schema.Struct({
  limit: Schema.optional(Limit(Runtime.TRANSCRIPT_PAGE_MAX, 100)),
  page_token: Schema.optional(pageToken)
})

export const CreateWorkerBody = Domain.CreateWorker.annotations(strict)
export const SendInputBody = Domain.SendInput.annotations(strict)
/** An empty body (`null`) cancels whatever turn runs; `{"turn_id": ...}` cancels that turn only. */
export const CancelBody = Schema.NullOr(Domain.CancelRequest.annotations(strict))

export const CancelParams = Schema.Struct({
  wait_ms: Schema.optional(Schema.NumberFromString.annotations({
    description: "wait at most this long (0 to 60000 ms) for the turn to end; else `TurnWaitTimeout` (504)",
    jsonSchema: { type: "integer", minimum: 0, maximum: 60_000 }
  }))
})

export const QueuedInputPath = Schema.Struct({
  worker_id: Ids.WorkerId.from,
  input_id: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_.-]{1,128}$/))
})

/** 201: the worker was created by this request. */
export const WorkerCreated = Schema.Struct({ worker: Domain.Worker, created: Schema.Literal(true) })
/** 200: an idempotent repeat of an earlier create with the same worker_id and spec. */
export const WorkerExisted = Schema.Struct({ worker: Domain.Worker, created: Schema.Literal(false) })

/** Worker commands and queries; every handler is one call to `Runtime`. */
export class WorkersGroup extends HttpApiGroup.make("workers")
  .add(
    HttpApiEndpoint.get("list", "/v1/workers")
      .setUrlParams(ListWorkersParams)
      .addSuccess(Domain.WorkerPage)
      .annotate(OpenApi.Summary, "List workers")
      .annotate(OpenApi.Description, "Workers in `worker_id` order, optionally by status, one page at a time.")
  )
  .add(
    HttpApiEndpoint.post("create", "/v1/workers")
      .setPayload(CreateWorkerBody)
      .addSuccess(WorkerCreated, { status: 201 })
      .addSuccess(WorkerExisted, { status: 200 })
      .addError(WorkerAlreadyExists, { status: 409 })
      .addError(ScopeConflict, { status: 409 })
      .addError(ScopeNotPermitted, { status: 403 })
      .addError(UnsupportedOperation, { status: 501 })
      .addError(RuntimeUnavailable, { status: 503 })
      .annotate(OpenApi.Summary, "Create a worker")
      .annotate(OpenApi.Description, "201 when created; 200 when a create with the same `worker_id` and spec was already done (idempotent retry). An `initial_input` starts the first turn.")
  )
  .add(
    HttpApiEndpoint.get("get", "/v1/workers/:worker_id")
      .setPath(WorkerPath)
      .addSuccess(Domain.Worker)
      .addError(WorkerNotFound, { status: 404 })
      .annotate(OpenApi.Summary, "Get a worker")
  )
  .add(
    HttpApiEndpoint.post("input", "/v1/workers/:worker_id/input")
      .setPath(WorkerPath)
      .setPayload(SendInputBody)
      // Two members, each with its status: a union added at once loses the status on its members.
      .addSuccess(Domain.InputAccepted, { status: 202 })
      .addSuccess(Domain.InputQueued, { status: 202 })
      .addError(WorkerNotFound, { status: 404 })
      .addError(WorkerBusy, { status: 409 })
      .addError(WorkerStopped, { status: 409 })
      .addError(QueueFull, { status: 429 })
      .addError(RuntimeUnavailable, { status: 503 })
      .annotate(OpenApi.Summary, "Send input to a worker")
      .annotate(
        OpenApi.Description,
        "Starts a turn; its progress is on the event stream and its result in the transcript. While a turn runs, " +
          "`busy` decides: `reject` (default) answers `WorkerBusy`, `interrupt` cancels it and starts this one, " +
          "`enqueue` queues the input (`{queued: true, input_id, position}`) or answers `QueueFull`."
      )
  )
  .add(
    HttpApiEndpoint.post("cancel", "/v1/workers/:worker_id/cancel")
      .setPath(WorkerPath)
      .setPayload(CancelBody)
      .setUrlParams(CancelParams)
      .addSuccess(Domain.CancelResult)
      .addError(WorkerNotFound, { status: 404 })
      .addError(TurnNotFound, { status: 404 })
      .addError(TurnWaitTimeout, { status: 504 })
      .addError(RuntimeUnavailable, { status: 503 })
      .annotate(OpenApi.Summary, "Cancel the running turn")
      .annotate(
        OpenApi.Description,
        "`cancelled: false` when no turn was running. With `turn_id`, only that turn: if it already ended the " +
          "answer is `cancelled: false` with its `outcome`. The next queued input then starts."
      )
  )
  .add(
    HttpApiEndpoint.get("queue", "/v1/workers/:worker_id/queue")
      .setPath(WorkerPath)
      .addSuccess(Domain.WorkerQueue)
      .addError(WorkerNotFound, { status: 404 })
      .annotate(OpenApi.Summary, "List a worker's queued inputs")
  )
  .add(
    HttpApiEndpoint.del("clearQueue", "/v1/workers/:worker_id/queue")
      .setPath(WorkerPath)
      .addSuccess(Domain.QueueCancelled)
      .addError(WorkerNotFound, { status: 404 })
      .addError(RuntimeUnavailable, { status: 503 })
      .annotate(OpenApi.Summary, "Cancel every queued input of a worker")
  )
  .add(
    HttpApiEndpoint.del("cancelQueued", "/v1/workers/:worker_id/queue/:input_id")
      .setPath(QueuedInputPath)
      .addSuccess(Domain.QueueCancelled)
      .addError(WorkerNotFound, { status: 404 })
      .addError(QueuedInputNotFound, { status: 404 })
      .addError(RuntimeUnavailable, { status: 503 })
      .annotate(OpenApi.Summary, "Cancel one queued input")
  )
  .add(
    HttpApiEndpoint.post("stop", "/v1/workers/:worker_id/stop")
      .setPath(WorkerPath)
      .addSuccess(Domain.Worker)
      .addError(WorkerNotFound, { status: 404 })
      .addError(RuntimeUnavailable, { status: 503 })
      .annotate(OpenApi.Summary, "Stop a worker")
      .annotate(OpenApi.Description, "Cancels a running turn; a stopped worker refuses input until restored.")
  )
  .add(
    HttpApiEndpoint.post("restore", "/v1/workers/:worker_id/restore")
      .setPath(WorkerPath)
      .addSuccess(Domain.Worker)
      .addError(WorkerNotFound, { status: 404 })
      .addError(RuntimeUnavailable, { status: 503 })
      .annotate(OpenApi.Summary, "Restore a stopped worker")
  )
  .add(
    HttpApiEndpoint.del("delete", "/v1/workers/:worker_id")
      .setPath(WorkerPath)
      .addSuccess(Domain.DeleteResult)
      .addError(WorkerNotFound, { status: 404 })
      .addError(WorkerStateConflict, { status: 409 })
      .addError(RuntimeUnavailable, { status: 503 })
      .annotate(OpenApi.Summary, "Delete a stopped worker")
  )
  .add(
    HttpApiEndpoint.get("transcript", "/v1/workers/:worker_id/transcript")
      .setPath(WorkerPath)
      .setUrlParams(TranscriptParams)
      .addSuccess(Domain.TranscriptPage)
      .addError(WorkerNotFound, { status: 404 })
      .addError(RuntimeUnavailable, { status: 503 })
      .annotate(OpenApi.Summary, "Page through a worker's transcript")
      .annotate(OpenApi.Description, "Each page carries the event `cursor` it is consistent with: stream from it to follow what comes after.")
  )
  .addError(InvalidInput, { status: 400 })
  .annotate(OpenApi.Description, "Worker commands and queries.") {}
