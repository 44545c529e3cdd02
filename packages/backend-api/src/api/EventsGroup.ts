import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Authentication } from "../Authentication.js"
import {
  CursorExpired,
  CursorInvalid,
  InvalidInput,
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
import { EventStream, EventsHeaders, EventsUrlParams } from "./common.js"

/** Every visible runtime's events in one SSE stream; `id:` is a composite cursor that resumes every runtime. */
export class EventsGroup extends HttpApiGroup.make("events")
  .add(HttpApiEndpoint.get("all", "/api/events").setUrlParams(EventsUrlParams).setHeaders(EventsHeaders)
    .addSuccess(EventStream))
  .addError(InvalidInput)
  .addError(CursorInvalid)
  .addError(CursorExpired)
  .addError(RuntimeUnavailable)
  .addError(UpstreamTimeout)
  // A runtime may answer any typed error; these are listed so that none is turned into a 500.
  .addError(WorkerNotFound)
  .addError(WorkerBusy)
  .addError(WorkerStopped)
  .addError(WorkerAlreadyExists)
  .addError(WorkerStateConflict)
  .addError(ScopeConflict)
  .addError(UnsupportedOperation)
  .middleware(Authentication) {}
