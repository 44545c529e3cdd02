import { Data, Effect, ParseResult, Schema } from "effect"
import {
  AbsolutePath,
  Access,
  DEFAULT_MAX_STEPS,
  type EngineRequest,
  engineRequestFields,
  EngineSpec,
  ProfileName,
  type ScopeAccess,
  ToolName
} from "./Domain.js"
import { InvalidInput } from "./Errors.js"

/** A directory under which worker scopes may be granted, and the widest access granted there. */
export const ScopeRoot = Schema.Struct({ path: AbsolutePath, access: Access })
export type ScopeRoot = typeof ScopeRoot.Type

/** Named engine profiles and the default one; `echo` always exists. */
export const EnginesConfig = Schema.Struct({
  default: Schema.optional(ProfileName),
  profiles: Schema.optional(
    Schema.Record({ key: ProfileName, value: EngineSpec }).pipe(
      Schema.filter((r) => Object.keys(r).length <= 256, { message: () => "at most 256 profiles" })
    )
  )
})
export type EnginesConfig = typeof EnginesConfig.Type

/**
 * The policy part of a runtime's configuration: engine profiles, the tools it offers and where scopes may be granted.
 * `yoi-runtime --config` reads exactly this; the Backend's `embedded` section embeds the same three members.
 */
export const PolicyFields = {
  engines: Schema.optional(EnginesConfig),
  tools: Schema.optional(Schema.Array(ToolName).pipe(Schema.maxItems(64))),
  scope_roots: Schema.optional(Schema.Array(ScopeRoot).pipe(Schema.maxItems(256))),
  /** The most inputs one worker's queue holds (`busy: "enqueue"`; default 16). */
  queue_limit: Schema.optional(Schema.Int.pipe(Schema.between(1, 10_000)))
}
export const PolicyConfig = Schema.Struct(PolicyFields)
export type PolicyConfig = typeof PolicyConfig.Type

/** The runtime's configuration cannot be used; the message names the field. */
export class RuntimeConfigError extends Data.TaggedError("RuntimeConfigError")<{ readonly message: string }> {}

export const ECHO = "echo"

/** Profiles after defaults: `echo` added when absent, the default named and checked. */
export interface ProfileTable {
  readonly profiles: ReadonlyMap<string, EngineSpec>
  readonly defaultProfile: string
}

/**
 * Builds the profile table: the configured profiles, plus a same-named profile for each extra engine provider
 * (`implicit`, for engines an embedder adds in code) and `echo`, unless configured.
 */
export const table = (
  config: EnginesConfig | undefined,
  implicit: ReadonlyArray<string> = []
): Effect.Effect<ProfileTable, RuntimeConfigError> => {
  const profiles = new Map<string, EngineSpec>()
  for (const provider of [ECHO, ...implicit]) profiles.set(provider, { provider })
  for (const [name, spec] of Object.entries(config?.profiles ?? {})) profiles.set(name, spec)
  const echo = profiles.get(ECHO)!
  if (echo.provider !== ECHO) {
    return Effect.fail(new RuntimeConfigError({
      message: `engines.profiles.echo.provider: the profile named echo must use the echo provider, not ${echo.provider}`
    }))
  }
  const defaultProfile = config?.default ?? ECHO
  if (!profiles.has(defaultProfile)) {
    return Effect.fail(new RuntimeConfigError({
      message: `engines.default: no profile is named ${JSON.stringify(defaultProfile)}`
    }))
  }
  return Effect.succeed({ profiles, defaultProfile })
}

const requestFields: ReadonlySet<string> = new Set(engineRequestFields)

/**
 * Refuses any `engine` member of a request other than a profile name and the bounded overrides, before decoding, so
 * the error names the member (`engine.base_url`) and says why.
 */
export const checkRequestShape = (engine: unknown): Effect.Effect<void, InvalidInput> => {
  if (engine === null || typeof engine !== "object" || Array.isArray(engine)) return Effect.void
  const extra = Object.keys(engine).find((k) => !requestFields.has(k))
  return extra === undefined ? Effect.void : Effect.fail(new InvalidInput(refusedEngineMember(extra)))
}

