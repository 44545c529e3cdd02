import {
  Cause,
  Effect,
  Exit,
  Metric,
  MetricBoundaries,
  MetricKey,
  type MetricKeyType,
  MetricLabel,
  MetricState
} from "effect"
import type { MetricPair } from "effect/MetricPair"
import type { EventLogService } from "./EventLog.js"
import type { WorkerStoreService } from "./WorkerStore.js"

// The process's metrics, kept in Effect's global metric registry: every runtime of a process (a Backend's embedded
// one included) adds to the same series, and `prometheus` renders them all. Hot paths update them with
// `unsafeUpdate` on metrics tagged once up front, which is a field update and no allocation.

/** Latency boundaries in seconds, from 0.25 ms to about 16 s. */
const latencyBoundaries = MetricBoundaries.exponential({ start: 0.00025, factor: 2, count: 17 })
/** Turn boundaries in seconds, from 10 ms to about 11 min. */
const turnBoundaries = MetricBoundaries.exponential({ start: 0.01, factor: 2, count: 17 })

export const workers = MetricKey.gauge("yoi_workers", {
  description: "Workers by runtime and status, read when scraped."
})
export const turnsStarted = MetricKey.counter("yoi_turns_started_total", {
  description: "Engine turns started, by provider.",
  incremental: true
})
export const turnsEnded = MetricKey.counter("yoi_turns_ended_total", {
  description: "Engine turns ended, by provider and outcome (completed, failed, cancelled).",
  incremental: true
})
export const turnDuration = MetricKey.histogram(
  "yoi_turn_duration_seconds",
  turnBoundaries,
  "Wall time of an engine turn, from its start to its end whatever the outcome, by provider."
)
export const engineErrors = MetricKey.counter("yoi_engine_errors_total", {
  description: "Turns that ended in failure, by provider and code (the engine error's code, runtime or defect).",
  incremental: true
})
export const engineRetries = MetricKey.counter("yoi_engine_retries_total", {
  description: "Retried model calls, by provider.",
  incremental: true
})
export const tokens = MetricKey.counter("yoi_tokens_total", {
  description: "Tokens used by turns, by provider and kind (input, output, cached).",
  incremental: true
})
export const eventsAppended = MetricKey.counter("yoi_events_appended_total", {
  description: "Events appended to the event log (deltas included).",
  incremental: true
})
export const storeCommit = MetricKey.histogram(
  "yoi_store_commit_seconds",
  latencyBoundaries,
  "Time to commit one batch (worker records, transcript entries, events) to the worker store, by store kind."
)
export const sseOpen = MetricKey.gauge("yoi_sse_streams_open", {
  description: "Event streams (SSE) open now, by server."
})
export const sseOpened = MetricKey.counter("yoi_sse_streams_opened_total", {
  description: "Event streams (SSE) opened, by server.",
  incremental: true
})
export const sseLagged = MetricKey.counter("yoi_sse_streams_lagged_total", {
  description: "Event streams ended with stream.lagged because their reader fell a whole subscriber buffer behind.",
  incremental: true
})
export const sseStalled = MetricKey.counter("yoi_sse_stalls_total", {
  description: "Times an event stream had to wait for a slow reader (its socket buffer was full), by server.",
  incremental: true
})
export const sseDropped = MetricKey.counter("yoi_sse_streams_dropped_total", {
  description: "Event streams dropped by the write-stall guard: their reader stopped reading for the stall timeout.",
  incremental: true
})
export const httpRequests = MetricKey.counter("yoi_http_requests_total", {
  description: "HTTP requests answered, by server, method, route template and status.",
  incremental: true
})
export const remoteStatus = MetricKey.gauge("yoi_backend_runtime_status", {
  description: "Backend: 1 for each runtime's current health (online, degraded, offline), 0 for the others."
})
export const proxyLatency = MetricKey.histogram(
  "yoi_backend_proxy_seconds",
  latencyBoundaries,
  "Backend: time of one call to a remote runtime, by runtime and outcome (ok, error)."
)

