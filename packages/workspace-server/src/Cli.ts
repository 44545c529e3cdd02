import { Config, ConfigProvider, Either } from "effect"
import { BackendConfigError } from "./Config.js"

export const USAGE = `usage: yoi-backend [--bind <host:port>] [--config <file.json>] [--data-dir <dir>] [--otlp-endpoint <url>]

  --bind      where to listen (default 127.0.0.1:8787; port 0 picks a free port)   env YOI_BACKEND_BIND
  --config    the runtimes config file (default: one embedded SQLite runtime)     env YOI_BACKEND_CONFIG
  --data-dir  the Backend's own data: backend.db (audit), local.db (.yoi)       env YOI_BACKEND_DATA_DIR
  --otlp-endpoint  export traces over OTLP/HTTP to <url>/v1/traces (off if unset) env OTEL_EXPORTER_OTLP_ENDPOINT

The Backend token is YOI_BACKEND_TOKEN; without it one is generated and printed in a login URL.`

const flags: Record<string, string> = {
  "--bind": "YOI_BACKEND_BIND",
  "--config": "YOI_BACKEND_CONFIG",
  "--data-dir": "YOI_BACKEND_DATA_DIR",
  "--otlp-endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT"
}

/** Flags become config keys, so that flags and env vars are read by one `Config.all` (flags win). */
export const parseArgs = (argv: ReadonlyArray<string>): Either.Either<Map<string, string> | "help", BackendConfigError> => {
  const out = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--help" || arg === "-h") return Either.right("help")
    const eq = arg.indexOf("=")
    const name = eq === -1 ? arg : arg.slice(0, eq)
    const key = flags[name]
    if (key === undefined) return Either.left(new BackendConfigError({ message: `unknown argument ${arg}\n${USAGE}` }))
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1)
    if (value === undefined || value === "") {
      return Either.left(new BackendConfigError({ message: `${name} needs a value\n${USAGE}` }))
    }
    out.set(key, value)
  }
  return Either.right(out)
}

/** Flags first, then the environment. */
export const configProvider = (flagValues: Map<string, string>): ConfigProvider.ConfigProvider =>
  ConfigProvider.fromMap(flagValues).pipe(ConfigProvider.orElse(() => ConfigProvider.fromEnv()))

export const settings = Config.all({
  bind: Config.string("YOI_BACKEND_BIND").pipe(
    Config.withDefault("127.0.0.1:8787"),
    Config.withDescription("host:port to listen on; port 0 picks a free port")
  ),
  config: Config.option(Config.string("YOI_BACKEND_CONFIG")).pipe(
    Config.withDescription("the runtimes config file")
  ),
  dataDir: Config.string("YOI_BACKEND_DATA_DIR").pipe(
    Config.withDefault(".yoi"),
    Config.withDescription("the Backend's data directory")
  ),
  otlpEndpoint: Config.option(Config.string("OTEL_EXPORTER_OTLP_ENDPOINT")).pipe(
    Config.withDescription("OTLP/HTTP collector base URL for traces")
  )
})

export interface Bind {
  readonly host: string
  readonly port: number
}

/** `host:port`, `[v6]:port`, or `:port` (all interfaces). */
export const parseBind = (bind: string): Either.Either<Bind, BackendConfigError> => {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(bind)
  const port = match === null ? NaN : Number(match[3])
  if (match === null || !Number.isInteger(port) || port > 65535) {
    return Either.left(new BackendConfigError({ message: `--bind must be host:port (port 0-65535), got ${JSON.stringify(bind)}` }))
  }
  const host = match[1] ?? match[2] ?? ""
  return Either.right({ host: host === "" ? "0.0.0.0" : host, port })
}
