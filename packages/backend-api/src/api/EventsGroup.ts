import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Authentication } from "../Authentication.js"
import {
  CursorExpired,
  CursorInvalid,
  InvalidInput,
  RuntimeUnavailable,
  ScopeConflict,
  ScopeNotPermitted,
  UnsupportedOperation,
  UpstreamTimeout,
  WorkerAlreadyExists,
  WorkerBusy,
  QueueFull,
  QueuedInputNotFound,
  TurnNotFound,
  TurnWaitTimeout,
  WorkerNotFound,
  WorkerStateConflict,
  WorkerStopped
} from "../Errors.js"
import { EventStream, EventsHeaders, EventsUrlParams } from "./common.js"

/** Every visible runtime's events in one SSE stream; `id:` is a composite cursor that resumes every runtime. */
export class EventsGroup extends HttpApiGroup.make("events")
  .add(HttpApiEndpoint.get("all", "/api/events").setUrlParams(EventsUrlParams).setHeaders(EventsHeaders)
    .addSuccess(EventStream)
    .annotate(OpenApi.Summary, "Stream every visible runtime's events")
    .annotate(OpenApi.Description, "One stream; its `id:` is a composite cursor that resumes every runtime."))
  .addError(InvalidInput)
  .addError(CursorInvalid)
  .addError(CursorExpired)
  .addError(RuntimeUnavailable)
  .addError(UpstreamTimeout)
  // A runtime may answer any typed error; these are listed so that none is turned into a 500.
  .addError(WorkerNotFound)
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
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The observation stream of all runtimes (server-sent events).") {}
