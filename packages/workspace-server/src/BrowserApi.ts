import { HttpApi } from "@effect/platform"
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
  .add(MetricsGroup)
  .addError(InvalidInput)
  .addError(Unauthorized)
  .addError(RouteNotFound)
  .addError(PayloadTooLarge)
  .addError(InternalError) {}
