import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import {
  Domain,
  Ids,
  InvalidInput,
  RuntimeUnavailable,
  ScopeConflict,
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

export const ListWorkersParams = Schema.Struct({
  status: Schema.optional(Domain.WorkerStatus),
  limit: Schema.optional(Schema.NumberFromString),
  page_token: Schema.optional(Schema.String)
})

export const TranscriptParams = Schema.Struct({
  limit: Schema.optional(Schema.NumberFromString),
  page_token: Schema.optional(Schema.String)
})

export const CreateWorkerBody = Domain.CreateWorker.annotations(strict)
export const SendInputBody = Domain.SendInput.annotations(strict)

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
  )
  .add(
    HttpApiEndpoint.post("create", "/v1/workers")
      .setPayload(CreateWorkerBody)
      .addSuccess(WorkerCreated, { status: 201 })
      .addSuccess(WorkerExisted, { status: 200 })
      .addError(WorkerAlreadyExists, { status: 409 })
      .addError(ScopeConflict, { status: 409 })
      .addError(UnsupportedOperation, { status: 501 })
      .addError(RuntimeUnavailable, { status: 503 })
  )
  .add(
    HttpApiEndpoint.get("get", "/v1/workers/:worker_id")
      .setPath(WorkerPath)
      .addSuccess(Domain.Worker)
      .addError(WorkerNotFound, { status: 404 })
  )
  .add(
    HttpApiEndpoint.post("input", "/v1/workers/:worker_id/input")
      .setPath(WorkerPath)
      .setPayload(SendInputBody)
      .addSuccess(Domain.InputAccepted, { status: 202 })
      .addError(WorkerNotFound, { status: 404 })
      .addError(WorkerBusy, { status: 409 })
      .addError(WorkerStopped, { status: 409 })
      .addError(RuntimeUnavailable, { status: 503 })
  )
  .add(
    HttpApiEndpoint.post("cancel", "/v1/workers/:worker_id/cancel")
      .setPath(WorkerPath)
      .addSuccess(Domain.CancelResult)
      .addError(WorkerNotFound, { status: 404 })
      .addError(RuntimeUnavailable, { status: 503 })
  )
  .add(
    HttpApiEndpoint.post("stop", "/v1/workers/:worker_id/stop")
      .setPath(WorkerPath)
      .addSuccess(Domain.Worker)
      .addError(WorkerNotFound, { status: 404 })
      .addError(RuntimeUnavailable, { status: 503 })
  )
  .add(
    HttpApiEndpoint.post("restore", "/v1/workers/:worker_id/restore")
      .setPath(WorkerPath)
      .addSuccess(Domain.Worker)
      .addError(WorkerNotFound, { status: 404 })
      .addError(RuntimeUnavailable, { status: 503 })
  )
  .add(
    HttpApiEndpoint.del("delete", "/v1/workers/:worker_id")
      .setPath(WorkerPath)
      .addSuccess(Domain.DeleteResult)
      .addError(WorkerNotFound, { status: 404 })
      .addError(WorkerStateConflict, { status: 409 })
      .addError(RuntimeUnavailable, { status: 503 })
  )
  .add(
    HttpApiEndpoint.get("transcript", "/v1/workers/:worker_id/transcript")
      .setPath(WorkerPath)
      .setUrlParams(TranscriptParams)
      .addSuccess(Domain.TranscriptPage)
      .addError(WorkerNotFound, { status: 404 })
      .addError(RuntimeUnavailable, { status: 503 })
  )
  .addError(InvalidInput, { status: 400 }) {}
