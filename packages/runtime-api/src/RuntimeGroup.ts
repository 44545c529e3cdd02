import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Domain, InvalidInput, RuntimeUnavailable } from "@yoi/worker-runtime"
import { Schema } from "effect"

export const LimitParams = Schema.Struct({ limit: Schema.optional(Schema.NumberFromString) })

export const DiagnosticList = Schema.Struct({ items: Schema.Array(Domain.Diagnostic) })
export type DiagnosticList = typeof DiagnosticList.Type

/** The runtime as a whole: summary, usage and recovery diagnostics. */
export class RuntimeGroup extends HttpApiGroup.make("runtime")
  .add(HttpApiEndpoint.get("summary", "/v1/runtime").addSuccess(Domain.RuntimeSummary))
  .add(
    HttpApiEndpoint.get("usage", "/v1/runtime/usage")
      .setUrlParams(LimitParams)
      .addSuccess(Domain.UsageOverview)
      .addError(InvalidInput, { status: 400 })
  )
  .add(
    HttpApiEndpoint.get("diagnostics", "/v1/runtime/diagnostics")
      .setUrlParams(LimitParams)
      .addSuccess(DiagnosticList)
      .addError(InvalidInput, { status: 400 })
      .addError(RuntimeUnavailable, { status: 503 })
  ) {}
