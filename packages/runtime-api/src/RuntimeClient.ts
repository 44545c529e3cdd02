import { HttpApiClient, HttpClient, HttpClientError, HttpClientRequest, type HttpClientResponse } from "@effect/platform"
import { Context, Duration, Effect, Layer, type Redacted, Schedule } from "effect"
import { RuntimeApi } from "./Api.js"

export interface RuntimeClientOptions {
  /** Omit when the provided `HttpClient` already prefixes the runtime's URL (as `NodeHttpServer.layerTest` does). */
  readonly baseUrl?: string | URL | undefined
  readonly token?: Redacted.Redacted | undefined
  /** Per attempt, until the response headers arrive. Default 30 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Extra attempts for idempotent (GET) calls after a transport error, a timeout, or a 502/503/504. Default 2. */
  readonly retries?: number | undefined
}

const transientStatus = (status: number) => status === 502 || status === 503 || status === 504

const isTransport = (error: HttpClientError.HttpClientError) =>
  error._tag === "RequestError" && error.reason === "Transport"

const withTimeout = (timeout: Duration.DurationInput) => (client: HttpClient.HttpClient): HttpClient.HttpClient => {
  const millis = Duration.toMillis(timeout)
  return HttpClient.transform(client, (effect, request) =>
    Effect.timeoutFail(effect, {
      duration: timeout,
      onTimeout: () =>
        new HttpClientError.RequestError({ request, reason: "Transport", description: `no response in ${millis} ms` })
    }))
}

/** Only GET is retried: a command that may have reached the runtime is never sent twice. */
const retryIdempotent = (times: number) => (client: HttpClient.HttpClient): HttpClient.HttpClient => {
  const backoff = Schedule.exponential("100 millis").pipe(Schedule.jittered)
  const responseBackoff: Schedule.Schedule<Duration.Duration, HttpClientResponse.HttpClientResponse> = backoff
  return HttpClient.transform(client, (effect, request) =>
    request.method !== "GET" || times <= 0
      ? effect
      : effect.pipe(
        Effect.repeat({
          while: (response) => transientStatus(response.status),
          schedule: Schedule.passthrough(responseBackoff),
          times
        }),
        Effect.retry({ while: isTransport, schedule: backoff, times })
      ))
}

export const make = (options: RuntimeClientOptions = {}) =>
  HttpApiClient.make(RuntimeApi, {
    ...(options.baseUrl === undefined ? {} : { baseUrl: options.baseUrl }),
    transformClient: (client) => {
      const token = options.token
      const authed = token === undefined ? client : HttpClient.mapRequest(client, HttpClientRequest.bearerToken(token))
      return authed.pipe(withTimeout(options.timeout ?? "30 seconds"), retryIdempotent(options.retries ?? 2))
    }
  })

export type RuntimeClientService = Effect.Effect.Success<ReturnType<typeof make>>

/** The remote Runtime client, derived from `RuntimeApi`: every route, its payload and its typed errors. */
export class RuntimeClient extends Context.Tag("@yoi/runtime-api/RuntimeClient")<RuntimeClient, RuntimeClientService>() {
  static readonly make = make
  static readonly layer = (
    options: RuntimeClientOptions = {}
  ): Layer.Layer<RuntimeClient, never, HttpClient.HttpClient> => Layer.effect(RuntimeClient, make(options))
}
