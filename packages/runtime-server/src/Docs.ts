import { HttpApi, HttpApiBuilder, type HttpRouter } from "@effect/platform"
import type * as HttpApiScalar from "@effect/platform/HttpApiScalar"
import { Effect, Layer } from "effect"

/**
 * The Scalar API reference at `path`, loaded on its first request. Its page inlines Scalar's 3 MB script (nothing
 * may come from another origin): importing `HttpApiScalar` at start would keep that string, and the bundle text that
 * holds it, in the memory of every runtime that never serves `/docs`. The first request imports it (a chunk of its
 * own in the bins' bundle), builds `HttpApiScalar.layer` on a router of its own and keeps that router for the next.
 */
export const layer = (options: {
  readonly path: `/${string}`
  readonly scalar: HttpApiScalar.ScalarConfig
}): Layer.Layer<never, never, HttpApi.Api> =>
  HttpApiBuilder.Router.use((router) =>
    Effect.gen(function*() {
      const api = yield* HttpApi.Api
      const page = yield* Effect.cached(
        Effect.promise(() => import("@effect/platform/HttpApiScalar")).pipe(
          Effect.flatMap((Scalar) =>
            // One build: the layer's route and the router read back share the same memoized `Router.Live`.
            Layer.build(Layer.merge(Scalar.layer(options), HttpApiBuilder.Router.Live)).pipe(
              Effect.flatMap((context) => Effect.provide(HttpApiBuilder.Router.router, context)),
              Effect.provideService(HttpApi.Api, api),
              Effect.scoped
            )
          )
        )
      )
      yield* router.get(
        options.path,
        Effect.flatMap(page, (docs): HttpRouter.Route.Handler<unknown, never> => docs as never)
      )
    })
  )