/** The field and message of a refused `engine` member; servers that decode a request first answer with these too. */
export const refusedEngineMember = (member: string): { readonly field: string; readonly message: string } => ({
  field: `engine.${member.slice(0, 64)}`,
  message: `engine.${member.slice(0, 64)} is not accepted in a request: a worker's engine is one of the runtime's ` +
    "configured profiles (engine.profile), with at most temperature, max_output_tokens and max_steps overridden; " +
    "endpoints, keys and providers are configuration of the runtime"
})

/**
 * Checks a request's overrides against its profile: they may not exceed the profile's own `max_output_tokens` and
 * `max_steps` (`max_steps` defaults to 16), so a client can narrow a profile but never make it costlier.
 */
export const checkOverrides = (
  profileName: string,
  profile: EngineSpec,
  request: EngineRequest | undefined
): Effect.Effect<void, InvalidInput> => {
  const maxSteps = profile.max_steps ?? DEFAULT_MAX_STEPS
  if (request?.max_steps !== undefined && request.max_steps > maxSteps) {
    return Effect.fail(new InvalidInput({
      field: "engine.max_steps",
      message: `engine.max_steps may be at most ${maxSteps}, the limit of profile ${profileName}`
    }))
  }
  const maxTokens = profile.max_output_tokens
  if (request?.max_output_tokens !== undefined && maxTokens !== undefined && request.max_output_tokens > maxTokens) {
    return Effect.fail(new InvalidInput({
      field: "engine.max_output_tokens",
      message: `engine.max_output_tokens may be at most ${maxTokens}, the limit of profile ${profileName}`
    }))
  }
  return Effect.void
}

/**
 * The spec a worker's turns run with: its profile narrowed by the overrides it was created with, clamped to the
 * profile's current limits (a profile's limits may have been lowered since the worker was created).
 */
export const applyOverrides = (profile: EngineSpec, request: EngineRequest | undefined): EngineSpec => {
  if (request === undefined) return profile
  const maxSteps = profile.max_steps ?? DEFAULT_MAX_STEPS
  const maxTokens = profile.max_output_tokens
  return {
    ...profile,
    ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
    ...(request.max_output_tokens === undefined
      ? {}
      : {
        max_output_tokens: maxTokens === undefined
          ? request.max_output_tokens
          : Math.min(maxTokens, request.max_output_tokens)
      }),
    ...(request.max_steps === undefined ? {} : { max_steps: Math.min(maxSteps, request.max_steps) })
  }
}

/** The widest access of any root. */
export const widestAccess = (roots: ReadonlyArray<ScopeRoot>): ScopeAccess =>
  roots.some((r) => r.access === "write") ? "write" : roots.length > 0 ? "read" : "none"

/**
 * Engine specs stored before profiles existed carried the provider and its settings inline; such a worker now
 * refers to the profile named after its provider (`echo` for echo workers), keeping only the overrides a request
 * may still make. A spec already in the new form is returned as is.
 */
export const upgradeStoredEngine = (engine: unknown): EngineRequest | undefined => {
  if (engine === null || typeof engine !== "object") return undefined
  const e = engine as Record<string, unknown>
  if (typeof e.profile === "string" || typeof e.provider !== "string") return engine as EngineRequest
  const out: { -readonly [K in keyof EngineRequest]: EngineRequest[K] } = { profile: e.provider }
  if (typeof e.temperature === "number") out.temperature = e.temperature
  if (typeof e.max_output_tokens === "number") out.max_output_tokens = e.max_output_tokens
  if (typeof e.max_steps === "number") out.max_steps = e.max_steps
  return out
}

const fieldPath = (path: ReadonlyArray<PropertyKey>) =>
  path.reduce<string>(
    (acc, key) => (typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`),
    ""
  )

/** One line naming the first bad field of a config document, for a start-up error. */
export const describeConfigError = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  if (first === undefined) return "invalid config"
  const path = fieldPath(first.path)
  return path === "" ? first.message : `${path}: ${first.message}`
}

/** Decodes a `yoi-runtime --config` document (already parsed JSON). */
export const decodePolicyConfig = (raw: unknown): Effect.Effect<PolicyConfig, RuntimeConfigError> =>
  Schema.decodeUnknown(PolicyConfig, { errors: "all", onExcessProperty: "error" })(raw).pipe(
    Effect.mapError((e) => new RuntimeConfigError({ message: describeConfigError(e) }))
  )
