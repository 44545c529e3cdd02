import { Effect, Either, Option } from "effect"
import type { CreateWorker, EngineRequest, EngineSpec, EngineView, ProfileView } from "../Domain.js"
import { type Engine, EngineError, Engines } from "../Engine.js"
import { InvalidInput, type ScopeNotPermitted, UnsupportedOperation } from "../Errors.js"
import * as Profiles from "../Profiles.js"
import type { RuntimeConfigShape } from "../Runtime.js"
import * as ScopePolicy from "./scopePolicy.js"

/** The runtime's engine profiles, offered tools and scope roots: checked at start, applied to creates and turns. */
export interface Admission {
  readonly defaultProfile: string
  readonly profiles: ReadonlyMap<string, EngineSpec>
  readonly scopeRoots: ReadonlyArray<Profiles.ScopeRoot>
  /** Why a profile could not run a turn now, or none. */
  readonly profileProblem: (spec: EngineSpec) => Effect.Effect<Option.Option<string>>
  readonly profileViews: Effect.Effect<Array<ProfileView>>
  readonly engineView: (request: EngineRequest | undefined) => EngineView
  /**
   * Admits a create request under the runtime's configuration: its profile exists and its overrides stay within it,
   * the tools are offered here and runnable by the profile's engine, and the scope lies inside the scope roots.
   * Returns the spec to record: the profile named, the scope with canonical paths.
   */
  readonly admit: (
    spec: CreateWorker
  ) => Effect.Effect<CreateWorker, InvalidInput | ScopeNotPermitted | UnsupportedOperation>
  /** The engine and spec a worker's turn runs with, or why it cannot run (its profile is gone). */
  readonly resolveEngine: (
    request: EngineRequest | undefined
  ) => Either.Either<{ readonly engine: Engine; readonly spec: EngineSpec }, EngineError>
}

export const make = (
  config: RuntimeConfigShape
): Effect.Effect<Admission, Profiles.RuntimeConfigError, Engines> =>
  Effect.gen(function*() {
    const engines = yield* Engines

    const { defaultProfile, profiles } = yield* Profiles.table(config.engines, config.implicitProfiles)
    for (const [name, spec] of profiles) {
      const engine = engines.get(spec.provider)
      if (Option.isNone(engine)) {
        return yield* new Profiles.RuntimeConfigError({
          message: `engines.profiles.${name}.provider: this runtime has no ${spec.provider} engine ` +
            `(it has ${engines.providers.join(", ")})`
        })
      }
      yield* engine.value.validate(spec).pipe(Effect.mapError((e) =>
        new Profiles.RuntimeConfigError({
          message: `engines.profiles.${name}${e.field === undefined ? "" : `.${e.field.replace(/^engine\./, "")}`}: ${e.message}`
        })
      ))
    }
    const unknownTool = config.tools.find((tool) => !engines.tools.includes(tool))
    if (unknownTool !== undefined) {
      return yield* new Profiles.RuntimeConfigError({
        message: `tools: no engine of this runtime implements ${unknownTool}` +
          (engines.tools.length > 0 ? ` (they implement ${engines.tools.join(", ")})` : "")
      })
    }
    const scopeRoots = yield* ScopePolicy.canonicalRoots(config.scopeRoots)

    /** Why a profile could not run a turn now, or none. */
    const profileProblem = (spec: EngineSpec): Effect.Effect<Option.Option<string>> =>
      Option.match(engines.get(spec.provider), {
        onNone: () => Effect.succeed(Option.some(`this runtime has no ${spec.provider} engine`)),
        onSome: (engine) => engine.notReady === undefined ? Effect.succeed(Option.none()) : engine.notReady(spec)
      })

    const profileViews = Effect.forEach(Array.from(profiles), ([name, spec]) =>
      Effect.map(profileProblem(spec), (problem): ProfileView => ({
        name,
        provider: spec.provider,
        ...(spec.model === undefined ? {} : { model: spec.model }),
        ready: Option.isNone(problem)
      })))

    const engineView = (request: EngineRequest | undefined): EngineView => {
      const name = request?.profile ?? defaultProfile
      const profile = profiles.get(name)
      if (profile === undefined) return { profile: name, provider: "unavailable" }
      return profile.model === undefined
        ? { profile: name, provider: profile.provider }
        : { profile: name, provider: profile.provider, model: profile.model }
    }

    const admit = (spec: CreateWorker) =>
      Effect.gen(function*() {
        const profileName = spec.engine?.profile ?? defaultProfile
        const profile = profiles.get(profileName)
        if (profile === undefined) {
          return yield* new InvalidInput({
            field: "engine.profile",
            message: `unknown engine profile ${JSON.stringify(profileName)}; this runtime offers ${
              Array.from(profiles.keys()).join(", ")
            }`
          })
        }
        yield* Profiles.checkOverrides(profileName, profile, spec.engine)
        const tools = spec.tools ?? []
        const notOffered = tools.filter((t) => !config.tools.includes(t))
        if (notOffered.length > 0) {
          return yield* new InvalidInput({
            field: "tools",
            message: `this runtime does not offer ${notOffered.join(", ")}` +
              (config.tools.length > 0 ? ` (it offers ${config.tools.join(", ")})` : " (it offers no tools)")
          })
        }
        const engineTools: ReadonlyArray<string> = Option.match(engines.get(profile.provider), {
          onNone: () => [],
          onSome: (e) => e.tools
        })
        if (tools.length > 0 && engineTools.length === 0) {
          return yield* new UnsupportedOperation({
            operation: "tools",
            message: `profile ${profileName} (${profile.provider}) cannot run tools; create the worker without ` +
              "tools, or with a profile whose engine offers them"
          })
        }
        const unrunnable = tools.filter((t) => !engineTools.includes(t))
        if (unrunnable.length > 0) {
          return yield* new InvalidInput({
            field: "tools",
            message: `profile ${profileName} (${profile.provider}) cannot run ${unrunnable.join(", ")}`
          })
        }
        const scope = yield* ScopePolicy.check(scopeRoots, spec.scope, tools)
        const { scope: _requested, ...rest } = spec
        return {
          ...rest,
          engine: { ...spec.engine, profile: profileName },
          ...(scope === undefined ? {} : { scope })
        } satisfies CreateWorker
      })

    const resolveEngine = (
      request: EngineRequest | undefined
    ): Either.Either<{ readonly engine: Engine; readonly spec: EngineSpec }, EngineError> => {
      const name = request?.profile ?? defaultProfile
      const profile = profiles.get(name)
      const engine = profile === undefined ? Option.none() : engines.get(profile.provider)
      return profile === undefined || Option.isNone(engine)
        ? Either.left(new EngineError({
          code: "profile_unavailable",
          message: `engine profile ${name} is not configured on this runtime`,
          retryable: false
        }))
        : Either.right({ engine: engine.value, spec: Profiles.applyOverrides(profile, request) })
    }

    return { defaultProfile, profiles, scopeRoots, profileProblem, profileViews, engineView, admit, resolveEngine }
  })
