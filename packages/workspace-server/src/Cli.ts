import { Options } from "@effect/cli"
import { Bind as RuntimeBind, Flags, Tracing } from "@yoi/runtime-server"
import { Config, Effect, Either, type LogLevel, type Option, type Redacted } from "effect"
import { BackendConfigError } from "./Config.js"

export const USAGE = `usage: yoi-backend [--bind <host:port>] [--config <file.json>] [--data-dir <dir>] [--otlp-endpoint <url>]

  --bind       where to listen (default 127.0.0.1:8787; port 0 picks a free port)   env YOI_BACKEND_BIND
  --config     the runtimes config file (default: one embedded SQLite runtime)     env YOI_BACKEND_CONFIG
  --data-dir   the Backend's own data: backend.db (audit), local.db (.yoi)       env YOI_BACKEND_DATA_DIR
  --database   postgres://… for sessions and audit, shared by replicas          env YOI_BACKEND_DATABASE
               (default: backend.db, SQLite, in the data directory)
  --log-level  all|trace|debug|info|warn|error|off (default info)                 env YOI_LOG_LEVEL
  --otlp-endpoint <url>   export traces over OTLP/HTTP to <url>/v1/traces (off if unset)
                          env OTEL_EXPORTER_OTLP_ENDPOINT
  --completions <shell>   print a bash, zsh or fish completion script

A flag wins over its environment variable. The Backend token is YOI_BACKEND_TOKEN; without it one is generated and
printed in a login URL; replicas share one token through YOI_BACKEND_TOKEN or YOI_BACKEND_TOKEN_FILE.`

export interface Bind {
  readonly host: string
  readonly port: number
}

export interface Settings {
  readonly bind: Bind
  readonly config: Option.Option<string>
  readonly dataDir: string
  readonly database: Option.Option<Redacted.Redacted<string>>
  readonly logLevel: LogLevel.LogLevel
  /** Where traces go over OTLP/HTTP; none: no tracing at all. */
  readonly otlpEndpoint: Option.Option<string>
}

/** `host:port`, `[v6]:port`, or `:port` (all interfaces). */
export const parseBind = (bind: string): Either.Either<Bind, string> =>
  Either.mapLeft(
    RuntimeBind.parse(bind, { anyHost: "0.0.0.0" }),
    () => `must be host:port (port 0-65535), got ${JSON.stringify(bind)}`
  )

/** The flags, each falling back to its environment variable. */
export const options: Options.Options<Settings> = Options.all({
  bind: Flags.text("bind", "YOI_BACKEND_BIND").pipe(
    Options.withDefault("127.0.0.1:8787"),
    Flags.parsed("bind", "YOI_BACKEND_BIND", parseBind)
  ),
  config: Flags.text("config", "YOI_BACKEND_CONFIG").pipe(Options.optional),
  dataDir: Flags.text("data-dir", "YOI_BACKEND_DATA_DIR").pipe(Options.withDefault(".yoi")),
  // Read as a secret: the value may hold a password, so no message ever quotes it.
  database: Options.redacted("database").pipe(
    Options.withFallbackConfig(Config.redacted("YOI_BACKEND_DATABASE")),
    Options.optional
  ),
  logLevel: Flags.logLevel("YOI_LOG_LEVEL"),
  otlpEndpoint: Flags.text("otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT").pipe(
    Flags.parsed("otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", Tracing.parseEndpoint),
    Options.optional
  )
})

export const spec: Flags.Spec<Settings> = {
  name: "yoi-backend",
  version: "0.1.0",
  options,
  usage: USAGE,
  withLogLevel: (settings, logLevel) => ({ ...settings, logLevel })
}

/** The command line (flags over env over defaults), or a text to print (`--help`, `--completions`). */
export const parse = (argv: ReadonlyArray<string>) =>
  Flags.parse(spec, argv).pipe(
    Effect.mapError((e) => new BackendConfigError({ message: e.usage ? `${e.message}\n${USAGE}` : e.message }))
  )
