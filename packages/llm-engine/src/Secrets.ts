import { Domain, Engine } from "@yoi/worker-runtime"
import { Config, type ConfigProvider, Effect, Option, Redacted } from "effect"
import { readFile } from "node:fs/promises"

const unavailable = (message: string) =>
  new Engine.EngineError({ code: "provider_secret_unavailable", message, retryable: false })

/**
 * Resolves a secret reference at turn time. An env reference is read through the given `ConfigProvider` (the
 * process environment by default, a map in tests); a file reference is read from disk and trimmed. The value only
 * ever travels as `Redacted`, and no message names a file path.
 */
export const resolve = (
  provider: ConfigProvider.ConfigProvider,
  ref: Domain.SecretRef
): Effect.Effect<Option.Option<Redacted.Redacted>, Engine.EngineError> =>
  "env" in ref
    ? Config.option(Config.redacted(ref.env)).pipe(
      Effect.withConfigProvider(provider),
      Effect.map(Option.filter((value) => Redacted.value(value).trim().length > 0)),
      Effect.orElseSucceed(() => Option.none())
    )
    : Effect.tryPromise({
      try: () => readFile(ref.file, "utf8"),
      catch: () => unavailable("the api_key file could not be read")
    }).pipe(
      Effect.flatMap((text) => {
        const value = text.trim()
        return value.length === 0
          ? Effect.fail(unavailable("the api_key file is empty"))
          : Effect.succeed(Option.some(Redacted.make(value)))
      })
    )

/**
 * The key for a request: an explicit reference must resolve; a provider's default reference (such as
 * `OPENAI_API_KEY`) may be absent, for gateways that need no key.
 */
export const apiKey = (
  provider: ConfigProvider.ConfigProvider,
  explicit: Domain.SecretRef | undefined,
  fallback: Domain.SecretRef | undefined
): Effect.Effect<Redacted.Redacted | undefined, Engine.EngineError> => {
  if (explicit !== undefined) {
    return Effect.flatMap(resolve(provider, explicit), (value) =>
      Option.isSome(value)
        ? Effect.succeed(value.value)
        : Effect.fail(unavailable(
          "env" in explicit
            ? `the api_key environment variable ${explicit.env} is not set`
            : "the api_key file is empty"
        )))
  }
  if (fallback === undefined) return Effect.succeed(undefined)
  return Effect.map(resolve(provider, fallback), Option.getOrUndefined).pipe(
    Effect.orElseSucceed(() => undefined)
  )
}
