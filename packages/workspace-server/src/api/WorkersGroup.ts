import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Domain } from "@yoi/worker-runtime"
import { Schema } from "effect"
import { Authentication } from "../Auth.js"
import {
  CursorExpired,
  CursorInvalid,
  Forbidden,
  InvalidInput,
  PayloadTooLarge,
  RuntimeNotFound,
  RuntimeUnavailable,
  ScopeConflict,
  UnsupportedOperation,
  UpstreamTimeout,
  WorkerAlreadyExists,
  WorkerBusy,
  WorkerNotFound,
  WorkerStateConflict,
  WorkerStopped
} from "../Errors.js"
import { CancelResult, CreateResult, DeleteResult, InputAccepted, TranscriptPage, WorkerPage, WorkerView } from "../Views.js"
import { EventStream, EventsHeaders, EventsUrlParams, RuntimePath, WorkerPath } from "./common.js"

export const ListUrlParams = Schema.Struct({
  status: Schema.optional(Schema.String),
  limit: Schema.optional(Schema.String),
  page_token: Schema.optional(Schema.String)
})

export const TranscriptUrlParams = Schema.Struct({
  limit: Schema.optional(Schema.String),
  page_token: Schema.optional(Schema.String)
})

/**
 * The worker routes of one runtime, addressed by `runtime_id` + `worker_id`. Create and input bodies are read by
 * the handlers (not the router) so that malformed JSON and schema failures answer a readable `InvalidInput`.
 */
const group = HttpApiGroup.make("workers")
  .add(HttpApiEndpoint.get("list", "/api/runtimes/:runtime_id/workers").setPath(RuntimePath)
    .setUrlParams(ListUrlParams).addSuccess(WorkerPage))
  .add(HttpApiEndpoint.post("create", "/api/runtimes/:runtime_id/workers").setPath(RuntimePath)
    .setPayload(Domain.CreateWorker).addSuccess(CreateResult, { status: 201 })
    // 200: an idempotent repeat of an earlier create with the same worker_id and spec.
    .addSuccess(CreateResult, { status: 200 }))
  .add(HttpApiEndpoint.get("get", "/api/runtimes/:runtime_id/workers/:worker_id").setPath(WorkerPath)
    .addSuccess(WorkerView))
  .add(HttpApiEndpoint.post("input", "/api/runtimes/:runtime_id/workers/:worker_id/input").setPath(WorkerPath)
    .setPayload(Domain.SendInput).addSuccess(InputAccepted, { status: 202 }))
  .add(HttpApiEndpoint.post("cancel", "/api/runtimes/:runtime_id/workers/:worker_id/cancel").setPath(WorkerPath)
    .addSuccess(CancelResult))
  .add(HttpApiEndpoint.post("stop", "/api/runtimes/:runtime_id/workers/:worker_id/stop").setPath(WorkerPath)
    .addSuccess(WorkerView))
  .add(HttpApiEndpoint.post("restore", "/api/runtimes/:runtime_id/workers/:worker_id/restore").setPath(WorkerPath)
    .addSuccess(WorkerView))
  .add(HttpApiEndpoint.del("delete", "/api/runtimes/:runtime_id/workers/:worker_id").setPath(WorkerPath)
    .addSuccess(DeleteResult))
  .add(HttpApiEndpoint.get("transcript", "/api/runtimes/:runtime_id/workers/:worker_id/transcript")
    .setPath(WorkerPath).setUrlParams(TranscriptUrlParams).addSuccess(TranscriptPage))
  .add(HttpApiEndpoint.get("events", "/api/runtimes/:runtime_id/workers/:worker_id/events").setPath(WorkerPath)
    .setUrlParams(EventsUrlParams).setHeaders(EventsHeaders).addSuccess(EventStream))
  .addError(PayloadTooLarge)
  .addError(InvalidInput)
  .addError(RuntimeNotFound)
  .addError(WorkerNotFound)
  .addError(Forbidden)
  .addError(CursorInvalid)
  .addError(CursorExpired)
  .addError(WorkerBusy)
  .addError(WorkerStopped)
  .addError(WorkerAlreadyExists)
  .addError(WorkerStateConflict)
  .addError(ScopeConflict)
  .addError(UnsupportedOperation)
  .addError(RuntimeUnavailable)
  .addError(UpstreamTimeout)

export class WorkersGroup extends group.middleware(Authentication) {}
