import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { RuntimeUnavailable } from "@yoi/worker-runtime"
import { Schema } from "effect"

export const Health = Schema.Struct({ status: Schema.Literal("ok") })
export const Readiness = Schema.Struct({ status: Schema.Literal("ready"), runtime_id: Schema.String })

/** Liveness and readiness probes. They answer without a token and reveal nothing but the runtime id. */
export class HealthGroup extends HttpApiGroup.make("health")
  .add(HttpApiEndpoint.get("healthz", "/healthz").addSuccess(Health))
  .add(
    HttpApiEndpoint.get("readyz", "/readyz")
      .addSuccess(Readiness)
      .addError(RuntimeUnavailable, { status: 503 })
  ) {}
