import type { AiError } from "@effect/ai"
import { Engine } from "@yoi/worker-runtime"
import { Either, Schema } from "effect"

/** A provider failure as the turn loop sees it: the error to record, and whether (and when) a retry may help. */
export interface Failure {
  readonly error: Engine.EngineError
  readonly retryable: boolean
  readonly retryAfterMs?: number | undefined
}

const MAX_DETAIL = 300

/** Removes the secret (if any) from text that came from a provider, and bounds its length. */
export const scrub = (text: string, secret: string | undefined): string => {
  const clean = secret !== undefined && secret.length >= 4 ? text.split(secret).join("[redacted]") : text
  const oneLine = clean.replace(/\s+/g, " ").trim()
  return oneLine.length > MAX_DETAIL ? `${oneLine.slice(0, MAX_DETAIL)}…` : oneLine
}

const decodeJson = Schema.decodeUnknownEither(Schema.parseJson())

/** A provider body that is not JSON is reported as text. */
const parseJson = (text: string): unknown => Either.getOrElse(decodeJson(text), () => text)

const asRecord = (u: unknown): Record<string, unknown> | undefined =>
  typeof u === "object" && u !== null && !Array.isArray(u) ? (u as Record<string, unknown>) : undefined

/** The human part of a provider error body: `error.message` (OpenAI, Anthropic, vLLM), `error` (Ollama), `message`. */
export const providerMessage = (body: unknown): string | undefined => {
  const value = typeof body === "string" ? parseJson(body) : body
  if (typeof value === "string") return value.length > 0 ? value : undefined
  const record = asRecord(value)
  if (record === undefined) return undefined
  const error = record.error
  if (typeof error === "string") return error
  const nested = asRecord(error)
  if (nested !== undefined && typeof nested.message === "string") return nested.message
  if (typeof record.message === "string") return record.message
  if (typeof record.detail === "string") return record.detail
  return undefined
}

/** OpenAI's `insufficient_quota` (billing, not load). */
const quotaExhausted = (body: unknown): boolean => {
  const record = asRecord(typeof body === "string" ? parseJson(body) : body)
  const error = asRecord(record?.error)
  return error?.code === "insufficient_quota" || error?.type === "insufficient_quota"
}

/** `retry-after-ms` (OpenAI) wins over `retry-after` (seconds or an HTTP date). */
export const retryAfterMs = (headers: Readonly<Record<string, unknown>>, now: number): number | undefined => {
  const header = (name: string) => {
    const value = headers[name]
    return typeof value === "string" ? value.trim() : undefined
  }
  const ms = header("retry-after-ms")
  if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms)) return Math.ceil(Number(ms))
  const after = header("retry-after")
  if (after === undefined) return undefined
  if (/^\d+(\.\d+)?$/.test(after)) return Math.ceil(Number(after) * 1000)
  const date = Date.parse(after)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

const error = (code: string, message: string, retryable: boolean) =>
  new Engine.EngineError({ code, message, retryable })

const withDetail = (message: string, detail: string | undefined) =>
  detail === undefined || detail.length === 0 ? message : `${message}: ${detail}`

/** Classifies a failed HTTP status; `detail` is the provider's own message, already scrubbed. */
export const fromStatus = (
  status: number,
  detail: string | undefined,
  retryAfter: number | undefined
): Failure => {
  if (status === 401 || status === 403) {
    return {
      error: error("provider_unauthorized", withDetail(`the provider rejected the credentials (HTTP ${status})`, detail), false),
      retryable: false
    }
  }
  if (status === 429) {
    return {
      error: error("provider_rate_limited", withDetail("the provider is rate limiting requests (HTTP 429)", detail), true),
      retryable: true,
      retryAfterMs: retryAfter
    }
  }
  if (status === 408 || status >= 500) {
    return {
      error: error("provider_unavailable", withDetail(`the provider failed (HTTP ${status})`, detail), true),
      retryable: true,
      retryAfterMs: retryAfter
    }
  }
  const hint = status === 404 ? " (is the model name right?)" : ""
  return {
    error: error("provider_bad_request", withDetail(`the provider refused the request (HTTP ${status})${hint}`, detail), false),
    retryable: false
  }
}

