import { FileSystem } from "@effect/platform"
import { Ids, Profiles } from "@yoi/worker-runtime"
import { Config, Data, Effect, Either, ParseResult, Redacted, Schema } from "effect"
import { createHash } from "node:crypto"
import * as NodePath from "node:path"

/** The Backend's configuration is unusable; the message names the field. Fails the start. */
export class BackendConfigError extends Data.TaggedError("BackendConfigError")<{ readonly message: string }> {}

const RuntimeId = Ids.RuntimeId

const DisplayName = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))

/** `memory`, or `sqlite:<path>` (a relative path is resolved against the working directory). */
export const StoreSpec = Schema.String.pipe(
  Schema.filter((s) => s === "memory" || (s.startsWith("sqlite:") && s.length > "sqlite:".length), {
    message: () => "store must be \"memory\" or \"sqlite:<path>\""
  })
)

/** A secret reference: the name of an environment variable, or a file holding the secret. Never the secret. */
export const TokenRef = Schema.Union(
  Schema.Struct({ env: Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/)) }),
  Schema.Struct({ file: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(4096)) })
)
export type TokenRef = typeof TokenRef.Type

const Endpoint = Schema.String.pipe(
  Schema.filter((s) => /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(s), {
    message: () => "endpoint must be an http:// or https:// URL"
  })
)

/** Policy settings every runtime entry may carry. */
const PolicyFields = {
  /** Commands (create, input, cancel, stop, restore, delete) are refused with `Forbidden`. */
  read_only: Schema.optional(Schema.Boolean),
  /** The runtime is not listed and its routes answer `RuntimeNotFound`. */
  hidden: Schema.optional(Schema.Boolean),
  /** Whether browsers may create workers here (default true); a refusal is `Forbidden`, audited. */
  allow_create: Schema.optional(Schema.Boolean),
  /** Tools a browser may grant on this runtime (default: every tool the runtime offers). */
  grantable_tools: Schema.optional(Schema.Array(Schema.String.pipe(Schema.maxLength(64))).pipe(Schema.maxItems(64)))
}

/**
 * The embedded runtime: its store, and the same engine profiles, offered tools and scope roots that
 * `yoi-runtime --config` takes.
 */
export const EmbeddedConfig = Schema.Struct({
  runtime_id: RuntimeId,
  display_name: Schema.optional(DisplayName),
  store: Schema.optional(StoreSpec),
  ...Profiles.PolicyFields,
  ...PolicyFields
})
export type EmbeddedConfig = typeof EmbeddedConfig.Type

export const RemoteConfig = Schema.Struct({
  runtime_id: RuntimeId,
  display_name: Schema.optional(DisplayName),
  /** The runtime's URL. Give either `endpoint` or `endpoints`. */
  endpoint: Schema.optional(Endpoint),
  /**
   * Several hosts of one runtime (an owner and its standbys on a shared store): the Backend follows the one whose
   * `/readyz` says ready, and switches when it fails. One token for all of them.
   */
  endpoints: Schema.optional(Schema.Array(Endpoint).pipe(Schema.minItems(1), Schema.maxItems(16))),
  token: TokenRef,
  /** How long one command may take before it answers `UpstreamTimeout`. */
  timeout_ms: Schema.optional(Schema.Int.pipe(Schema.between(100, 600_000))),
  /** How often `/readyz` is probed. */
  probe_interval_ms: Schema.optional(Schema.Int.pipe(Schema.between(100, 3_600_000))),
  /** Recent events the Backend keeps for browsers that resume (default 10,000). */
  event_backlog: Schema.optional(Schema.Int.pipe(Schema.between(1, 10_000_000))),
  /** Undelivered events one browser may hold before it gets `stream.lagged` (default 1,024, as a runtime). */
  subscriber_buffer: Schema.optional(Schema.Int.pipe(Schema.between(1, 10_000_000))),
  ...PolicyFields
})
export type RemoteConfig = typeof RemoteConfig.Type

export const LegacyPodsConfig = Schema.Struct({
  runtime_id: RuntimeId,
  display_name: Schema.optional(DisplayName),
  dir: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(4096)),
  hidden: Schema.optional(Schema.Boolean)
})
export type LegacyPodsConfig = typeof LegacyPodsConfig.Type

