import {
  FileSystem,
  type HttpApi,
  HttpApiBuilder,
  HttpIncomingMessage,
  HttpMiddleware,
  type HttpRouter,
  HttpServer,
  type HttpServerError
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { ApiDocs, RuntimeApi } from "@yoi/runtime-api"
import { Runtime } from "@yoi/worker-runtime"
import { Effect, identity, Layer, Option } from "effect"
import type { Server as NodeServer } from "node:http"
import * as Auth from "./Auth.js"
import * as Docs from "./Docs.js"
import * as EventsHandlers from "./EventsHandlers.js"
import * as FastReads from "./FastReads.js"
import * as HealthHandlers from "./HealthHandlers.js"
import * as HttpErrors from "./HttpErrors.js"
import * as HttpMetrics from "./HttpMetrics.js"
import * as MetricsHandlers from "./MetricsHandlers.js"
import * as RuntimeHandlers from "./RuntimeHandlers.js"
import * as Shutdown from "./Shutdown.js"
import * as Sse from "./Sse.js"
import * as WorkersHandlers from "./WorkersHandlers.js"

export interface AppOptions {
  readonly auth: Auth.AuthMode
  /** Larger bodies are refused with `PayloadTooLarge` (413). Default 4 MiB. */
  readonly maxBodyBytes?: number | undefined
  /** Serve `/openapi.json` and the offline API reference at `/docs` (both need the token). Default true. */
  readonly docs?: boolean | undefined
  /**
   * Serve successful reads (GET, status 200) on a direct route instead of through `HttpApiBuilder`'s per-request
   * machinery; errors still come from the HttpApi. Default true. See `FastReads`.
   */
  readonly fastReads?: boolean | undefined
  /**
   * Tracing spans: one per request (the platform's default) and the runtime's own inside it (each command, each
   * turn). Off by default: nothing exports them unless `Tracing.layer` is provided, and a span costs as much as the
   * rest of a read. Turn it on with an exporting tracer (`--otlp-endpoint`).
   */
  readonly tracing?: boolean | undefined
  /** Event streams: heartbeat interval and how many may be open at once. Default 15 s and 1024. */
  readonly events?: Partial<Sse.SseOptions> | undefined
}

export interface ListenOptions extends AppOptions {
  readonly host: string
  /** 0 picks a free port. */
  readonly port: number
  /** How long running turns and open responses may take to finish after SIGTERM/SIGINT. Default 10 s. */
  readonly graceMs?: number | undefined
}

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024

const routes = HttpMetrics.routeLabeler(RuntimeApi, [["GET", "/openapi.json"], ["GET", "/docs"]])

const serve = (options: AppOptions) =>
  Effect.gen(function*() {
    const app = yield* HttpApiBuilder.httpApp
    const fast = options.fastReads === false ? identity : yield* FastReads.make(options.auth)
    const counted = HttpMetrics.count("runtime", routes)
    const guarded = counted(HttpErrors.guard(fast(app)))
    if (options.tracing === true) return HttpServer.serve(guarded)
    // No exporter: neither the request's span nor the runtime's own (`Effect.fn`, a turn's) would go anywhere.
    return HttpMiddleware.withTracerDisabledWhen(HttpServer.serve(Effect.withTracerEnabled(guarded, false)), () => true)
  }).pipe(
    Layer.unwrapEffect,
    Layer.provide([
      HttpApiBuilder.Router.Live,
      HttpApiBuilder.Middleware.layer,
      Layer.succeed(
        HttpIncomingMessage.MaxBodySize,
        Option.some(FileSystem.Size(options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES))
      )
    ])
  )

/**
 * `RuntimeApi` with its handlers, docs routes and error mapping, not yet served. The group handler layers get the
 * `Authorization` implementation first: a middleware layer provided next to them would not reach them.
 */
export const layerApi = (options: AppOptions): Layer.Layer<HttpApi.Api, never, Runtime.Runtime | Shutdown.Shutdown> => {
  const groups = Layer.mergeAll(
    HealthHandlers.layer,
    RuntimeHandlers.layer,
    WorkersHandlers.layer,
    MetricsHandlers.layer,
    EventsHandlers.layerWith({ ...Sse.defaultOptions, ...options.events })
  ).pipe(Layer.provide(Auth.layer(options.auth)))
  const api = HttpApiBuilder.api(RuntimeApi).pipe(Layer.provide(groups))
  const docs = options.docs === false
    ? Layer.empty
    : Layer.mergeAll(
      HttpApiBuilder.middlewareOpenApi(),
      Docs.layer({ path: "/docs", scalar: ApiDocs.scalarConfig })
    )
  const errors = HttpErrors.layer({ maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, auth: options.auth })
  return Layer.provideMerge(Layer.merge(docs, errors), api)
}

/** `RuntimeApi` served over whatever `HttpServer` is provided, delegating to the provided `Runtime`. */
export const layerApp = (
  options: AppOptions
): Layer.Layer<
  never,
  never,
  Runtime.Runtime | Shutdown.Shutdown | HttpServer.HttpServer | HttpRouter.HttpRouter.DefaultServices
> => serve(options).pipe(Layer.provide(layerApi(options)))

/**
 * On shutdown: signal long-lived responses to end, stop accepting connections, let running turns finish or cancel
 * them within the grace period, then cut what is still open. The store closes after this, with the Runtime layer.
 */
const drainOnShutdown = (server: NodeServer, graceMs: number) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime.Runtime
    const shutdown = yield* Shutdown.Shutdown
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* Effect.logInfo("draining")
        yield* shutdown.begin
        const closed = Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeIdleConnections()
        })
        // Finalizers are uninterruptible, and a timeout can only cut what is interruptible.
        const turns = Effect.interruptible(runtime.drain(graceMs))
        yield* Effect.all([turns, Effect.timeout(Effect.interruptible(closed), graceMs)], {
          concurrency: "unbounded",
          discard: true,
          mode: "either"
        })
        server.closeAllConnections()
        yield* Effect.logInfo("drained")
      }))
  })

/** The runtime's HTTP server on `host:port`, with graceful drain; the Backend and tests reuse it. */
export const layer = (
  options: ListenOptions
): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError, Runtime.Runtime> =>
  Layer.unwrapEffect(Effect.sync(() => {
    const server = HttpErrors.createServer()
    const http = NodeHttpServer.layer(() => server, { host: options.host, port: options.port })
    const served = layerApp(options).pipe(
      Layer.provideMerge(Shutdown.layer),
      Layer.provideMerge(http)
    )
    const drained = Layer.scopedDiscard(drainOnShutdown(server, options.graceMs ?? 10_000)).pipe(
      Layer.provideMerge(served)
    )
    return Layer.effect(HttpServer.HttpServer, HttpServer.HttpServer).pipe(Layer.provide(drained))
  }))

/** The app on `NodeHttpServer.layerTest`: its `HttpClient` already points at the server. */
export const layerTest = (options: AppOptions) =>
  layerApp(options).pipe(
    Layer.provide(Shutdown.layer),
    Layer.provideMerge(NodeHttpServer.layerTest)
  )
