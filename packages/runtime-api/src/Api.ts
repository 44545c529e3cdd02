import { HttpApi } from "@effect/platform"
import { InvalidInput, Runtime, RuntimeUnavailable } from "@yoi/worker-runtime"
import * as ApiDocs from "./ApiDocs.js"
import { Authorization } from "./Authorization.js"
import {
  InternalError,
  PayloadTooLarge,
  RequestHeadersTooLarge,
  RequestTimeout,
  RouteNotFound,
  Unauthorized
} from "./Errors.js"
import { EventsGroup } from "./EventsGroup.js"
import { HealthGroup } from "./HealthGroup.js"
import { MetricsGroup } from "./MetricsGroup.js"
import { RuntimeGroup } from "./RuntimeGroup.js"
import { WorkersGroup } from "./WorkersGroup.js"

const Authenticated = HttpApi.make("runtime-api")
  .add(RuntimeGroup)
  .add(WorkersGroup)
  .add(EventsGroup)
  .add(MetricsGroup)
  .middleware(Authorization)

/**
 * The yoi-runtime REST contract. Servers implement it with `HttpApiBuilder.group`, clients derive from it with
 * `HttpApiClient.make`. It is for the Backend and other services: browsers go through the Backend and must never be
 * pointed at a runtime directly.
 */
export class RuntimeApi extends HttpApi.make("runtime-api")
  .add(HealthGroup)
  .addHttpApi(Authenticated)
  .addError(InvalidInput, { status: 400 })
  .addError(Unauthorized, { status: 401 })
  .addError(RouteNotFound, { status: 404 })
  .addError(RequestTimeout, { status: 408 })
  .addError(PayloadTooLarge, { status: 413 })
  .addError(RequestHeadersTooLarge, { status: 431 })
  .addError(InternalError, { status: 500 })
  .addError(RuntimeUnavailable, { status: 503 })
  .annotateContext(ApiDocs.annotations({
    title: "yoi-runtime",
    version: Runtime.VERSION,
    description: "The Runtime REST API: workers, their transcripts and the event stream. For the Backend and " +
      "services only: browsers go through the Backend. Every error body is `{_tag, message, ...}`; see docs/errors.md.",
    eventStream: ApiDocs.eventStreamDescription,
    unauthenticated: ["/healthz", "/readyz"]
  })) {}
