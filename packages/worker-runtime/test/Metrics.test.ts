import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { Metrics } from "../src/index.js"

/** `name{labels} value` lines of a Prometheus text body, by series (name plus its labels as written). */
const parse = (text: string) => {
  const series = new Map<string, number>()
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue
    const space = line.lastIndexOf(" ")
    series.set(line.slice(0, space), Number(line.slice(space + 1).replace("+Inf", "Infinity")))
  }
  return series
}

describe("Prometheus text", () => {
  it.effect("counters, gauges and histograms render with HELP, TYPE, escaped labels and cumulative buckets", () =>
    Effect.gen(function*() {
      const counter = Metrics.family(Metrics.httpRequests, "server", "method", "route", "status")
      counter("unit", "GET", "/a \"quoted\"\\path", "200").unsafeUpdate(2, [])
      const gauge = Metrics.family(Metrics.workers, "runtime_id", "status")
      gauge("rt-unit", "idle").unsafeUpdate(3, [])
      const histogram = Metrics.family(Metrics.storeCommit, "store")("unit")
      histogram.unsafeUpdate(0.0001, [])
      histogram.unsafeUpdate(0.003, [])
      histogram.unsafeUpdate(100, [])
      const text = yield* Metrics.prometheus
      const series = parse(text)
      assert.include(text, "# TYPE yoi_http_requests_total counter\n")
      assert.include(text, "# HELP yoi_workers Workers by runtime and status")
      assert.include(text, "# TYPE yoi_store_commit_seconds histogram\n")
      assert.strictEqual(
        series.get("yoi_http_requests_total{server=\"unit\",method=\"GET\",route=\"/a \\\"quoted\\\"\\\\path\",status=\"200\"}"),
        2
      )
      assert.strictEqual(series.get("yoi_workers{runtime_id=\"rt-unit\",status=\"idle\"}"), 3)
      assert.strictEqual(series.get("yoi_store_commit_seconds_bucket{store=\"unit\",le=\"0.00025\"}"), 1)
      assert.strictEqual(series.get("yoi_store_commit_seconds_bucket{store=\"unit\",le=\"0.004\"}"), 2)
      assert.strictEqual(series.get("yoi_store_commit_seconds_bucket{store=\"unit\",le=\"+Inf\"}"), 3)
      assert.strictEqual(series.get("yoi_store_commit_seconds_count{store=\"unit\"}"), 3)
      assert.closeTo(series.get("yoi_store_commit_seconds_sum{store=\"unit\"}")!, 100.0031, 1e-9)
      // One TYPE line per metric name, however many series it has.
      assert.strictEqual(text.split("# TYPE yoi_workers gauge").length, 2)
    }))

  it.effect("a metric family reuses one tagged metric per label set", () =>
    Effect.sync(() => {
      const gauge = Metrics.family(Metrics.sseOpen, "server")
      assert.strictEqual(gauge("unit-a"), gauge("unit-a"))
      gauge("unit-a").unsafeModify(1, [])
      gauge("unit-a").unsafeModify(1, [])
      gauge("unit-a").unsafeModify(-1, [])
      assert.strictEqual(Metric.fromMetricKey(Metrics.sseOpen).unsafeValue([]).value, 0)
      assert.strictEqual((gauge("unit-a").unsafeValue([]) as { readonly value: number }).value, 1)
    }))
})
