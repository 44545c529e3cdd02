import { Options } from "@effect/cli"
import { Config, Data, Either, type LogLevel, type Option, Redacted } from "effect"
import * as BindValue from "./Bind.js"
import * as Flags from "./Flags.js"
import { parseEndpoint } from "./Tracing.js"

/** Why the binary refused to start; the message is printed as is. */
export class StartupError extends Data.TaggedError("StartupError")<{ readonly message: string }> {}

export type Bind = BindValue.Bind

export type Store =
  | { readonly _tag: "Memory" }
  | { readonly _tag: "Sqlite"; readonly filename: string }
  | { readonly _tag: "Postgres"; readonly url: Redacted.Redacted<string> }

export interface ServerConfig {
  readonly runtimeId: string
  readonly displayName: Option.Option<string>
  readonly bind: Bind
  readonly store: Option.Option<Store>
  /** The PostgreSQL schema of the store (`--store-schema`). */
  readonly storeSchema: string
  /** The PostgreSQL owner lease (`--lease-ms`). */
  readonly leaseMs: number
  readonly token: Option.Option<Redacted.Redacted>
  readonly tokenFile: Option.Option<string>
  readonly dataDir: string
  readonly logLevel: LogLevel.LogLevel
  readonly insecureNoAuth: boolean
  readonly graceMs: number
  readonly heartbeatMs: number
  readonly maxEventStreams: number
  /** How often a filtered event stream gets a `stream.bookmark` (when its position moved). */
  readonly bookmarkMs: number
  /** A stream whose reader stopped reading is dropped after this long without progress. */
  readonly stallTimeoutMs: number
  /** `--config <file>` (`YOI_RUNTIME_CONFIG`): engine profiles, tools and scope roots. */
  readonly configFile: Option.Option<string>
  /** `--otlp-endpoint <url>` (`OTEL_EXPORTER_OTLP_ENDPOINT`): where traces go over OTLP/HTTP; off when unset. */
  readonly otlpEndpoint: Option.Option<string>
  /** The most inputs one worker's queue holds; wins over the config file's `queue_limit`. */
  readonly queueLimit: Option.Option<number>
}

export const usage = `Usage: yoi-runtime [flags]

Serves a Yoi Runtime over HTTP for a Backend (never for browsers directly).

  --runtime-id <id>        runtime id, [a-z0-9][a-z0-9-]{0,62}      YOI_RUNTIME_ID (default local)
  --display-name <name>    name shown to people                     YOI_RUNTIME_DISPLAY_NAME
  --bind <host:port>       address to listen on; port 0 = any free  YOI_RUNTIME_BIND (default 127.0.0.1:38800)
  --store <store>          memory | sqlite:<path> | postgres://...  YOI_RUNTIME_STORE (default sqlite under --data-dir)
  --store-schema <name>    PostgreSQL schema of the store           YOI_RUNTIME_STORE_SCHEMA (default yoi_runtime)
  --lease-ms <ms>          PostgreSQL owner lease; a standby takes  YOI_RUNTIME_LEASE_MS (default 5000)
                           over this long after the owner dies
  --token-file <path>      file holding the bearer token            YOI_RUNTIME_TOKEN_FILE, or the token in YOI_RUNTIME_TOKEN
  --data-dir <dir>         where the default SQLite store lives     YOI_DATA_DIR (default .yoi)
  --log-level <level>      all|trace|debug|info|warn|error|off    YOI_LOG_LEVEL (default info)
  --grace-ms <ms>          shutdown grace for running turns         YOI_SHUTDOWN_GRACE_MS (default 10000)
  --insecure-no-auth       serve without a token (loopback only)    YOI_INSECURE_NO_AUTH
  --heartbeat-ms <ms>      event stream heartbeat interval          YOI_EVENTS_HEARTBEAT_MS (default 15000)
  --max-event-streams <n>  event streams open at once (then 503)    YOI_MAX_EVENT_STREAMS (default 1024)
  --bookmark-ms <ms>       stream.bookmark interval (filtered)      YOI_EVENTS_BOOKMARK_MS (default 30000)
  --stall-timeout-ms <ms>  drop a reader that stopped reading       YOI_EVENTS_STALL_TIMEOUT_MS (default 30000)
  --config <file>          engine profiles, tools and scope roots   YOI_RUNTIME_CONFIG (default: echo only, no
                           (JSON; see docs/engines.md)              tools, no scopes)
  --otlp-endpoint <url>    traces to this OTLP/HTTP collector       OTEL_EXPORTER_OTLP_ENDPOINT
  --completions <shell>    print a bash, zsh or fish completion script
  --help                   print this and exit

A flag wins over its environment variable.
`

