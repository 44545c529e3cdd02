import { HttpApi, OpenApi } from "@effect/platform"
import { InvalidInput, RuntimeUnavailable } from "@yoi/worker-runtime"
import { Authorization } from "./Authorization.js"
import { InternalError, PayloadTooLarge, RouteNotFound, Unauthorized } from "./Errors.js"
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
  .addError(PayloadTooLarge, { status: 413 })
  .addError(InternalError, { status: 500 })
  .addError(RuntimeUnavailable, { status: 503 })
  .annotate(OpenApi.Title, "yoi-runtime")
  .annotate(OpenApi.Description, "The Runtime REST API. For the Backend and services only: browsers go through the Backend.") {}
