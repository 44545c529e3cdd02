/**
 * Servers under test, in this process, on loopback ports: the runtime's real HTTP server (`RuntimeServer.layer`)
 * over a memory or SQLite store, and the whole Backend (`Backend.layer` from a config document) served on its own
 * port. Each is a `ManagedRuntime`, so a suite can build it, drive it over plain sockets, and dispose of it.
 */
import { testPolicy } from "@yoi/worker-runtime/testing"
import { HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { Auth, HttpErrors, RuntimeServer } from "@yoi/runtime-server"
import { layerMemory, Runtime } from "@yoi/worker-runtime"
import { layerSqlite } from "@yoi/worker-runtime/sqlite"
import { Auth as BackendAuth, Backend, Config as BackendConfig } from "@yoi/workspace-server"
import { ConfigProvider, Duration, Effect, Either, Layer, ManagedRuntime, Redacted } from "effect"

export interface Served {
  readonly port: number
  readonly url: string
  readonly dispose: () => Promise<void>
}

const portOf = HttpServer.HttpServer.pipe(
  Effect.map((server) => (server.address._tag === "TcpAddress" ? server.address.port : 0))
)

export interface RuntimeTarget extends Served {
  readonly runtime: Runtime.RuntimeService
}

/** `yoi-runtime`'s server layer with a token, over `memory` or a SQLite file. */
export const startRuntime = async (options: {
  readonly token: string
  readonly runtimeId: string
  readonly sqlite?: string | undefined
  readonly maxBodyBytes?: number | undefined
  readonly heartbeatMs?: number | undefined
  readonly maxStreams?: number | undefined
}): Promise<RuntimeTarget> => {
  const store = options.sqlite === undefined
    ? layerMemory({ policy: testPolicy, runtimeId: options.runtimeId })
    : layerSqlite({ policy: testPolicy, runtimeId: options.runtimeId, filename: options.sqlite })
  const layer = RuntimeServer.layer({
    host: "127.0.0.1",
    port: 0,
    auth: Auth.token(Redacted.make(options.token)),
    graceMs: 200,
    maxBodyBytes: options.maxBodyBytes,
    events: {
      heartbeat: Duration.millis(options.heartbeatMs ?? 15_000),
      ...(options.maxStreams === undefined ? {} : { maxStreams: options.maxStreams })
    }
  }).pipe(Layer.provideMerge(store))
  const managed = ManagedRuntime.make(layer)
  const port = await managed.runPromise(portOf)
  const runtime = await managed.runPromise(Runtime.Runtime)
  return { port, url: `http://127.0.0.1:${port}`, runtime, dispose: () => managed.dispose() }
}

/**
 * The whole Backend from a config document (remote tokens are read from `env`), with an in-memory audit store and
 * fast probes, on its own loopback port: what `yoi-backend` runs, minus the argv parsing.
 */
export const startBackend = async (options: {
  readonly token: string
  readonly config: typeof BackendConfig.BackendConfig.Encoded
  readonly env?: Record<string, string> | undefined
  readonly probeMs?: number | undefined
  readonly timeoutMs?: number | undefined
  readonly heartbeatMs?: number | undefined
}): Promise<Served> => {
  const resolved = BackendConfig.resolve(options.config, "/nonexistent-data-dir")
  if (Either.isLeft(resolved)) throw new Error(resolved.left.message)
  const layer = Backend.layer({
    config: resolved.right,
    database: { _tag: "Sqlite", filename: ":memory:" },
    server: { heartbeat: Duration.millis(options.heartbeatMs ?? 15_000) },
    runtimes: {
      drainGrace: Duration.millis(200),
      remote: {
        probeInterval: Duration.millis(options.probeMs ?? 200),
        timeout: Duration.millis(options.timeoutMs ?? 3_000),
        reconnect: { initialDelay: Duration.millis(50), maxDelay: Duration.millis(500) }
      }
    }
  }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(HttpErrors.createServer, { host: "127.0.0.1", port: 0 })),
    Layer.provide([NodeContext.layer, NodeHttpClient.layerUndici, BackendAuth.BackendToken.layer(options.token)]),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(options.env ?? {})))))
  )
  const managed = ManagedRuntime.make(layer)
  const port = await managed.runPromise(portOf)
  return { port, url: `http://127.0.0.1:${port}`, dispose: () => managed.dispose() }
}