export const parseBind = (text: string): Either.Either<Bind, string> =>
  Either.mapLeft(
    BindValue.parse(text),
    () => `expected host:port (e.g. 127.0.0.1:38800, [::1]:0), got ${JSON.stringify(text)}`
  )

/**
 * A store value as it may be shown: a URL's password (and query, which may carry one) replaced by `***`. A value
 * with credentials that does not parse as a URL is not shown at all.
 */
export const showStore = (text: string): string => {
  if (!text.includes("@") && !text.includes("?")) return JSON.stringify(text)
  const parsed = Either.try(() => new URL(text))
  if (Either.isLeft(parsed) || parsed.right.host === "") {
    return "a value that is not a URL with a host (not shown: it may hold a password)"
  }
  const url = parsed.right
  const user = url.username === "" ? "" : `${url.username}${url.password === "" ? "" : ":***"}@`
  return JSON.stringify(`${url.protocol}//${user}${url.host}${url.pathname}${url.search === "" ? "" : "?***"}`)
}

export const parseStore = (text: string): Either.Either<Store, string> => {
  if (text === "memory") return Either.right({ _tag: "Memory" })
  if (text.startsWith("sqlite:") && text.length > "sqlite:".length) {
    return Either.right({ _tag: "Sqlite", filename: text.slice("sqlite:".length) })
  }
  if (/^postgres(?:ql)?:\/\//.test(text)) {
    const parsed = Either.try(() => new URL(text))
    if (Either.isRight(parsed) && parsed.right.hostname !== "") {
      return Either.right({ _tag: "Postgres", url: Redacted.make(text) })
    }
    return Either.left(`expected postgres://[user[:password]@]host[:port]/database, got ${showStore(text)}`)
  }
  return Either.left(`expected memory, sqlite:<path> or postgres://..., got ${showStore(text)}`)
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

export const parseSchema = (text: string): Either.Either<string, string> =>
  SCHEMA_NAME.test(text)
    ? Either.right(text)
    : Either.left(`expected a lowercase name of a-z, 0-9 and _ (not starting with a digit), got ${JSON.stringify(text)}`)

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
  storeSchema: Flags.text("store-schema", "YOI_RUNTIME_STORE_SCHEMA").pipe(
    Options.withDefault("yoi_runtime"),
    Flags.parsed("store-schema", "YOI_RUNTIME_STORE_SCHEMA", parseSchema)
  ),
  leaseMs: Flags.integer("lease-ms", "YOI_RUNTIME_LEASE_MS", 5_000, 100),
  tokenFile: Flags.text("token-file", "YOI_RUNTIME_TOKEN_FILE").pipe(Options.optional),
  dataDir: Flags.text("data-dir", "YOI_DATA_DIR").pipe(Options.withDefault(".yoi")),
  logLevel: Flags.logLevel("YOI_LOG_LEVEL"),
  insecureNoAuth: Flags.boolean("insecure-no-auth", "YOI_INSECURE_NO_AUTH"),
  graceMs: Flags.integer("grace-ms", "YOI_SHUTDOWN_GRACE_MS", 10_000),
  heartbeatMs: Flags.integer("heartbeat-ms", "YOI_EVENTS_HEARTBEAT_MS", 15_000, 1),
  maxEventStreams: Flags.integer("max-event-streams", "YOI_MAX_EVENT_STREAMS", 1024, 1),
  bookmarkMs: Flags.integer("bookmark-ms", "YOI_EVENTS_BOOKMARK_MS", 30_000, 1),
  stallTimeoutMs: Flags.integer("stall-timeout-ms", "YOI_EVENTS_STALL_TIMEOUT_MS", 30_000, 1),
  configFile: Flags.text("config", "YOI_RUNTIME_CONFIG").pipe(Options.optional),
  otlpEndpoint: Flags.text("otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT").pipe(
    Flags.parsed("otlp-endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", parseEndpoint),
    Options.optional
  ),
  queueLimit: Flags.text("queue-limit", "YOI_QUEUE_LIMIT").pipe(
    Flags.parsed("queue-limit", "YOI_QUEUE_LIMIT", Flags.parseInteger(1)),
    Options.optional
  )
})

/** The bearer token from the environment, when `--token-file` is not given. */
export const token: Config.Config<Option.Option<Redacted.Redacted>> = Config.option(Config.redacted("YOI_RUNTIME_TOKEN"))
