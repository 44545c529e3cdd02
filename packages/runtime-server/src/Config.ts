import { Config, ConfigError, Data, Either, LogLevel, type Option, type Redacted } from "effect"
import { parseEndpoint } from "./Tracing.js"

/** Why the binary refused to start; the message is printed as is. */
export class StartupError extends Data.TaggedError("StartupError")<{ readonly message: string }> {}

export interface Bind {
  readonly host: string
  readonly port: number
}

export type Store =
  | { readonly _tag: "Memory" }
  | { readonly _tag: "Sqlite"; readonly filename: string }

export interface ServerConfig {
  readonly runtimeId: string
  readonly displayName: Option.Option<string>
  readonly bind: Bind
  readonly store: Option.Option<Store>
  readonly token: Option.Option<Redacted.Redacted>
  readonly tokenFile: Option.Option<string>
  readonly dataDir: string
  readonly logLevel: LogLevel.LogLevel
  readonly insecureNoAuth: boolean
  readonly graceMs: number
  readonly heartbeatMs: number
  readonly maxEventStreams: number
  readonly otlpEndpoint: Option.Option<string>
}

/** Each flag and the environment variable it overrides. */
export const flags = {
  "runtime-id": { env: "YOI_RUNTIME_ID", type: "string" },
  "display-name": { env: "YOI_RUNTIME_DISPLAY_NAME", type: "string" },
  bind: { env: "YOI_RUNTIME_BIND", type: "string" },
  store: { env: "YOI_RUNTIME_STORE", type: "string" },
  "token-file": { env: "YOI_RUNTIME_TOKEN_FILE", type: "string" },
  "data-dir": { env: "YOI_DATA_DIR", type: "string" },
  "log-level": { env: "YOI_LOG_LEVEL", type: "string" },
  "grace-ms": { env: "YOI_SHUTDOWN_GRACE_MS", type: "string" },
  "insecure-no-auth": { env: "YOI_INSECURE_NO_AUTH", type: "boolean" },
  "heartbeat-ms": { env: "YOI_EVENTS_HEARTBEAT_MS", type: "string" },
  "max-event-streams": { env: "YOI_MAX_EVENT_STREAMS", type: "string" },
  "otlp-endpoint": { env: "OTEL_EXPORTER_OTLP_ENDPOINT", type: "string" },
  help: { env: "", type: "boolean" }
} as const

export const usage = `Usage: yoi-runtime [flags]

Serves a Yoi Runtime over HTTP for a Backend (never for browsers directly).

  --runtime-id <id>        runtime id, [a-z0-9][a-z0-9-]{0,62}      YOI_RUNTIME_ID (default local)
  --display-name <name>    name shown to people                     YOI_RUNTIME_DISPLAY_NAME
  --bind <host:port>       address to listen on; port 0 = any free  YOI_RUNTIME_BIND (default 127.0.0.1:38800)
  --store <store>          memory | sqlite:<path>                   YOI_RUNTIME_STORE (default sqlite under --data-dir)
  --token-file <path>      file holding the bearer token            YOI_RUNTIME_TOKEN_FILE, or the token in YOI_RUNTIME_TOKEN
  --data-dir <dir>         where the default SQLite store lives     YOI_DATA_DIR (default .yoi)
  --log-level <level>      all|trace|debug|info|warn|error|off    YOI_LOG_LEVEL (default info)
  --grace-ms <ms>          shutdown grace for running turns         YOI_SHUTDOWN_GRACE_MS (default 10000)
  --insecure-no-auth       serve without a token (loopback only)    YOI_INSECURE_NO_AUTH
  --heartbeat-ms <ms>      event stream heartbeat interval          YOI_EVENTS_HEARTBEAT_MS (default 15000)
  --max-event-streams <n>  event streams open at once (then 503)    YOI_MAX_EVENT_STREAMS (default 1024)
  --otlp-endpoint <url>    export traces over OTLP/HTTP (off if unset) OTEL_EXPORTER_OTLP_ENDPOINT
  --help                   print this and exit
`