/**
 * A metric per combination of label values, built on first use and kept. `Metric.tagged` would union the tags and
 * look the series up in the registry on every update; a metric made from an already tagged key does that once.
 */
export const family = <Type extends MetricKeyType.MetricKeyType<any, any>>(
  key: MetricKey.MetricKey<Type>,
  ...labels: ReadonlyArray<string>
) => {
  const cache = new Map<string, Metric.Metric<Type, MetricKeyType.MetricKeyType.InType<Type>, unknown>>()
  return (...values: ReadonlyArray<string>): Metric.Metric<Type, MetricKeyType.MetricKeyType.InType<Type>, unknown> => {
    const id = values.join("\u0000")
    let found = cache.get(id)
    if (found === undefined) {
      found = Metric.fromMetricKey(
        MetricKey.taggedWithLabels(key, labels.map((name, i) => MetricLabel.make(name, values[i] ?? "")))
      )
      cache.set(id, found)
    }
    return found
  }
}

const started = family(turnsStarted, "provider")
const ended = family(turnsEnded, "provider", "outcome")
const durations = family(turnDuration, "provider")
const errors = family(engineErrors, "provider", "code")
const retries = family(engineRetries, "provider")
const tokensBy = family(tokens, "provider", "kind")
const commits = family(storeCommit, "store")

/** Counts a retried model call of `provider`. */
export const recordRetry = (provider: string): void => retries(provider).unsafeUpdate(1, [])

/**
 * Instruments one engine turn (the effect that runs its stream): counts it as started, then records its outcome,
 * duration, tokens (read from `usage` when it ends) and, when it fails with an engine error, the error's code.
 */
export const trackTurn = (
  provider: string,
  usage: { readonly input_tokens: number; readonly output_tokens: number; readonly cached_tokens: number }
) =>
  <A, E, R>(turn: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => {
      const start = performance.now()
      started(provider).unsafeUpdate(1, [])
      return Effect.onExit(turn, (exit) =>
        Effect.sync(() => {
          let outcome = "completed"
          if (Exit.isFailure(exit)) {
            if (Cause.isInterruptedOnly(exit.cause)) {
              outcome = "cancelled"
            } else {
              outcome = "failed"
              const failure = Cause.failureOption(exit.cause)
              const error = failure._tag === "Some" ? failure.value : undefined
              const code = typeof error === "object" && error !== null && "_tag" in error && error._tag === "EngineError"
                ? String((error as { readonly code?: unknown }).code ?? "unknown")
                : failure._tag === "Some" ? "runtime" : "defect"
              errors(provider, code).unsafeUpdate(1, [])
            }
          }
          ended(provider, outcome).unsafeUpdate(1, [])
          durations(provider).unsafeUpdate((performance.now() - start) / 1000, [])
          if (usage.input_tokens > 0) tokensBy(provider, "input").unsafeUpdate(usage.input_tokens, [])
          if (usage.output_tokens > 0) tokensBy(provider, "output").unsafeUpdate(usage.output_tokens, [])
          if (usage.cached_tokens > 0) tokensBy(provider, "cached").unsafeUpdate(usage.cached_tokens, [])
        }))
    })

/** The store with each commit timed into `yoi_store_commit_seconds`. */
export const instrumentStore = (store: WorkerStoreService): WorkerStoreService => {
  const timing = commits(store.kind)
  return {
    ...store,
    commit: (batch) =>
      Effect.suspend(() => {
        const start = performance.now()
        return Effect.map(store.commit(batch), (result) => {
          timing.unsafeUpdate((performance.now() - start) / 1000, [])
          return result
        })
      })
  }
}

const appended = Metric.fromMetricKey(eventsAppended)

/** The event log with every appended event counted into `yoi_events_appended_total`. */
export const instrumentEventLog = (log: EventLogService): EventLogService => ({
  ...log,
  append: (drafts, persist) =>
    Effect.map(log.append(drafts, persist), (events) => {
      appended.unsafeUpdate(events.length, [])
      return events
    })
})

