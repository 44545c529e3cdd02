import { FileSystem, HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpClient, NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { DebugHeap, HttpErrors, Tracing } from "@yoi/runtime-server"
import { Cause, Console, Effect, Layer, Logger, Option, Redacted } from "effect"
import * as NodePath from "node:path"
import { BackendToken } from "./Auth.js"
import * as Backend from "./Backend.js"
import * as Cli from "./Cli.js"
import * as BackendConfig from "./Config.js"
import * as Store from "./Store.js"

/** Prints the ready line (and, when the token was generated, the login URL) once the server listens. */
const announce = Layer.effectDiscard(Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const { file, generated, token } = yield* BackendToken
  const address = server.address
  const url = address._tag === "TcpAddress"
    ? `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname}:${address.port}`
    : `unix:${address.path}`
  yield* Console.log(`yoi-backend listening on ${url}`)
  yield* Console.log(
    generated
      ? `sign in: ${url}/login?token=${Redacted.value(token)}`
      : `sign in: ${url}/login?token=<YOI_BACKEND_TOKEN>`
  )
  if (file !== undefined) yield* Console.log(`token: kept in ${file} (export YOI_BACKEND_TOKEN=$(cat ${file}))`)
}))

/**
 * A log line from a finalizer: acquired last, "draining" is the first thing said on SIGTERM/SIGINT; acquired first,
 * "drained" the last, once the server, the runtimes and the stores have closed (as yoi-runtime logs them).
 */
const logOnShutdown = (message: string) => Layer.scopedDiscard(Effect.addFinalizer(() => Effect.logInfo(message)))

/** `--database` (or `YOI_BACKEND_DATABASE`), else the config's `database`, else `backend.db` in the data directory. */
const resolveDatabase = (settings: Cli.Settings, config: BackendConfig.ResolvedConfig, dataDir: string) =>
  Effect.gen(function*() {
    const fromConfig = config.database
    const url = Option.isSome(settings.database)
      ? settings.database.value
      : fromConfig === undefined
        ? undefined
        : typeof fromConfig === "string"
          ? Redacted.make(fromConfig)
          : yield* BackendConfig.resolveToken(fromConfig, "database")
    if (url === undefined) return { _tag: "Sqlite", filename: NodePath.join(dataDir, "backend.db") } as const
    const parsed = Store.parseDatabaseUrl(Redacted.value(url))
    if (parsed instanceof Store.DatabaseError) return yield* parsed
    return parsed
  })

const backend = (settings: Cli.Settings) => Effect.gen(function*() {
  const bind = settings.bind
  const dataDir = NodePath.resolve(settings.dataDir)
  const fs = yield* FileSystem.FileSystem
  yield* fs.makeDirectory(dataDir, { recursive: true }).pipe(
    Effect.mapError((e) => new BackendConfig.BackendConfigError({ message: `cannot create --data-dir: ${e.message}` }))
  )
  const config = yield* BackendConfig.load(Option.getOrUndefined(settings.config), dataDir)
  const database = yield* resolveDatabase(settings, config, dataDir)
  yield* Effect.logInfo(`Backend database: ${Store.describe(database)}`)
  const tracing = Option.match(settings.otlpEndpoint, {
    // No span exporter: spans (one per request served and per call to a runtime, plus trace headers the runtime then
    // parses) would be pure overhead, about half the proxy's throughput.
    onNone: () => Layer.setTracerEnabled(false),
    onSome: (endpoint) => Tracing.layer({ endpoint, serviceName: "yoi-backend" })
  })
  // The ready line comes only after every runtime, the audit store and the server are up.
  return logOnShutdown("draining").pipe(
    Layer.provideMerge(announce),
    Layer.provideMerge(Backend.layer({ config, database })),
    Layer.provideMerge(BackendToken.layerDataDir(dataDir)),
    Layer.provide(NodeHttpServer.layer(HttpErrors.createServer, { host: bind.host, port: bind.port })),
    Layer.provide(tracing),
    Layer.provide(DebugHeap.layer),
    Layer.provide(logOnShutdown("drained"))
  )
}).pipe(Layer.unwrapEffect)

Cli.parse(process.argv.slice(2)).pipe(
  Effect.flatMap((parsed) =>
    parsed._tag === "Print"
      ? Console.log(parsed.text)
      : Layer.launch(backend(parsed.value)).pipe(Logger.withMinimumLogLevel(parsed.value.logLevel))
  ),
  Effect.provide(Layer.mergeAll(NodeContext.layer, NodeHttpClient.layerUndici)),
  // A failure (bad flag, bad config, a store that cannot open) is one readable line; a defect is logged with its cause.
  Effect.tapErrorCause((cause) =>
    Option.match(Cause.failureOption(cause), {
      onSome: (e) =>
        typeof e === "object" && e !== null && "message" in e && typeof e.message === "string"
          ? Console.error(`yoi-backend: ${e.message}`)
          : Effect.logError("yoi-backend failed", cause),
      onNone: () => (Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("yoi-backend failed", cause))
    })
  ),
  // Logs go to stderr (logfmt), as yoi-runtime's do; stdout carries only the ready and sign-in lines.
  Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
