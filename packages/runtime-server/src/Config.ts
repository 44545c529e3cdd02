import { Options } from "@effect/cli"
import { Config, Data, Either, type LogLevel, type Option, type Redacted } from "effect"
import * as BindValue from "./Bind.js"
import * as Flags from "./Flags.js"

/** Why the binary refused to start; the message is printed as is. */
export class StartupError extends Data.TaggedError("StartupError")<{ readonly message: string }> {}

export type Bind = BindValue.Bind

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
  /** `--config <file>` (`YOI_RUNTIME_CONFIG`): engine profiles, tools and scope roots. */
  readonly configFile: Option.Option<string>
  /** The most inputs one worker's queue holds; wins over the config file's `queue_limit`. */
  readonly queueLimit: Option.Option<number>
}

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
  --config <file>          engine profiles, tools and scope roots   YOI_RUNTIME_CONFIG (default: echo only, no
                           (JSON; see docs/engines.md)              tools, no scopes)
  --completions <shell>    print a bash, zsh or fish completion script
  --help                   print this and exit

A flag wins over its environment variable.
`

export const parseBind = (text: string): Either.Either<Bind, string> =>
  Either.mapLeft(
    BindValue.parse(text),
    () => `expected host:port (e.g. 127.0.0.1:38800, [::1]:0), got ${JSON.stringify(text)}`
  )

export const parseStore = (text: string): Either.Either<Store, string> => {
  if (text === "memory") return Either.right({ _tag: "Memory" })
  if (text.startsWith("sqlite:") && text.length > "sqlite:".length) {
    return Either.right({ _tag: "Sqlite", filename: text.slice("sqlite:".length) })
  }
  return Either.left(`expected memory or sqlite:<path>, got ${JSON.stringify(text)}`)
}

export const isLoopback = (host: string) =>
  host === "localhost" || host === "::1" || /^127(?:\.\d{1,3}){3}$/.test(host)

/**
 * The binary's flags, each falling back to its environment variable. The token itself is never a flag (argv shows in
 * `ps`): it comes from `--token-file` or `YOI_RUNTIME_TOKEN`.
 */
export const options: Options.Options<Omit<ServerConfig, "token">> = Options.all({
  runtimeId: Flags.text("runtime-id", "YOI_RUNTIME_ID").pipe(Options.withDefault("local")),
  displayName: Flags.text("display-name", "YOI_RUNTIME_DISPLAY_NAME").pipe(Options.optional),
  bind: Flags.text("bind", "YOI_RUNTIME_BIND").pipe(
    Options.withDefault("127.0.0.1:38800"),
    Flags.parsed("bind", "YOI_RUNTIME_BIND", parseBind)
  ),
  store: Flags.text("store", "YOI_RUNTIME_STORE").pipe(
    Flags.parsed("store", "YOI_RUNTIME_STORE", parseStore),
    Options.optional
  ),
  tokenFile: Flags.text("token-file", "YOI_RUNTIME_TOKEN_FILE").pipe(Options.optional),
  dataDir: Flags.text("data-dir", "YOI_DATA_DIR").pipe(Options.withDefault(".yoi")),
  logLevel: Flags.logLevel("YOI_LOG_LEVEL"),
  insecureNoAuth: Flags.boolean("insecure-no-auth", "YOI_INSECURE_NO_AUTH"),
  graceMs: Flags.integer("grace-ms", "YOI_SHUTDOWN_GRACE_MS", 10_000),
  heartbeatMs: Flags.integer("heartbeat-ms", "YOI_EVENTS_HEARTBEAT_MS", 15_000, 1),
  maxEventStreams: Flags.integer("max-event-streams", "YOI_MAX_EVENT_STREAMS", 1024, 1),
  configFile: Flags.text("config", "YOI_RUNTIME_CONFIG").pipe(Options.optional),
  queueLimit: Flags.text("queue-limit", "YOI_QUEUE_LIMIT").pipe(
    Flags.parsed("queue-limit", "YOI_QUEUE_LIMIT", Flags.parseInteger(1)),
    Options.optional
  )
})

/** The bearer token from the environment, when `--token-file` is not given. */
export const token: Config.Config<Option.Option<Redacted.Redacted>> = Config.option(Config.redacted("YOI_RUNTIME_TOKEN"))