// --- Prometheus text format --------------------------------------------------------------------------------------

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const escapeHelp = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const formatNumber = (n: number | bigint): string =>
  typeof n === "bigint" ? n.toString()
    : Number.isNaN(n) ? "NaN"
      : n === Infinity ? "+Inf"
        : n === -Infinity ? "-Inf"
          : String(n)

const formatLabels = (labels: ReadonlyArray<readonly [string, string]>): string =>
  labels.length === 0 ? "" : `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`

interface Family {
  readonly type: "counter" | "gauge" | "histogram" | "summary"
  readonly help: string | undefined
  readonly lines: Array<string>
}

/**
 * Renders metric pairs in the Prometheus text exposition format (version 0.0.4): counters, gauges and histograms
 * as Prometheus has them; frequencies as one counter per occurrence; summaries with their quantiles.
 */
export const renderPrometheus = (pairs: ReadonlyArray<MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  const add = (name: string, type: Family["type"], key: MetricKey.MetricKey.Untyped, lines: Array<string>) => {
    const found = families.get(name)
    if (found === undefined) {
      families.set(name, { type, help: key.description._tag === "Some" ? key.description.value : undefined, lines })
    } else {
      found.lines.push(...lines)
    }
  }
  for (const pair of pairs) {
    const key = pair.metricKey
    const name = key.name
    const tags = key.tags.map((t) => [t.key, t.value] as const)
    const state = pair.metricState
    if (MetricState.isCounterState(state)) {
      add(name, "counter", key, [`${name}${formatLabels(tags)} ${formatNumber(state.count)}`])
    } else if (MetricState.isGaugeState(state)) {
      add(name, "gauge", key, [`${name}${formatLabels(tags)} ${formatNumber(state.value)}`])
    } else if (MetricState.isHistogramState(state)) {
      const lines: Array<string> = []
      let sawInf = false
      for (const [bound, count] of state.buckets) {
        if (bound === Infinity) sawInf = true
        lines.push(`${name}_bucket${formatLabels([...tags, ["le", formatNumber(bound)]])} ${count}`)
      }
      if (!sawInf) lines.push(`${name}_bucket${formatLabels([...tags, ["le", "+Inf"]])} ${state.count}`)
      lines.push(`${name}_sum${formatLabels(tags)} ${formatNumber(state.sum)}`)
      lines.push(`${name}_count${formatLabels(tags)} ${state.count}`)
      add(name, "histogram", key, lines)
    } else if (MetricState.isFrequencyState(state)) {
      const lines: Array<string> = []
      for (const [value, count] of state.occurrences) {
        lines.push(`${name}${formatLabels([...tags, ["value", value]])} ${count}`)
      }
      add(name, "counter", key, lines)
    } else if (MetricState.isSummaryState(state)) {
      const lines: Array<string> = []
      for (const [quantile, value] of state.quantiles) {
        if (value._tag === "Some") {
          lines.push(`${name}${formatLabels([...tags, ["quantile", String(quantile)]])} ${formatNumber(value.value)}`)
        }
      }
      lines.push(`${name}_sum${formatLabels(tags)} ${formatNumber(state.sum)}`)
      lines.push(`${name}_count${formatLabels(tags)} ${state.count}`)
      add(name, "summary", key, lines)
    }
  }
  let out = ""
  for (const name of Array.from(families.keys()).sort()) {
    const family = families.get(name)!
    if (family.help !== undefined) out += `# HELP ${name} ${escapeHelp(family.help)}\n`
    out += `# TYPE ${name} ${family.type}\n`
    for (const line of family.lines) out += line + "\n"
  }
  return out
}

/** Every metric of the process, in the Prometheus text format. */
export const prometheus: Effect.Effect<string> = Effect.map(Metric.snapshot, renderPrometheus)

/** The content type of `prometheus`'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
