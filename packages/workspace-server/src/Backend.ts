import type { FileSystem, HttpClient, HttpRouter, HttpServer } from "@effect/platform"
import type { SqlError } from "@effect/sql"
import type { MigrationError } from "@effect/sql/Migrator"
import { type ConfigError, Duration, Layer } from "effect"
import * as Audit from "./Audit.js"
import { type BackendToken, Sessions } from "./Auth.js"
import type { BackendConfigError, ResolvedConfig } from "./Config.js"
import * as EventProxy from "./EventProxy.js"
import * as Policy from "./Policy.js"
import * as RuntimeRegistry from "./RuntimeRegistry.js"
import * as Runtimes from "./Runtimes.js"
import * as Server from "./Server.js"

export interface BackendOptions {
  readonly config: ResolvedConfig
  /** The audit database: a file (WAL) or `:memory:`. */
  readonly auditDatabase: string
  readonly server?: Server.ServerOptions | undefined
  readonly runtimes?: Runtimes.RuntimesOptions | undefined
  readonly registry?: RuntimeRegistry.RegistryOptions | undefined
}

/**
 * The Backend's services over any set of runtime handles: policy, audit, the registry and the event proxy, served
 * as the browser API. Tests give their own handles; `layer` builds them from config.
 */
export const layerServing = <E, R>(
  handles: Layer.Layer<RuntimeRegistry.RuntimeHandles, E, R>,
  options: {
    readonly policy: Layer.Layer<Policy.Policy>
    readonly audit: Layer.Layer<Audit.Audit, SqlError.SqlError | MigrationError | ConfigError.ConfigError>
    readonly server?: Server.ServerOptions | undefined
    readonly registry?: RuntimeRegistry.RegistryOptions | undefined
  }
): Layer.Layer<
  never,
  E | SqlError.SqlError | MigrationError | ConfigError.ConfigError,
  R | BackendToken | HttpServer.HttpServer | HttpRouter.HttpRouter.DefaultServices
> => {
  const registry = RuntimeRegistry.layer(options.registry).pipe(
    Layer.provide(handles),
    Layer.provide(options.policy),
    Layer.provideMerge(options.audit)
  )
  const services = EventProxy.layerWith({ bookmarkInterval: options.server?.bookmarkInterval }).pipe(
    Layer.provideMerge(registry),
    Layer.provideMerge(Sessions.layer)
  )
  return Server.layer(options.server).pipe(Layer.provide(services))
}

/** The event stream settings of the config file as server options. */
export const serverOptions = (config: ResolvedConfig): Server.ServerOptions => {
  const events = config.events ?? {}
  return {
    ...(events.heartbeat_ms === undefined ? {} : { heartbeat: Duration.millis(events.heartbeat_ms) }),
    ...(events.stall_timeout_ms === undefined ? {} : { stallTimeout: Duration.millis(events.stall_timeout_ms) }),
    ...(events.bookmark_ms === undefined ? {} : { bookmarkInterval: Duration.millis(events.bookmark_ms) })
  }
}

/** The whole Backend from its config: runtimes (embedded, remote, legacy), policy, audit store, browser API. */
export const layer = (
  options: BackendOptions
): Layer.Layer<
  never,
  BackendConfigError | Runtimes.EmbeddedStoreError | SqlError.SqlError | MigrationError | ConfigError.ConfigError,
  | BackendToken
  | HttpServer.HttpServer
  | HttpRouter.HttpRouter.DefaultServices
  | FileSystem.FileSystem
  | HttpClient.HttpClient
> =>
  layerServing(Runtimes.layer(options.config, options.runtimes), {
    policy: Policy.layerConfig(options.config),
    audit: Audit.layerSqlite(options.auditDatabase),
    server: { ...serverOptions(options.config), ...options.server },
    registry: { ...options.registry, workspaceId: options.config.workspaceId }
  })
