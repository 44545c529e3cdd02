import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import { NodeHttpClient } from "@effect/platform-node"
import { type Duration, Either, Layer } from "effect"

export interface TracingOptions {
  /** The collector's base URL, as in `OTEL_EXPORTER_OTLP_ENDPOINT`: spans go to `<endpoint>/v1/traces`. */
  readonly endpoint: string
  readonly serviceName: string
  /** How often batched spans are sent. Default 5 s; the rest are flushed when the process stops. */
  readonly exportInterval?: Duration.DurationInput | undefined
}

/** An OTLP/HTTP endpoint given by flag or env: an http(s) URL. */
export const parseEndpoint = (text: string): Either.Either<string, string> =>
  /^https?:\/\/[^\s/]+(\/\S*)?$/.test(text) && URL.canParse(text)
    ? Either.right(text)
    : Either.left(`expected an http(s) URL such as http://127.0.0.1:4318, got ${JSON.stringify(text)}`)

/** Where OTLP/HTTP traces go for a base endpoint; a URL already ending in `/v1/traces` is kept. */
export const tracesUrl = (endpoint: string): string => {
  const base = endpoint.replace(/\/+$/, "")
  return base.endsWith("/v1/traces") ? base : `${base}/v1/traces`
}

/**
 * Exports the process's spans (a turn's `Runtime.turn` and `LlmEngine.turn`, the runtime's commands, HTTP requests)
 * over OTLP/HTTP with JSON bodies, batched. Opt-in: without an endpoint nothing is traced, which keeps the hot
 * paths free of span bookkeeping. Its own requests to the collector are not traced.
 */
export const layer = (options: TracingOptions): Layer.Layer<never> =>
  Layer.merge(
    OtlpTracer.layer({
      url: tracesUrl(options.endpoint),
      resource: { serviceName: options.serviceName },
      exportInterval: options.exportInterval
    }),
    Layer.setTracerEnabled(true)
  ).pipe(Layer.provide([OtlpSerialization.layerJson, NodeHttpClient.layerUndici]))
