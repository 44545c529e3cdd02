import type { FileSystem, HttpClient, HttpRouter, HttpServer } from "@effect/platform"
import type { SqlError } from "@effect/sql"
import type { MigrationError } from "@effect/sql/Migrator"
import { type ConfigError, Duration, Layer } from "effect"
import * as Audit from "./Audit.js"
import { type BackendToken, Sessions } from "./Auth.js"
import * as Store from "./Store.js"
import type { BackendConfigError, ResolvedConfig } from "./Config.js"
import * as EventProxy from "./EventProxy.js"
import * as Policy from "./Policy.js"
import * as RuntimeRegistry from "./RuntimeRegistry.js"
import * as Runtimes from "./Runtimes.js"
import * as Server from "./Server.js"

export interface BackendOptions {
  readonly config: ResolvedConfig
  /** Where sessions, the command audit and the observation audit live: SQLite (a file, or `:memory:`) or PostgreSQL. */
  readonly database: Store.Database
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
    readonly audit: Layer.Layer<
      Audit.Audit,
      SqlError.SqlError | MigrationError | ConfigError.ConfigError | Store.DatabaseError
    >
    /** Default: sessions in memory (one process). `layerStore` gives both, on one database. */
    readonly sessions?: Layer.Layer<Sessions, Store.DatabaseError> | undefined
    readonly server?: Server.ServerOptions | undefined
    readonly registry?: RuntimeRegistry.RegistryOptions | undefined
  }
): Layer.Layer<
  never,
  E | SqlError.SqlError | MigrationError | ConfigError.ConfigError | Store.DatabaseError,
  R | BackendToken | HttpServer.HttpServer | HttpRouter.HttpRouter.DefaultServices
> => {
  const registry = RuntimeRegistry.layer(options.registry).pipe(
    Layer.provide(handles),
    Layer.provide(options.policy),
    Layer.provideMerge(options.audit)
  )
  const services = EventProxy.layerWith({ bookmarkInterval: options.server?.bookmarkInterval }).pipe(
    Layer.provideMerge(registry),
    Layer.provideMerge(options.sessions ?? Sessions.layer)
  )
  return Server.layer(options.server).pipe(Layer.provide(services))
}

/**
 * The audit (commands and observed streams) and the sessions on one database, migrated at start. Pass the same
 * layer as `audit` and `sessions`: it is built once.
 */
export const layerStore = (database: Store.Database): Layer.Layer<Audit.Audit | Sessions, Store.DatabaseError> =>
  Layer.mergeAll(Audit.layer, Sessions.layerSql).pipe(Layer.provide(Store.layer(database)))

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
  | BackendConfigError
  | Runtimes.EmbeddedStoreError
  | SqlError.SqlError
  | MigrationError
  | ConfigError.ConfigError
  | Store.DatabaseError,
  | BackendToken
  | HttpServer.HttpServer
  | HttpRouter.HttpRouter.DefaultServices
  | FileSystem.FileSystem
  | HttpClient.HttpClient
> => {
  const store = layerStore(options.database)
  return layerServing(Runtimes.layer(options.config, options.runtimes), {
    policy: Policy.layerConfig(options.config),
    audit: store,
    sessions: store,
    server: { ...serverOptions(options.config), ...options.server },
    registry: { ...options.registry, workspaceId: options.config.workspaceId }
  })
}
