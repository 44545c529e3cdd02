import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Domain, InvalidInput, Runtime, RuntimeUnavailable } from "@yoi/worker-runtime"
import { Schema } from "effect"
import { Limit } from "./WorkersGroup.js"

export const UsageParams = Schema.Struct({ limit: Schema.optional(Limit(Runtime.WORKER_PAGE_MAX, 50)) })
export const DiagnosticsParams = Schema.Struct({ limit: Schema.optional(Limit(1000, 100)) })

export const DiagnosticList = Schema.Struct({ items: Schema.Array(Domain.Diagnostic) })
export type DiagnosticList = typeof DiagnosticList.Type

/** The runtime as a whole: summary, usage and recovery diagnostics. */
export class RuntimeGroup extends HttpApiGroup.make("runtime")
  .add(
    HttpApiEndpoint.get("summary", "/v1/runtime")
      .addSuccess(Domain.RuntimeSummary)
      .annotate(OpenApi.Summary, "Describe the runtime")
      .annotate(OpenApi.Description, "Identity, version, capabilities, limits, worker counts, usage and the head cursor.")
  )
  .add(
    HttpApiEndpoint.get("usage", "/v1/runtime/usage")
      .setUrlParams(UsageParams)
      .addSuccess(Domain.UsageOverview)
      .addError(InvalidInput, { status: 400 })
      .annotate(OpenApi.Summary, "Token usage, by worker")
  )
  .add(
    HttpApiEndpoint.get("diagnostics", "/v1/runtime/diagnostics")
      .setUrlParams(DiagnosticsParams)
      .addSuccess(DiagnosticList)
      .addError(InvalidInput, { status: 400 })
      .addError(RuntimeUnavailable, { status: 503 })
      .annotate(OpenApi.Summary, "Recovery and store diagnostics")
      .annotate(OpenApi.Description, "Newest first. Each is also published as a `runtime.diagnostic` event.")
  )
  .annotate(OpenApi.Description, "The runtime as a whole.") {}
