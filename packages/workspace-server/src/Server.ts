import {
  FileSystem,
  Headers,
  HttpApiBuilder,
  HttpApp,
  HttpIncomingMessage,
  type HttpRouter,
  HttpServer,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { HttpErrors, HttpMetrics } from "@yoi/runtime-server"
import { Duration, Effect, Layer, Option } from "effect"
import * as NodeCrypto from "node:crypto"
import type { Audit } from "./Audit.js"
import * as Auth from "./Auth.js"
import * as ConsoleAssets from "./ConsoleAssets.js"
import { BrowserApi } from "@yoi/backend-api/BrowserApi"
import { InternalError, InvalidInput, PayloadTooLarge, RouteNotFound } from "@yoi/backend-api/Errors"
import type { EventProxy } from "./EventProxy.js"
import * as Handlers from "./Handlers.js"
import type { RuntimeRegistry } from "./RuntimeRegistry.js"

export interface ServerOptions {
  /** SSE heartbeat interval. Default 15 s. */
  readonly heartbeat?: Duration.DurationInput | undefined
  /** A stream whose reader stopped reading is dropped after this long without progress. Default 30 s. */
  readonly stallTimeout?: Duration.DurationInput | undefined
  /** How often `/api/events` may send a `stream.bookmark`. Default 30 s. */
  readonly bookmarkInterval?: Duration.DurationInput | undefined
  /** Larger bodies are refused with `PayloadTooLarge` (413). Default 8 MiB. */
  readonly maxBodyBytes?: number | undefined
  /** The built console to serve at `/`; default `@yoi/console`'s `dist/`, `false` for the API only. */
  readonly consoleDir?: string | false | undefined
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
  const { lengthRequired, toApiError, tooLarge } = HttpErrors.make(
    { InvalidInput, PayloadTooLarge, RouteNotFound },
    { maxBodyBytes }
  )
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
      // Past the limit the platform's body reader destroys the socket, so a 413 could not be sent: require a length.
      if (length === undefined && request.headers["transfer-encoding"] !== undefined) return yield* lengthRequired
      const withId = request.modify({ headers: Headers.set(request.headers, Auth.REQUEST_ID_HEADER, requestId) })
      return yield* Effect.provideService(app, HttpServerRequest.HttpServerRequest, withId).pipe(
        Effect.catchAllCause(toApiError(request))
      )
    }))
}

/** Every answer counted by route template; console pages and other paths no API route has are `unmatched`. */
const counted = HttpMetrics.count("backend", HttpMetrics.routeLabeler(BrowserApi, [["GET", "/openapi.json"]]))

/** The outermost guard: whatever still escapes is logged with its cause and answered as a typed 500. */
const guard = HttpErrors.guardWith(HttpServerResponse.unsafeJson(
  {
    _tag: "InternalError",
    message: "the Backend failed unexpectedly; the cause is in its log"
  } satisfies typeof InternalError.Encoded,
  { status: 500, headers: securityHeaders }
))

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
  const groups = Handlers.layer({
    heartbeat: options.heartbeat ?? Duration.seconds(15),
    stallTimeout: options.stallTimeout
  }).pipe(
    Layer.provide(Auth.layer)
  )
  const api = HttpApiBuilder.api(BrowserApi).pipe(Layer.provide(groups))
  const consoleDir = options.consoleDir ?? ConsoleAssets.defaultDir()
  return Effect.all([
    HttpApiBuilder.httpApp,
    consoleDir === false ? Effect.succeedNone : ConsoleAssets.load(consoleDir)
  ]).pipe(
    Effect.map(([app, assets]) =>
      HttpServer.serve(counted(guard(Option.match(assets, {
        onNone: () => app,
        onSome: (console) =>
          Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
            Option.match(ConsoleAssets.respond(console, request), { onNone: () => app, onSome: Effect.succeed }))
      }))))),
    Layer.unwrapEffect,
    // `/openapi.json` holds no data (the API's shape only), so like `/healthz` it needs no token.
    Layer.provide([guardLayer(maxBodyBytes), HttpApiBuilder.middlewareOpenApi()]),
    Layer.provide([
      HttpApiBuilder.Router.Live,
      HttpApiBuilder.Middleware.layer,
      Layer.succeed(HttpIncomingMessage.MaxBodySize, Option.some(FileSystem.Size(maxBodyBytes)))
    ]),
    Layer.provide(api)
  )
}
