import {
  HttpApi,
  type HttpApp,
  HttpRouter,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { Authorization, RuntimeApi } from "@yoi/runtime-api"
import { Runtime } from "@yoi/worker-runtime"
import { Context, Effect, Either, Option, Schema } from "effect"
import * as Auth from "./Auth.js"
import * as HealthHandlers from "./HealthHandlers.js"
import * as RuntimeHandlers from "./RuntimeHandlers.js"
import * as WorkersHandlers from "./WorkersHandlers.js"

type Read = (request: {
  readonly request: HttpServerRequest.HttpServerRequest
  readonly path?: unknown
  readonly urlParams?: unknown
}) => Effect.Effect<unknown, unknown>

// `reflect` hands the schemas over with their decoded type erased.
const decoder = (schema: Option.Option<Schema.Schema<never, unknown>>) =>
  Option.map(schema, (s) => Schema.decodeUnknownEither(s as unknown as Schema.Schema<unknown, unknown>))

/**
 * The read routes (GET, no body, status 200) served without the per-request machinery of `HttpApiBuilder`, which
 * costs several times what auth and the handler do. Only the happy path is served here: when the token is wrong,
 * a parameter does not decode or the handler fails, the request falls through to the HttpApi app, which answers
 * it with exactly the error it always does. Routes, parameter schemas and handlers all come from `RuntimeApi` and
 * the handler modules; nothing about a route is written here. Bodies are `JSON.stringify` of the handler's typed
 * value, as the HttpApi would send for these schemas (plain JSON, no transformations), without re-validating it.
 */
export const make = (
  auth: Auth.AuthMode
): Effect.Effect<<E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<E, R>, never, Runtime.Runtime> =>
  Effect.map(Runtime.Runtime, (runtime) => {
    const reads: Record<string, Read> = {}
    for (const [group, handlers] of [
      ["health", HealthHandlers.handlers(runtime)],
      ["runtime", RuntimeHandlers.handlers(runtime)],
      ["workers", WorkersHandlers.handlers(runtime)]
    ] as const) {
      for (const [name, handler] of Object.entries(handlers)) reads[`${group}.${name}`] = handler as Read
    }
    const authorized = Auth.makeHeaderCheck(auth)
    const endpoints: Array<{
      readonly path: HttpRouter.PathInput
      readonly needsAuth: boolean
      readonly read: Read
      readonly decodePath: Option.Option<(u: unknown) => Either.Either<unknown, unknown>>
      readonly decodeUrlParams: Option.Option<(u: unknown) => Either.Either<unknown, unknown>>
    }> = []
    HttpApi.reflect(RuntimeApi, {
      onGroup: () => {},
      onEndpoint: ({ endpoint, group, middleware, successes, payloads }) => {
        const read = reads[`${group.identifier}.${endpoint.name}`]
        const plain = endpoint.method === "GET" && payloads.size === 0 && Option.isNone(endpoint.headersSchema) &&
          successes.size === 1 && successes.has(200)
        if (!plain || read === undefined) return
        endpoints.push({
          path: endpoint.path,
          needsAuth: Array.from(middleware).some((m) => m.key === Authorization.key),
          read,
          decodePath: decoder(endpoint.pathSchema),
          decodeUrlParams: decoder(endpoint.urlParamsSchema)
        })
      }
    })
    return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> => {
      // Built once per route: closures made per request show up in profiles.
      const respond = {
        onFailure: () => app,
        onSuccess: (value: unknown) => Effect.succeed(HttpServerResponse.unsafeJson(value))
      }
      const routes = endpoints.map(({ decodePath, decodeUrlParams, needsAuth, path, read }) =>
        HttpRouter.makeRoute("GET", path, Effect.withFiberRuntime<
          HttpServerResponse.HttpServerResponse,
          E,
          R | HttpServerRequest.HttpServerRequest
        >((fiber) => {
          const context = fiber.currentContext
          const request = Context.unsafeGet(context, HttpServerRequest.HttpServerRequest)
          if (needsAuth && !authorized(request.headers.authorization)) return app
          const input: { request: typeof request; path?: unknown; urlParams?: unknown } = { request }
          if (Option.isSome(decodePath)) {
            const decoded = decodePath.value(Context.unsafeGet(context, HttpRouter.RouteContext).params)
            if (Either.isLeft(decoded)) return app
            input.path = decoded.right
          }
          if (Option.isSome(decodeUrlParams)) {
            const decoded = decodeUrlParams.value(Context.unsafeGet(context, HttpServerRequest.ParsedSearchParams))
            if (Either.isLeft(decoded)) return app
            input.urlParams = decoded.right
          }
          return Effect.matchEffect(read(input), respond)
        })))
      const fallback = HttpRouter.makeRoute("*", "*", app)
      const routed = Effect.runSync(HttpRouter.toHttpApp(HttpRouter.fromIterable([...routes, fallback])))
      // A path the router cannot match at all (a malformed %-escape, a segment over its length limit) misses the
      // fallback too: the HttpApi app answers it, with its typed errors.
      const fast = Effect.catchIf(routed, (e) => e instanceof HttpServerError.RouteNotFound, () => app)
      return Effect.flatMap(
        HttpServerRequest.HttpServerRequest,
        (request) => (request.method === "GET" ? fast : app)
      ) as HttpApp.Default<E, R>
    }
  })