/** Maps an `@effect/ai` error to a readable, key-free engine error; `secret` is removed from provider text. */
export const fromAiError = (e: AiError.AiError, secret: string | undefined, now: number): Failure => {
  switch (e._tag) {
    case "HttpResponseError": {
      const status = e.response.status
      if (e.reason === "StatusCode" || status >= 300) {
        const body = e.body === undefined ? undefined : providerMessage(e.body)
        const detail = body === undefined ? undefined : scrub(body, secret)
        const failure = fromStatus(status, detail, retryAfterMs(e.response.headers, now))
        // A spent quota is a 429 that no wait fixes; `x-should-retry: false` is the provider saying so explicitly.
        return failure.retryable && (e.response.headers["x-should-retry"] === "false" || quotaExhausted(e.body))
          ? { error: error(failure.error.code, failure.error.message, false), retryable: false }
          : failure
      }
      // A body that breaks off while streaming surfaces as a decode failure of a 2xx response.
      return {
        error: error("provider_unavailable", "the connection to the provider broke while streaming", true),
        retryable: true
      }
    }
    case "HttpRequestError":
      return e.reason === "Transport"
        ? {
          error: error("provider_unavailable", "could not reach the provider (connection refused, reset or closed)", true),
          retryable: true
        }
        : { error: error("engine_misconfigured", "the provider request could not be built (check base_url)", false), retryable: false }
    case "MalformedOutput":
      return {
        error: error(
          "provider_bad_response",
          withDetail("the provider sent output the engine could not read", scrub(e.description ?? "", secret)),
          false
        ),
        retryable: false
      }
    case "MalformedInput":
      return {
        error: error("engine_bad_request", withDetail("the engine could not encode the request", e.description), false),
        retryable: false
      }
    case "UnknownError":
      return {
        error: error("provider_error", withDetail("the provider failed", scrub(e.description ?? "", secret)), false),
        retryable: false
      }
  }
}

/**
 * Classifies an error the provider reported inside a stream (Anthropic `error` events, OpenAI `error` events, a Chat
 * Completions `{"error": …}` chunk).
 */
export const fromStreamError = (payload: unknown, secret: string | undefined): Failure => {
  const record = asRecord(payload) ?? {}
  const nested = asRecord(record.error)
  const source = nested ?? record
  const kind = [source.type, source.code, record.code].find((v) => typeof v === "string" && v !== "error") as
    | string
    | undefined
  const numeric = [source.code, source.status, record.status].find((v) => typeof v === "number") as number | undefined
  const message = scrub(providerMessage(payload) ?? kind ?? "unknown error", secret)
  const label = kind === undefined ? message : `${scrub(kind, secret)}: ${message}`
  if (numeric !== undefined) return fromStatus(numeric, label, undefined)
  const k = (kind ?? "").toLowerCase()
  if (k.includes("rate_limit")) {
    return { error: error("provider_rate_limited", `the provider is rate limiting requests (${label})`, true), retryable: true }
  }
  if (/overloaded|api_error|server_error|internal|timeout|unavailable/.test(k)) {
    return { error: error("provider_unavailable", `the provider failed mid-stream (${label})`, true), retryable: true }
  }
  if (/authentication|permission|unauthorized|invalid_api_key/.test(k)) {
    return { error: error("provider_unauthorized", `the provider rejected the credentials (${label})`, false), retryable: false }
  }
  if (/invalid_request|not_found|model/.test(k)) {
    return { error: error("provider_bad_request", `the provider refused the request (${label})`, false), retryable: false }
  }
  return { error: error("provider_error", `the provider reported an error (${label})`, false), retryable: false }
}
