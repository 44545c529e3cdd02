import { FileSystem, HttpServer, Path, type Terminal } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { LlmEngines } from "@yoi/llm-engine"
import { Ids, layerMemory, Profiles, type RuntimeServices } from "@yoi/worker-runtime"
import { describeUrl, layerPg } from "@yoi/worker-runtime/pg"
import { layerSqlite } from "@yoi/worker-runtime/sqlite"
import { Console, Effect, Layer, Logger, Option, Redacted, Schema } from "effect"
import * as Auth from "./Auth.js"
import { isLoopback, options, type ServerConfig, StartupError, token, usage } from "./Config.js"
import * as DebugHeap from "./DebugHeap.js"
import * as Flags from "./Flags.js"
import * as RuntimeServer from "./Server.js"
import * as Standby from "./Standby.js"
import * as Tracing from "./Tracing.js"

const MIN_TOKEN_LENGTH = 16

/** `yoi-runtime`'s command line: flags over environment variables over defaults. */
export const spec: Flags.Spec<Omit<ServerConfig, "token">> = {
  name: "yoi-runtime",
  version: "0.1.0",
  options,
  usage,
  withLogLevel: (value, logLevel) => ({ ...value, logLevel })
}

/** Reads the whole configuration: the flags (each over its env var) and the token from the environment. */
export const parseArgs = (
  argv: ReadonlyArray<string>
): Effect.Effect<Flags.Parsed<ServerConfig>, StartupError, FileSystem.FileSystem | Path.Path | Terminal.Terminal> =>
  Flags.parse(spec, argv).pipe(
    Effect.mapError((e) => new StartupError({ message: e.usage ? `${e.message}\n\n${usage}` : e.message })),
    Effect.flatMap((parsed): Effect.Effect<Flags.Parsed<ServerConfig>> =>
      parsed._tag === "Print"
        ? Effect.succeed(parsed)
        : Effect.map(
          Effect.orElseSucceed(token, () => Option.none()),
          (t) => ({ _tag: "Run", value: { ...parsed.value, token: t } })
        ))
  )

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

/** Reads `--config`: engine profiles, offered tools and scope roots. A bad file is one line naming the field. */
export const readPolicy = (file: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError(() => new StartupError({ message: `cannot read the config file ${file}` }))
    )
    const raw = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: () => new StartupError({ message: `the config file ${file} is not valid JSON` })
    })
    return yield* Profiles.decodePolicyConfig(raw).pipe(
      Effect.mapError((e) => new StartupError({ message: `invalid config ${file}: ${e.message}` }))
    )
  })

const layerError = (configFile: Option.Option<string>, what: string) =>
  (e: { readonly _tag: string; readonly message: string }) =>
    new StartupError({
      message: e._tag === "RuntimeConfigError"
        ? `invalid config${Option.isSome(configFile) ? ` ${configFile.value}` : ""}: ${e.message}`
        : `${what}: ${e.message}`
    })

const runtimeLayer = (
  cfg: ServerConfig,
  bound: Standby.Bound
): Effect.Effect<Layer.Layer<RuntimeServices, StartupError>, StartupError, Path.Path | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const policy = Option.isSome(cfg.configFile) ? yield* readPolicy(cfg.configFile.value) : undefined
    const options = {
      runtimeId: cfg.runtimeId,
      kind: "process" as const,
      policy,
      bookmarkIntervalMs: cfg.bookmarkMs,
      engineLayer: LlmEngines.layerFetch(),
      ...(Option.isSome(cfg.queueLimit) ? { queueLimit: cfg.queueLimit.value } : {}),
      ...(Option.isSome(cfg.displayName) ? { displayName: cfg.displayName.value } : {})
    }
    const store = Option.getOrElse(cfg.store, () => ({
      _tag: "Sqlite" as const,
      filename: path.join(cfg.dataDir, `runtime-${cfg.runtimeId}.db`)
    }))
    if (store._tag === "Memory") {
      return layerMemory(options).pipe(Layer.mapError(layerError(cfg.configFile, "cannot start the runtime")))
    }
    if (store._tag === "Postgres") {
      return layerPg({
        url: store.url,
        schema: cfg.storeSchema,
        leaseMs: cfg.leaseMs,
        onStandby: (holder) => Standby.serve(cfg.runtimeId, holder, bound),
        ...options
      }).pipe(
        Layer.mapError(layerError(cfg.configFile, `cannot open the store ${describeUrl(store.url)}`))
      )
    }
    return layerSqlite({ filename: store.filename, ...options }).pipe(
      Layer.mapError(layerError(cfg.configFile, `cannot open the store ${store.filename}`))
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
 * The whole `yoi-runtime` process from its argv: configuration (`@effect/cli` flags over env), logging to stderr,
 * the Runtime over the chosen store, the HTTP server with auth, and the ready line on stdout once it listens.
 */
export const layer = (argv: ReadonlyArray<string>): Layer.Layer<never, StartupError> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const parsed = yield* parseArgs(argv)
    // Interruption ends `Layer.launch` with exit code 0.
    if (parsed._tag === "Print") return Layer.effectDiscard(Effect.zipRight(Console.log(parsed.text), Effect.interrupt))
    const cfg = parsed.value
    if (!isRuntimeId(cfg.runtimeId)) {
      return yield* new StartupError({
        message: "--runtime-id must be 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit"
      })
    }
    const auth = yield* resolveAuth(cfg)
    // A standby listens first and records the port it got; the serving server binds the same one after it.
    const bound: Standby.Bound = { host: cfg.bind.host, port: cfg.bind.port }
    const runtime = yield* runtimeLayer(cfg, bound)
    const server = Layer.unwrapEffect(Effect.sync(() =>
      RuntimeServer.layer({
        host: bound.host,
        port: bound.port,
        auth,
        tracing: Option.isSome(cfg.otlpEndpoint),
        graceMs: cfg.graceMs,
        events: { heartbeat: cfg.heartbeatMs, maxStreams: cfg.maxEventStreams, stallTimeout: cfg.stallTimeoutMs }
      })
    )).pipe(
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
