import { FileSystem, HttpServer, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Ids, layerMemory, type RuntimeServices } from "@yoi/worker-runtime"
import { layerSqlite } from "@yoi/worker-runtime/sqlite"
import { ConfigError, ConfigProvider, Console, Effect, Layer, Logger, Option, Redacted, Schema } from "effect"
import { parseArgs } from "node:util"
import * as Auth from "./Auth.js"
import * as DebugHeap from "./DebugHeap.js"
import { config, flags, isLoopback, type ServerConfig, StartupError, usage } from "./Config.js"
import * as RuntimeServer from "./Server.js"
import * as Tracing from "./Tracing.js"

const MIN_TOKEN_LENGTH = 16

/** Flags become a config provider keyed by the environment variables they override, so flags win. */
export const parseFlags = (argv: ReadonlyArray<string>) =>
  Effect.try({
    try: () => parseArgs({ args: [...argv], options: flags, strict: true, allowPositionals: false }).values,
    catch: (error) =>
      new StartupError({ message: `${error instanceof Error ? error.message : String(error)}\n\n${usage}` })
  }).pipe(Effect.map((values) => {
    const entries: Array<[string, string]> = []
    for (const [name, value] of Object.entries(values)) {
      const flag = flags[name as keyof typeof flags]
      if (flag.env !== "" && value !== undefined) entries.push([flag.env, String(value)])
    }
    return {
      help: values.help === true,
      provider: ConfigProvider.fromMap(new Map(entries)).pipe(ConfigProvider.orElse(() => ConfigProvider.fromEnv()))
    }
  }))

const envOf = (path: ReadonlyArray<string>) => {
  const name = path.join("_")
  const flag = Object.entries(flags).find(([, f]) => f.env !== "" && f.env === name)
  return flag === undefined ? name : `--${flag[0]} (${name})`
}

/** A default turns "invalid" into "invalid or missing": report the invalid part. */
const configMessage = (error: ConfigError.ConfigError): string => {
  switch (error._op) {
    case "And":
    case "Or":
      return ConfigError.isMissingDataOnly(error.left) ? configMessage(error.right) : configMessage(error.left)
    case "InvalidData":
    case "MissingData":
      return `${envOf(error.path)}: ${error.message}`
    default:
      return error.message
  }
}

/** The token comes from a file (--token-file, YOI_RUNTIME_TOKEN_FILE) or YOI_RUNTIME_TOKEN; it is never logged. */
const resolveAuth = (cfg: ServerConfig) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const fromFile = yield* Option.match(cfg.tokenFile, {
      onNone: () => Effect.succeed(Option.none<Redacted.Redacted>()),
      onSome: (file) =>
        fs.readFileString(file).pipe(
          Effect.map((text) => Option.some(Redacted.make(text.trim()))),
          Effect.mapError(() => new StartupError({ message: `cannot read the token file ${file}` }))
        )
    })
    const token = Option.orElse(fromFile, () => cfg.token)
    if (cfg.insecureNoAuth) {
      if (Option.isSome(token)) {
        return yield* new StartupError({ message: "--insecure-no-auth was given together with a token: choose one" })
      }
      if (!isLoopback(cfg.bind.host)) {
        return yield* new StartupError({
          message: `--insecure-no-auth serves only on a loopback address (127.0.0.1, ::1, localhost), not ${cfg.bind.host}`
        })
      }
      return Auth.none
    }
    if (Option.isNone(token)) {
      return yield* new StartupError({
        message: "no token: set YOI_RUNTIME_TOKEN or pass --token-file <path> (or, on loopback only, --insecure-no-auth)"
      })
    }
    if (Redacted.value(token.value).length < MIN_TOKEN_LENGTH) {
      return yield* new StartupError({ message: `the token must be at least ${MIN_TOKEN_LENGTH} characters long` })
    }
    return Auth.token(token.value)
  })

const runtimeLayer = (cfg: ServerConfig): Effect.Effect<Layer.Layer<RuntimeServices, StartupError>, never, Path.Path> =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const options = {
      runtimeId: cfg.runtimeId,
      ...(Option.isSome(cfg.displayName) ? { displayName: cfg.displayName.value } : {})
    }
    const store = Option.getOrElse(cfg.store, () => ({
      _tag: "Sqlite" as const,
      filename: path.join(cfg.dataDir, `runtime-${cfg.runtimeId}.db`)
    }))
    if (store._tag === "Memory") {
      return layerMemory(options).pipe(
        Layer.mapError((e) => new StartupError({ message: `cannot start the runtime: ${e.message}` }))
      )
    }
    return layerSqlite({ filename: store.filename, ...options }).pipe(
      Layer.mapError((e) => new StartupError({ message: `cannot open the store ${store.filename}: ${e.message}` }))
    )
  })

const readyLine = (runtimeId: string) =>
  Layer.effectDiscard(HttpServer.addressWith((address) =>
    Console.log(
      address._tag === "TcpAddress"
        ? `yoi-runtime ${runtimeId} listening on http://${
          address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname
        }:${address.port}`
        : `yoi-runtime ${runtimeId} listening on ${address.path}`
    )
  ))

const isRuntimeId = Schema.is(Ids.RuntimeId)

/**
 * The whole `yoi-runtime` process from its argv: configuration (flags over env), logging to stderr, the Runtime
 * over the chosen store, the HTTP server with auth, and the ready line on stdout once it listens.
 */
export const layer = (argv: ReadonlyArray<string>): Layer.Layer<never, StartupError> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const { help, provider } = yield* parseFlags(argv)
    // Interruption ends `Layer.launch` with exit code 0.
    if (help) return Layer.effectDiscard(Effect.zipRight(Console.log(usage), Effect.interrupt))
    const cfg = yield* Effect.withConfigProvider(config, provider).pipe(
      Effect.mapError((error) => new StartupError({ message: configMessage(error) }))
    )
    if (!isRuntimeId(cfg.runtimeId)) {
      return yield* new StartupError({
        message: "--runtime-id must be 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit"
      })
    }
    const auth = yield* resolveAuth(cfg)
    const runtime = yield* runtimeLayer(cfg)
    const server = RuntimeServer.layer({
      host: cfg.bind.host,
      port: cfg.bind.port,
      auth,
      tracing: Option.isSome(cfg.otlpEndpoint),
      graceMs: cfg.graceMs,
      events: { heartbeat: cfg.heartbeatMs, maxStreams: cfg.maxEventStreams }
    }).pipe(
      Layer.mapError((e) =>
        new StartupError({
          message: `cannot listen on ${cfg.bind.host}:${cfg.bind.port}: ${
            e.cause instanceof Error ? e.cause.message : String(e.cause)
          }`
        })
      )
    )
    const tracing = Option.match(cfg.otlpEndpoint, {
      onNone: () => Layer.empty,
      onSome: (endpoint) => Tracing.layer({ endpoint, serviceName: "yoi-runtime" })
    })
    return readyLine(cfg.runtimeId).pipe(
      Layer.provide(server),
      Layer.provide(runtime),
      Layer.provide(tracing),
      Layer.provide(DebugHeap.layer),
      Layer.provide(Logger.minimumLogLevel(cfg.logLevel))
    )
  })).pipe(
    Layer.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))),
    Layer.provide(NodeContext.layer)
  )

/** Prints why the process could not start (one clean line) and fails so that the exit code is non-zero. */
export const reportStartupFailure = <A, R>(effect: Effect.Effect<A, StartupError, R>) =>
  Effect.tapError(effect, (error) => Console.error(`yoi-runtime: ${error.message}`))
