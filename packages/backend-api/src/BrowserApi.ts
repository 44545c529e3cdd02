import { HttpApi } from "@effect/platform"
import * as ApiDocs from "@yoi/runtime-api/ApiDocs"
import { RequestHeadersTooLarge, RequestTimeout } from "@yoi/runtime-api/Errors"
import { Domain } from "@yoi/worker-runtime/schema"
import { AccountGroup, SignInGroup } from "./api/AccountGroup.js"
import { AuditGroup } from "./api/AuditGroup.js"
import { EventsGroup } from "./api/EventsGroup.js"
import { ListingsGroup } from "./api/ListingsGroup.js"
import { MetricsGroup } from "./api/MetricsGroup.js"
import { RuntimesGroup } from "./api/RuntimesGroup.js"
import { SessionGroup } from "./api/SessionGroup.js"
import { WorkersGroup } from "./api/WorkersGroup.js"
import { InternalError, InvalidInput, PayloadTooLarge, RouteNotFound, Unauthorized } from "./Errors.js"

/** The Backend's browser-facing API. Every `/api` route needs the Backend token (bearer) or a session cookie. */
export class BrowserApi extends HttpApi.make("yoi-backend")
  .add(RuntimesGroup)
  .add(WorkersGroup)
  .add(EventsGroup)
  .add(ListingsGroup)
  .add(AuditGroup)
  .add(SessionGroup)
  .add(SignInGroup)
  .add(AccountGroup)
  .add(MetricsGroup)
  .addError(InvalidInput)
  .addError(Unauthorized)
  .addError(RouteNotFound)
  .addError(PayloadTooLarge)
  .addError(InternalError)
  // Answered by the HTTP parser before any route runs (the Backend shares the runtime's `onClientError`).
  .addError(RequestTimeout, { status: 408 })
  .addError(RequestHeadersTooLarge, { status: 431 })
  .annotateContext(ApiDocs.annotations({
    title: "yoi-backend",
    version: Domain.VERSION,
    description: "The Backend's browser-facing API: the registered runtimes, their workers and events, the audit " +
      "trail. `/api` routes need the Backend token (bearer) or the session cookie set by `/login`. Every error body " +
      "is `{_tag, message, ...}`; see docs/backend.md.",
    eventStream: ApiDocs.eventStreamDescription,
    unauthenticated: ["/healthz"]
  })) {}
