import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { MetricsGroup as RuntimeMetrics } from "@yoi/runtime-api"
import { Authentication } from "../Auth.js"

/** The Backend's metrics (its embedded runtime's included) for Prometheus, behind the Backend token or cookie. */
export class MetricsGroup extends HttpApiGroup.make("metrics")
  .add(
    HttpApiEndpoint.get("scrape", "/metrics")
      .addSuccess(RuntimeMetrics.PrometheusText)
      .annotate(OpenApi.Summary, "Metrics in the Prometheus text format")
      .annotate(
        OpenApi.Description,
        "The embedded runtime's metrics, HTTP requests, event streams, and per-runtime health and proxy latency; " +
          "docs/operations.md lists every metric."
      )
  )
  .middleware(Authentication) {}
