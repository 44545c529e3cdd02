import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { RuntimeUnavailable } from "@yoi/worker-runtime"
import { Schema } from "effect"

export const Health = Schema.Struct({ status: Schema.Literal("ok") })
export const Readiness = Schema.Struct({ status: Schema.Literal("ready"), runtime_id: Schema.String })

/** Liveness and readiness probes. They answer without a token and reveal nothing but the runtime id. */
export class HealthGroup extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("healthz", "/healthz")
      .addSuccess(Health)
      .annotate(OpenApi.Summary, "Liveness probe")
  )
  .add(
    HttpApiEndpoint.get("readyz", "/readyz")
      .addSuccess(Readiness)
      .addError(RuntimeUnavailable, { status: 503 })
      .annotate(OpenApi.Summary, "Readiness probe")
      .annotate(OpenApi.Description, "503 `RuntimeUnavailable` while the runtime drains for shutdown.")
  )
  .annotate(OpenApi.Description, "Liveness and readiness probes; no token needed.") {}
