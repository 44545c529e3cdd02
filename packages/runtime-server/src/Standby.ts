import type { LeaseHolder } from "@yoi/worker-runtime/pg"
import { Console, Effect, type Scope } from "effect"
import type * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { createServer } from "./HttpErrors.js"

/** Where the standby listened: the serving server binds the same address when this instance takes over. */
export interface Bound {
  host: string
  port: number
}

const json = (response: Http.ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body)
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store"
  })
  response.end(text)
}

/**
 * While another instance owns the runtime's store, this one answers on its address as a standby: `/healthz` 200
 * `{status: "ok", role: "standby"}` (alive), `/readyz` and every other route 503 `RuntimeUnavailable` saying it is a
 * standby. It names the owner's instance and host, never the database. Closed (connections cut) with its scope, just
 * before the serving server binds the same address.
 */
export const serve = (
  runtimeId: string,
  holder: LeaseHolder,
  bound: Bound
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const message = `standby: runtime ${runtimeId} is served by instance ${holder.instance_id} on ${holder.host}; ` +
      "this instance takes over when that instance's lease expires"
    const server = createServer().on("request", (request: Http.IncomingMessage, response: Http.ServerResponse) => {
      const path = (request.url ?? "/").split("?")[0]
      if (request.method === "GET" && path === "/healthz") {
        return json(response, 200, { status: "ok", role: "standby", runtime_id: runtimeId })
      }
      json(response, 503, { _tag: "RuntimeUnavailable", message })
    })
    const listened = yield* Effect.async<AddressInfo | undefined, Error>((resume) => {
      server.once("error", (e) => resume(Effect.fail(e)))
      server.listen(bound.port, bound.host, () => resume(Effect.succeed(server.address() as AddressInfo)))
    }).pipe(Effect.either)
    if (listened._tag === "Left") {
      return yield* Effect.logWarning(
        `the standby could not listen on ${bound.host}:${bound.port} (${listened.left.message}); it waits without`
      )
    }
    if (listened.right !== undefined) bound.port = listened.right.port
    const host = bound.host.includes(":") ? `[${bound.host}]` : bound.host
    yield* Console.log(
      `yoi-runtime ${runtimeId} standby on http://${host}:${bound.port} (instance ${holder.instance_id} on ` +
        `${holder.host} serves)`
    )
    yield* Effect.addFinalizer(() =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
    )
  })