/** The Companion: a tool-less worker (`worker_id` `companion`) the Backend keeps on its embedded runtime. */
export const CompanionConfig = Schema.Struct({
  display_name: Schema.optional(DisplayName),
  /** A profile of the embedded runtime (default: its default profile). */
  profile: Schema.optional(Schema.String.pipe(Schema.maxLength(64))),
  system_prompt: Schema.optional(Schema.String.pipe(Schema.maxLength(200_000)))
})
export type CompanionConfig = typeof CompanionConfig.Type

/** The browser event streams (`/api/events` and the per-worker streams) and the runtimes' streams behind them. */
export const EventsConfig = Schema.Struct({
  /** Heartbeat comment interval (default 15,000 ms). */
  heartbeat_ms: Schema.optional(Schema.Int.pipe(Schema.between(10, 3_600_000))),
  /** How often a filtered stream gets a `stream.bookmark` when its position moved (default 30,000 ms). */
  bookmark_ms: Schema.optional(Schema.Int.pipe(Schema.between(10, 3_600_000))),
  /** A stream whose reader stopped reading is dropped after this long without progress (default 30,000 ms). */
  stall_timeout_ms: Schema.optional(Schema.Int.pipe(Schema.between(10, 3_600_000)))
})
export type EventsConfig = typeof EventsConfig.Type

/** The config file. An absent `embedded` means the default embedded runtime; `null` means none. */
export const BackendConfig = Schema.Struct({
  /** Names this Backend's workspace: the workers it creates carry it, and on a shared remote it sees only those. */
  workspace_id: Schema.optional(RuntimeId),
  embedded: Schema.optional(Schema.NullOr(EmbeddedConfig)),
  remotes: Schema.optional(Schema.Array(RemoteConfig).pipe(Schema.maxItems(256))),
  legacy_pods: Schema.optional(Schema.NullOr(LegacyPodsConfig)),
  /** Absent: a Companion with the embedded runtime's default profile; `null`: none. */
  companion: Schema.optional(Schema.NullOr(CompanionConfig)),
  /**
   * The Backend's own database (sessions, audit, observation audit): a `postgres://` URL, or a reference to one
   * (`{"env": "VAR"}`, `{"file": "path"}`) so that its password stays out of the file. Absent: `backend.db` (SQLite) in
   * the data directory. `--database` wins.
   */
  database: Schema.optional(Schema.Union(
    Schema.String.pipe(Schema.filter((s) => /^postgres(ql)?:\/\//.test(s) && URL.canParse(s), {
      message: () => "database must be a postgres:// URL (or {\"env\": ...} / {\"file\": ...} naming one)"
    })),
    TokenRef
  )),
  events: Schema.optional(EventsConfig)
})
export type BackendConfig = typeof BackendConfig.Type

/** The config after defaults and checks: the shape the rest of the Backend reads. */
export interface ResolvedConfig {
  readonly workspaceId: string
  readonly embedded: (EmbeddedConfig & { readonly store: string }) | undefined
  readonly remotes: ReadonlyArray<RemoteConfig>
  readonly legacyPods: LegacyPodsConfig | undefined
  readonly companion: CompanionConfig | undefined
  /** The Backend database named in the config, unresolved (a reference is read at start). */
  readonly database?: string | TokenRef | undefined
  readonly events?: EventsConfig | undefined
}

export const COMPANION_WORKER_ID = "companion"

export const DEFAULT_COMPANION_PROMPT = "You are the Companion of a Yoi workspace: a helpful, concise assistant " +
  "that chats with the people of this workspace. You have no tools and cannot read or change files."

/** The workspace id when the config names none: stable for a data directory, different for another. */
export const defaultWorkspaceId = (dataDir: string): string =>
  `ws-${createHash("sha256").update(NodePath.resolve(dataDir)).digest("hex").slice(0, 12)}`

export const defaultEmbedded = (dataDir: string): EmbeddedConfig & { readonly store: string } => ({
  runtime_id: Ids.RuntimeId.make("local"),
  store: `sqlite:${NodePath.join(dataDir, "local.db")}`
})

