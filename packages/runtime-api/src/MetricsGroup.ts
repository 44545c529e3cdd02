import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"

/** The Prometheus text exposition format, version 0.0.4. */
export const PrometheusText = HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" })

/** The process's metrics for Prometheus; behind the runtime's token like every other route but the probes. */
export class MetricsGroup extends HttpApiGroup.make("metrics")
  .add(
    HttpApiEndpoint.get("scrape", "/metrics")
      .addSuccess(PrometheusText)
      .annotate(OpenApi.Summary, "Metrics in the Prometheus text format")
      .annotate(
        OpenApi.Description,
        "Workers by status, turns, engine errors and retries, tokens, event streams, events appended, store commit " +
          "latency and HTTP requests; docs/operations.md lists every metric."
      )
  )
  .annotate(OpenApi.Description, "The process's metrics for Prometheus, behind the runtime's token.") {}
