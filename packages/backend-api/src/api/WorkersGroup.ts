import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Domain } from "@yoi/worker-runtime/schema"
import { Schema } from "effect"
import { Authentication } from "../Authentication.js"
import {
  CursorExpired,
  CursorInvalid,
  Forbidden,
  InvalidInput,
  PayloadTooLarge,
  QueuedInputNotFound,
  QueueFull,
  RuntimeNotFound,
  RuntimeUnavailable,
  ScopeConflict,
  ScopeNotPermitted,
  TurnNotFound,
  TurnWaitTimeout,
  UnsupportedOperation,
  UpstreamTimeout,
  WorkerAlreadyExists,
  WorkerBusy,
  WorkerNotFound,
  WorkerStateConflict,
  WorkerStopped
} from "../Errors.js"
import { CancelResult, CreateResult, DeleteResult, InputAccepted, InputQueued, QueueCancelled, TranscriptPage, WorkerQueue, WorkerPage, WorkerView } from "../Views.js"
import { EventStream, EventsHeaders, EventsUrlParams, RuntimePath, WorkerPath } from "./common.js"

/**
 * A page size, read by the handler (which answers `InvalidInput` for anything but digits) and bounded by the runtime.
 * Its JSON Schema is an integer with bounds, so a generated client passes a number.
 */
export const Limit = (max: number) =>
  Schema.String.annotations({
    description: `page size, 1 to ${max}`,
    jsonSchema: { type: "integer", minimum: 1, maximum: max }
  })

export const ListUrlParams = Schema.Struct({
  status: Schema.optional(Schema.String.annotations({ jsonSchema: { type: "string", enum: ["idle", "running", "stopped"] } })),
  limit: Schema.optional(Limit(500)),
  page_token: Schema.optional(Schema.String)
})

export const QueuedInputPath = Schema.Struct({
  runtime_id: Schema.String,
  worker_id: Schema.String,
  input_id: Schema.String
})

export const CancelUrlParams = Schema.Struct({
  wait_ms: Schema.optional(Schema.String.annotations({ jsonSchema: { type: "integer", minimum: 0, maximum: 60_000 } }))
})

export const TranscriptUrlParams = Schema.Struct({
  limit: Schema.optional(Limit(500)),
  page_token: Schema.optional(Schema.String)
})

/**
 * The worker routes of one runtime, addressed by `runtime_id` + `worker_id`. Create and input bodies are read by
 * the handlers (not the router) so that malformed JSON and schema failures answer a readable `InvalidInput`.
 */
