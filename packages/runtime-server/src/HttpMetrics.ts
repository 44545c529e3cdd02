import { HttpApi, type HttpApp, HttpServerRequest } from "@effect/platform"
import { Metrics } from "@yoi/worker-runtime"
import { Context, Effect } from "effect"

interface Route {
  readonly method: string
  readonly segments: ReadonlyArray<string | undefined>
  readonly template: string
}

/**
 * Labels a request with its route template (`/v1/workers/:worker_id`), taken from the API definition, so the
 * series stay few whatever ids the paths carry; a path no route has is `unmatched`.
 */
export const routeLabeler = (
  api: HttpApi.HttpApi.Any,
  extra: ReadonlyArray<readonly [method: string, path: string]> = []
): (method: string, url: string) => string => {
  const routes: Array<Route> = []
  const add = (method: string, template: string) =>
    routes.push({
      method,
      template,
      segments: template.split("/").map((s) => (s.startsWith(":") ? undefined : s))
    })
  HttpApi.reflect(api as HttpApi.HttpApi.AnyWithProps, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => add(endpoint.method, endpoint.path)
  })
  for (const [method, path] of extra) add(method, path)
  return (method, url) => {
    const query = url.indexOf("?")
    const parts = (query === -1 ? url : url.slice(0, query)).split("/")
    for (const route of routes) {
      if (route.segments.length !== parts.length || (route.method !== method && route.method !== "*")) continue
      let matches = true
      for (let i = 0; i < parts.length; i++) {
        const segment = route.segments[i]
        if (segment !== undefined && segment !== parts[i]) {
          matches = false
          break
        }
      }
      if (matches) return route.template
    }
    return "unmatched"
  }
}

/**
 * Counts every answered request into `yoi_http_requests_total{server, method, route, status}`. It wraps the
 * outermost app, so error answers and the read fast path are counted too.
 */
export const count = (server: string, route: (method: string, url: string) => string) => {
  const requests = Metrics.family(Metrics.httpRequests, "server", "method", "route", "status")
  return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
    Effect.withFiberRuntime((fiber) => {
      const request = Context.unsafeGet(fiber.currentContext, HttpServerRequest.HttpServerRequest)
      return Effect.map(app, (response) => {
        requests(server, request.method, route(request.method, request.url), String(response.status))
          .unsafeUpdate(1, [])
        return response
      })
    })
}
