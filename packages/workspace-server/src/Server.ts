import {
  FileSystem,
  Headers,
  HttpApiBuilder,
  HttpApiError,
  HttpApp,
  HttpIncomingMessage,
  type HttpRouter,
  HttpServer,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { Cause, Duration, Effect, Layer, Option } from "effect"
import * as NodeCrypto from "node:crypto"
import type { Audit } from "./Audit.js"
import * as Auth from "./Auth.js"
import { BrowserApi } from "./BrowserApi.js"
import { InternalError, InvalidInput, PayloadTooLarge, RouteNotFound } from "./Errors.js"
import type { EventProxy } from "./EventProxy.js"
import * as Handlers from "./Handlers.js"
import type { RuntimeRegistry } from "./RuntimeRegistry.js"

export interface ServerOptions {
  /** SSE heartbeat interval. Default 15 s. */
  readonly heartbeat?: Duration.DurationInput | undefined
  /** Larger bodies are refused with `PayloadTooLarge` (413). Default 8 MiB. */
  readonly maxBodyBytes?: number | undefined
}

const readable = (error: HttpApiError.HttpApiDecodeError): InvalidInput => {
  const issue = error.issues[0]
  const field = issue === undefined || issue.path.length === 0 ? undefined : issue.path.join(".")
  const message = error.issues.slice(0, 3)
    .map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message)).join("; ")
  return new InvalidInput({ message: message || "invalid request", ...(field === undefined ? {} : { field }) })
}

const pathOf = (url: string) => {
  const q = url.indexOf("?")
  return (q === -1 ? url : url.slice(0, q)).slice(0, 200)
}

const validRequestId = /^[A-Za-z0-9._:-]{1,100}$/

/** Headers on every response: nothing is cached, nothing is sniffed, and no URL (a login token) leaks as referrer. */
const securityHeaders = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY"
}

/**
 * The API-level guard. It gives each request an id (`x-request-id`, taken from the request when well-formed) that
 * the audit trail records and every response carries, and turns what the platform reports in its own shapes into
 * the Backend's typed errors: schema failures become a readable `InvalidInput`, unknown routes `RouteNotFound`,
 * oversized bodies `PayloadTooLarge`.
 */
const guardLayer = (maxBodyBytes: number) => {
  const tooLarge = new PayloadTooLarge({
    limit_bytes: maxBodyBytes,
    message: `the request body is larger than ${maxBodyBytes} bytes`
  })
  return HttpApiBuilder.middleware(BrowserApi, (app) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const given = request.headers[Auth.REQUEST_ID_HEADER]
      const requestId = given !== undefined && validRequestId.test(given) ? given : NodeCrypto.randomUUID()
      yield* HttpApp.appendPreResponseHandler((_req, response) =>
        Effect.succeed(
          HttpServerResponse.setHeaders(response, { ...securityHeaders, [Auth.REQUEST_ID_HEADER]: requestId })
        )
      )
      const length = request.headers["content-length"]
      if (length !== undefined && Number(length) > maxBodyBytes) return yield* tooLarge
      const withId = request.modify({ headers: Headers.set(request.headers, Auth.REQUEST_ID_HEADER, requestId) })
      return yield* Effect.provideService(app, HttpServerRequest.HttpServerRequest, withId).pipe(
        Effect.catchAllCause((cause): Effect.Effect<never, InvalidInput | PayloadTooLarge | RouteNotFound> => {
          if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
          const failure = Cause.failureOption(cause as Cause.Cause<unknown>)
          if (Option.isSome(failure)) {
            const error = failure.value
            if (error instanceof HttpApiError.HttpApiDecodeError) return Effect.fail(readable(error))
            if (error instanceof HttpServerError.RouteNotFound) {
              const path = pathOf(request.url)
              return Effect.fail(
                new RouteNotFound({ method: request.method, path, message: `no route for ${request.method} ${path}` })
              )
            }
            return Effect.failCause(cause)
          }
          const defect = Cause.dieOption(cause)
          if (Option.isSome(defect) && defect.value instanceof HttpServerError.RequestError) {
            return Effect.fail(new InvalidInput({ message: "the request body could not be read" }))
          }
          return Effect.failCause(cause)
        })
      )
    }))
}

const internalError = HttpServerResponse.unsafeJson(
  {
    _tag: "InternalError",
    message: "the Backend failed unexpectedly; the cause is in its log"
  } satisfies typeof InternalError.Encoded,
  { status: 500, headers: securityHeaders }
)

/** The outermost guard: whatever still escapes is logged with its cause and answered as a typed 500. */
const guard = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<never, R> =>
  Effect.catchAllCause(app, (cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.failCause(cause as Cause.Cause<never>)
      : Effect.as(Effect.logError("request failed unexpectedly", cause), internalError))

/**
 * The browser API served over whatever `HttpServer` is provided. The `Authentication` implementation is provided
 * to the group layers directly (a middleware layer provided next to them would not reach them).
 */
export const layer = (
  options: ServerOptions = {}
): Layer.Layer<
  never,
  never,
  | RuntimeRegistry
  | EventProxy
  | Audit
  | Auth.BackendToken
  | Auth.Sessions
  | HttpServer.HttpServer
  | HttpRouter.HttpRouter.DefaultServices
> => {
  const maxBodyBytes = options.maxBodyBytes ?? Handlers.MAX_BODY_BYTES
  const groups = Handlers.layer({ heartbeat: options.heartbeat ?? Duration.seconds(15) }).pipe(
    Layer.provide(Auth.layer)
  )
  const api = HttpApiBuilder.api(BrowserApi).pipe(Layer.provide(groups))
  return HttpApiBuilder.httpApp.pipe(
    Effect.map((app) => HttpServer.serve(guard(app))),
    Layer.unwrapEffect,
    Layer.provide(guardLayer(maxBodyBytes)),
    Layer.provide([
      HttpApiBuilder.Router.Live,
      HttpApiBuilder.Middleware.layer,
      Layer.succeed(HttpIncomingMessage.MaxBodySize, Option.some(FileSystem.Size(maxBodyBytes)))
    ]),
    Layer.provide(api)
  )
}