export const parseBind = (text: string): Either.Either<Bind, string> => {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text.trim())
  const port = match === null ? NaN : Number(match[3])
  if (match === null || !(port >= 0 && port <= 65535)) {
    return Either.left(`expected host:port (e.g. 127.0.0.1:38800, [::1]:0), got ${JSON.stringify(text)}`)
  }
  return Either.right({ host: match[1] ?? match[2]!, port })
}

export const parseStore = (text: string): Either.Either<Store, string> => {
  if (text === "memory") return Either.right({ _tag: "Memory" })
  if (text.startsWith("sqlite:") && text.length > "sqlite:".length) {
    return Either.right({ _tag: "Sqlite", filename: text.slice("sqlite:".length) })
  }
  return Either.left(`expected memory or sqlite:<path>, got ${JSON.stringify(text)}`)
}

export const isLoopback = (host: string) =>
  host === "localhost" || host === "::1" || /^127(?:\.\d{1,3}){3}$/.test(host)

const mapped = <A>(name: string, config: Config.Config<string>, parse: (s: string) => Either.Either<A, string>) =>
  Config.mapOrFail(config, (s) => Either.mapLeft(parse(s), (message) => ConfigError.InvalidData([name], message)))

/** The binary's whole configuration; flags are read as the environment variables they override. */
export const config: Config.Config<ServerConfig> = Config.all({
  runtimeId: Config.string("YOI_RUNTIME_ID").pipe(Config.withDefault("local"), Config.withDescription("runtime id")),
  displayName: Config.option(Config.string("YOI_RUNTIME_DISPLAY_NAME").pipe(Config.withDescription("display name"))),
  bind: mapped("YOI_RUNTIME_BIND", Config.string("YOI_RUNTIME_BIND").pipe(Config.withDefault("127.0.0.1:38800")), parseBind).pipe(
    Config.withDescription("host:port to listen on")
  ),
  store: Config.option(mapped("YOI_RUNTIME_STORE", Config.string("YOI_RUNTIME_STORE"), parseStore)).pipe(
    Config.withDescription("memory or sqlite:<path>")
  ),
  token: Config.option(Config.redacted("YOI_RUNTIME_TOKEN")).pipe(Config.withDescription("bearer token")),
  tokenFile: Config.option(Config.string("YOI_RUNTIME_TOKEN_FILE")).pipe(
    Config.withDescription("file holding the bearer token")
  ),
  dataDir: Config.string("YOI_DATA_DIR").pipe(Config.withDefault(".yoi"), Config.withDescription("data directory")),
  logLevel: Config.logLevel("YOI_LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info)),
  insecureNoAuth: Config.boolean("YOI_INSECURE_NO_AUTH").pipe(
    Config.withDefault(false),
    Config.withDescription("serve without a token, on a loopback address only")
  ),
  graceMs: Config.integer("YOI_SHUTDOWN_GRACE_MS").pipe(
    Config.withDefault(10_000),
    Config.withDescription("shutdown grace period in milliseconds")
  ),
  heartbeatMs: Config.integer("YOI_EVENTS_HEARTBEAT_MS").pipe(
    Config.validate({ message: "must be at least 1", validation: (n) => n >= 1 }),
    Config.withDefault(15_000),
    Config.withDescription("event stream heartbeat interval in milliseconds")
  ),
  maxEventStreams: Config.integer("YOI_MAX_EVENT_STREAMS").pipe(
    Config.validate({ message: "must be at least 1", validation: (n) => n >= 1 }),
    Config.withDefault(1024),
    Config.withDescription("event streams open at once; more are refused with 503")
  ),
  otlpEndpoint: Config.option(
    Config.mapOrFail(
      Config.string("OTEL_EXPORTER_OTLP_ENDPOINT"),
      (s) => Either.mapLeft(parseEndpoint(s), (message) => ConfigError.InvalidData([], message))
    )
  ).pipe(Config.withDescription("OTLP/HTTP collector base URL for traces"))
})