const fieldPath = (path: ReadonlyArray<PropertyKey>) =>
  path.reduce<string>((acc, key) => (typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`), "")

const describeParseError = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const lines = issues.map((i) => {
    const path = fieldPath(i.path)
    // The database URL may hold a password: its issues never quote the value.
    if (i.path[0] === "database") {
      return "database: must be a postgres:// URL, or {\"env\": ...} or {\"file\": ...} naming one (value not shown)"
    }
    return path === "" ? i.message : `${path}: ${i.message}`
  })
  return [...new Set(lines)].slice(0, 5).join("; ")
}

const decodeConfig = Schema.decodeUnknownEither(BackendConfig, { errors: "all", onExcessProperty: "error" })

/** Validates a parsed config document: schema, defaults, duplicate runtime ids. */
export const resolve = (raw: unknown, dataDir: string): Either.Either<ResolvedConfig, BackendConfigError> => {
  const decoded = decodeConfig(raw)
  if (Either.isLeft(decoded)) {
    return Either.left(new BackendConfigError({ message: `invalid config: ${describeParseError(decoded.left)}` }))
  }
  const config = decoded.right
  const embedded = config.embedded === null
    ? undefined
    : config.embedded === undefined
      ? defaultEmbedded(dataDir)
      : { ...config.embedded, store: config.embedded.store ?? defaultEmbedded(dataDir).store }
  const remotes = config.remotes ?? []
  const legacyPods = config.legacy_pods ?? undefined
  if (config.companion != null && embedded === undefined) {
    return Either.left(new BackendConfigError({
      message: "invalid config: companion: the Companion lives on the embedded runtime, and embedded is null"
    }))
  }
  const companion = config.companion === null || embedded === undefined ? undefined : config.companion ?? {}
  for (const [i, remote] of remotes.entries()) {
    if ((remote.endpoint === undefined) === (remote.endpoints === undefined)) {
      return Either.left(new BackendConfigError({
        message: `invalid config: remotes[${i}]: give either endpoint or endpoints (a list of the runtime's hosts)`
      }))
    }
  }
  const seen = new Map<string, string>()
  const entries: Array<readonly [string, string]> = [
    ...(embedded === undefined ? [] : [[embedded.runtime_id, "embedded.runtime_id"] as const]),
    ...remotes.map((r, i) => [r.runtime_id, `remotes[${i}].runtime_id`] as const),
    ...(legacyPods === undefined ? [] : [[legacyPods.runtime_id, "legacy_pods.runtime_id"] as const])
  ]
  for (const [id, field] of entries) {
    const first = seen.get(id)
    if (first !== undefined) {
      return Either.left(new BackendConfigError({
        message: `invalid config: ${field}: runtime_id ${JSON.stringify(id)} is already used by ${first}`
      }))
    }
    seen.set(id, field)
  }
  return Either.right({
    workspaceId: config.workspace_id ?? defaultWorkspaceId(dataDir),
    embedded,
    remotes,
    legacyPods,
    companion,
    database: config.database,
    events: config.events
  })
}

/** Reads and validates the config file, or returns the default (one embedded SQLite runtime) when there is none. */
export const load = (
  file: string | undefined,
  dataDir: string
): Effect.Effect<ResolvedConfig, BackendConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (file === undefined) return yield* resolve({}, dataDir)
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError((e) => new BackendConfigError({ message: `cannot read the config file ${file}: ${e.message}` }))
    )
    const raw = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => new BackendConfigError({ message: `the config file ${file} is not valid JSON: ${String(e)}` })
    })
    return yield* resolve(raw, dataDir)
  })

/**
 * Resolves a token reference at start. `env` is read through the current `ConfigProvider` (the process environment
 * in the binary, a map in tests); `file` is read and trimmed. A missing or empty secret fails the start.
 */
export const resolveToken = (
  ref: TokenRef,
  field: string
): Effect.Effect<Redacted.Redacted<string>, BackendConfigError, FileSystem.FileSystem> =>
  "env" in ref
    ? Config.redacted(ref.env).pipe(
      Effect.mapError(() =>
        new BackendConfigError({ message: `invalid config: ${field}.env: environment variable ${ref.env} is not set` })
      ),
      Effect.filterOrFail(
        (token) => Redacted.value(token).trim().length > 0,
        () => new BackendConfigError({ message: `invalid config: ${field}.env: environment variable ${ref.env} is empty` })
      )
    )
    : Effect.flatMap(FileSystem.FileSystem, (fs) =>
      fs.readFileString(ref.file).pipe(
        Effect.mapError((e) =>
          new BackendConfigError({ message: `invalid config: ${field}.file: cannot read the token file: ${e.message}` })
        ),
        Effect.map((text) => text.trim()),
        Effect.filterOrFail(
          (text) => text.length > 0,
          () => new BackendConfigError({ message: `invalid config: ${field}.file: the token file is empty` })
        ),
        Effect.map(Redacted.make)
      ))

export const isRuntimeId = Schema.is(Ids.RuntimeId)