const group = HttpApiGroup.make("workers")
  .add(HttpApiEndpoint.get("list", "/api/runtimes/:runtime_id/workers").setPath(RuntimePath)
    .setUrlParams(ListUrlParams).addSuccess(WorkerPage)
    .annotate(OpenApi.Summary, "List a runtime's workers"))
  .add(HttpApiEndpoint.post("create", "/api/runtimes/:runtime_id/workers").setPath(RuntimePath)
    .setPayload(Domain.CreateWorker).addSuccess(CreateResult, { status: 201 })
    // 200: an idempotent repeat of an earlier create with the same worker_id and spec.
    .addSuccess(CreateResult, { status: 200 })
    .annotate(OpenApi.Summary, "Create a worker on a runtime")
    .annotate(OpenApi.Description, "Audited. The runtime's policy may refuse it (403)."))
  .add(HttpApiEndpoint.get("get", "/api/runtimes/:runtime_id/workers/:worker_id").setPath(WorkerPath)
    .addSuccess(WorkerView)
    .annotate(OpenApi.Summary, "Get a worker"))
  .add(HttpApiEndpoint.post("input", "/api/runtimes/:runtime_id/workers/:worker_id/input").setPath(WorkerPath)
    .setPayload(Domain.SendInput).addSuccess(InputAccepted, { status: 202 })
    .addSuccess(InputQueued, { status: 202 })
    .annotate(OpenApi.Summary, "Send input to a worker")
    .annotate(OpenApi.Description, "Audited; starts a turn, or with `busy` interrupts the running one or queues the input."))
  .add(HttpApiEndpoint.post("cancel", "/api/runtimes/:runtime_id/workers/:worker_id/cancel").setPath(WorkerPath)
    .setPayload(Schema.NullOr(Domain.CancelRequest)).setUrlParams(CancelUrlParams).addSuccess(CancelResult)
    .annotate(OpenApi.Summary, "Cancel a worker's running turn")
    .annotate(OpenApi.Description, "Audited. `{\"turn_id\"}` cancels that turn only; `wait_ms` waits for its end."))
  .add(HttpApiEndpoint.get("queue", "/api/runtimes/:runtime_id/workers/:worker_id/queue").setPath(WorkerPath)
    .addSuccess(WorkerQueue)
    .annotate(OpenApi.Summary, "List a worker's queued inputs"))
  .add(HttpApiEndpoint.del("clearQueue", "/api/runtimes/:runtime_id/workers/:worker_id/queue").setPath(WorkerPath)
    .addSuccess(QueueCancelled)
    .annotate(OpenApi.Summary, "Cancel every queued input of a worker")
    .annotate(OpenApi.Description, "Audited as `cancel`."))
  .add(HttpApiEndpoint.del("cancelQueued", "/api/runtimes/:runtime_id/workers/:worker_id/queue/:input_id")
    .setPath(QueuedInputPath).addSuccess(QueueCancelled)
    .annotate(OpenApi.Summary, "Cancel one queued input")
    .annotate(OpenApi.Description, "Audited as `cancel`."))
  .add(HttpApiEndpoint.post("stop", "/api/runtimes/:runtime_id/workers/:worker_id/stop").setPath(WorkerPath)
    .addSuccess(WorkerView)
    .annotate(OpenApi.Summary, "Stop a worker"))
  .add(HttpApiEndpoint.post("restore", "/api/runtimes/:runtime_id/workers/:worker_id/restore").setPath(WorkerPath)
    .addSuccess(WorkerView)
    .annotate(OpenApi.Summary, "Restore a stopped worker"))
  .add(HttpApiEndpoint.del("delete", "/api/runtimes/:runtime_id/workers/:worker_id").setPath(WorkerPath)
    .addSuccess(DeleteResult)
    .annotate(OpenApi.Summary, "Delete a stopped worker"))
  .add(HttpApiEndpoint.get("transcript", "/api/runtimes/:runtime_id/workers/:worker_id/transcript")
    .setPath(WorkerPath).setUrlParams(TranscriptUrlParams).addSuccess(TranscriptPage)
    .annotate(OpenApi.Summary, "Page through a worker's transcript"))
  .add(HttpApiEndpoint.get("events", "/api/runtimes/:runtime_id/workers/:worker_id/events").setPath(WorkerPath)
    .setUrlParams(EventsUrlParams).setHeaders(EventsHeaders).addSuccess(EventStream)
    .annotate(OpenApi.Summary, "Stream one worker's events")
    .annotate(OpenApi.Description, "Server-sent events with the runtime's own cursors."))
  .addError(PayloadTooLarge)
  .addError(InvalidInput)
  .addError(RuntimeNotFound)
  .addError(WorkerNotFound)
  .addError(Forbidden)
  .addError(CursorInvalid)
  .addError(CursorExpired)
  .addError(WorkerBusy)
  .addError(QueueFull)
  .addError(QueuedInputNotFound)
  .addError(TurnNotFound)
  .addError(TurnWaitTimeout)
  .addError(WorkerStopped)
  .addError(WorkerAlreadyExists)
  .addError(WorkerStateConflict)
  .addError(ScopeConflict)
  .addError(ScopeNotPermitted)
  .addError(UnsupportedOperation)
  .addError(RuntimeUnavailable)
  .addError(UpstreamTimeout)

export class WorkersGroup extends group.middleware(Authentication).annotate(
  OpenApi.Description,
  "The workers of one runtime, addressed by `runtime_id` and `worker_id`; commands are audited."
) {}
