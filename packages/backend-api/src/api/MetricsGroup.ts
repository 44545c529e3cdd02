import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Authentication } from "../Authentication.js"

/** The Prometheus text exposition format, version 0.0.4 (as the runtime's `/metrics`). */
export const PrometheusText = HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" })

/** The Backend's metrics (its embedded runtime's included) for Prometheus, behind the Backend token or cookie. */
export class MetricsGroup extends HttpApiGroup.make("metrics")
  .add(
    HttpApiEndpoint.get("scrape", "/metrics")
      .addSuccess(PrometheusText)
      .annotate(OpenApi.Summary, "Metrics in the Prometheus text format")
      .annotate(
        OpenApi.Description,
        "The embedded runtime's metrics, HTTP requests, event streams, and per-runtime health and proxy latency; " +
          "docs/operations.md lists every metric."
      )
  )
  .middleware(Authentication)
  .annotate(OpenApi.Description, "Metrics for Prometheus, behind the Backend token or the session cookie.") {}
