import { FileSystem, HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpClient, NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { DebugHeap, HttpErrors, Tracing } from "@yoi/runtime-server"
import { Cause, Console, Effect, Layer, Logger, Option, Redacted } from "effect"
import * as NodePath from "node:path"
import { BackendToken } from "./Auth.js"
import * as Backend from "./Backend.js"
import * as Cli from "./Cli.js"
import * as BackendConfig from "./Config.js"

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

const backend = (settings: Cli.Settings) => Effect.gen(function*() {
  const bind = settings.bind
  const dataDir = NodePath.resolve(settings.dataDir)
  const fs = yield* FileSystem.FileSystem
  yield* fs.makeDirectory(dataDir, { recursive: true }).pipe(
    Effect.mapError((e) => new BackendConfig.BackendConfigError({ message: `cannot create --data-dir: ${e.message}` }))
  )
  const config = yield* BackendConfig.load(Option.getOrUndefined(settings.config), dataDir)
  const tracing = Option.match(settings.otlpEndpoint, {
    // No span exporter: spans (one per request served and per call to a runtime, plus trace headers the runtime then
    // parses) would be pure overhead, about half the proxy's throughput.
    onNone: () => Layer.setTracerEnabled(false),
    onSome: (endpoint) => Tracing.layer({ endpoint, serviceName: "yoi-backend" })
  })
  // The ready line comes only after every runtime, the audit store and the server are up.
  return announce.pipe(
    Layer.provideMerge(Backend.layer({ config, auditDatabase: NodePath.join(dataDir, "backend.db") })),
    Layer.provideMerge(BackendToken.layerDataDir(dataDir)),
    Layer.provide(NodeHttpServer.layer(HttpErrors.createServer, { host: bind.host, port: bind.port })),
    Layer.provide(tracing),
    Layer.provide(DebugHeap.layer)
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
  NodeRuntime.runMain({ disableErrorReporting: true })
)
