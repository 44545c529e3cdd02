import type { LanguageModel, Response } from "@effect/ai"
import { FetchHttpClient, HttpClient } from "@effect/platform"
import { type AllocationRegistry, Domain, Engine, InvalidInput, Metrics } from "@yoi/worker-runtime"
import { Effect, Layer, Mailbox, Option, Redacted, type Scope, Stream } from "effect"
import * as ChatCompletions from "./ChatCompletions.js"
import * as FsTools from "./FsTools.js"
import * as History from "./History.js"
import * as Secrets from "./Secrets.js"
import * as Turn from "./Turn.js"

export type Provider = "openai" | "openai-chat" | "anthropic"

export const providers: ReadonlyArray<Provider> = ["openai", "openai-chat", "anthropic"]

/** Runtime-wide settings a worker's engine spec falls back to. */
export interface ProviderDefaults {
  readonly base_url?: string | undefined
  readonly api_key?: Domain.SecretRef | undefined
}

/** Runtime configuration of the LLM engines; every field has a default. */
export interface LlmConfig {
  /** Per provider: the base URL and API key used when a worker's spec gives none. */
  readonly providers?: Partial<Record<Provider, ProviderDefaults>> | undefined
  readonly retry?: Partial<Turn.RetryPolicy> | undefined
  /** Longest wait for the next piece of a streamed response (default 120 s; a spec's `request_timeout_ms` wins). */
  readonly requestTimeoutMs?: number | undefined
  /** Model requests per turn (default 16; a spec's `max_steps` wins). */
  readonly maxSteps?: number | undefined
  /** Estimated tokens of history sent with a turn (default 100,000; a spec's `context_budget_tokens` wins). */
  readonly contextBudgetTokens?: number | undefined
  /** Output token limit when a spec gives none; unset, only Anthropic (which requires one) gets 4096. */
  readonly maxOutputTokens?: number | undefined
  /** Newest transcript entries read to build a prompt (default 500). */
  readonly historyEntries?: number | undefined
  readonly toolLimits?: Partial<FsTools.Limits> | undefined
}

const builtInDefaults: Record<Provider, ProviderDefaults> = {
  "openai": { base_url: "https://api.openai.com/v1", api_key: { env: "OPENAI_API_KEY" } },
  "anthropic": { base_url: "https://api.anthropic.com", api_key: { env: "ANTHROPIC_API_KEY" } },
  "openai-chat": {}
}

interface Settings {
  readonly model: string
  readonly baseUrl: string | undefined
  readonly apiKey: Redacted.Redacted | undefined
  readonly temperature: number | undefined
  readonly maxOutputTokens: number | undefined
}

type ModelBuilder = (
  settings: Settings
) => Effect.Effect<LanguageModel.Service, never, HttpClient.HttpClient | Scope.Scope>

// The provider SDKs load on the first turn that needs them, not at start: with their tokenizers they hold tens of MB
// of heap that a Backend or runtime serving only echo (or openai-chat) workers never uses.
const openAi = Effect.promise(() => import("@effect/ai-openai"))
const anthropic = Effect.promise(() => import("@effect/ai-anthropic"))

const builders: Record<Provider, ModelBuilder> = {
  "openai": (s) =>
    Effect.flatMap(openAi, ({ OpenAiClient, OpenAiLanguageModel }) =>
      Effect.flatMap(OpenAiClient.make({ apiKey: s.apiKey, apiUrl: s.baseUrl }), (client) =>
        OpenAiLanguageModel.make({
          model: s.model,
          config: {
            ...(s.maxOutputTokens === undefined ? {} : { max_output_tokens: s.maxOutputTokens }),
            ...(s.temperature === undefined ? {} : { temperature: s.temperature })
          }
        }).pipe(Effect.provideService(OpenAiClient.OpenAiClient, client)))),
  "anthropic": (s) =>
    Effect.flatMap(anthropic, ({ AnthropicClient, AnthropicLanguageModel }) =>
      Effect.flatMap(AnthropicClient.make({ apiKey: s.apiKey, apiUrl: s.baseUrl }), (client) =>
        AnthropicLanguageModel.make({
          model: s.model,
          config: {
            max_tokens: s.maxOutputTokens ?? 4096,
            ...(s.temperature === undefined ? {} : { temperature: s.temperature })
          }
        }).pipe(Effect.provideService(AnthropicClient.AnthropicClient, client)))),
  "openai-chat": (s) =>
    ChatCompletions.make({
      baseUrl: s.baseUrl ?? "",
      apiKey: s.apiKey,
      model: s.model,
      temperature: s.temperature,
      maxTokens: s.maxOutputTokens
    })
}

const count = (u: unknown): number => (typeof u === "number" && Number.isFinite(u) ? u : 0)

/**
 * Anthropic's `input_tokens` leave out cache reads and cache writes; add both back so input means the same for every
 * provider (the writes only travel in the finish part's metadata).
 */
const anthropicUsage = (finish: Response.FinishPart): Turn.UsageCount => {
  const raw = (finish.metadata as { anthropic?: { usage?: { cache_creation_input_tokens?: unknown } } }).anthropic
  const cached = count(finish.usage.cachedInputTokens)
  return {
    input_tokens: count(finish.usage.inputTokens) + cached + count(raw?.usage?.cache_creation_input_tokens),
    output_tokens: count(finish.usage.outputTokens),
    cached_tokens: cached
  }
}

const invalid = (field: string, message: string) => Effect.fail(new InvalidInput({ field, message }))

const isHttpUrl = (text: string) => {
  const url = URL.canParse(text) ? new URL(text) : undefined
  return url !== undefined && (url.protocol === "http:" || url.protocol === "https:")
}

/**
 * Builds the real engines: `openai` (Responses API via `@effect/ai-openai`), `anthropic` (Messages API via
 * `@effect/ai-anthropic`) and `openai-chat` (Chat Completions, our own `LanguageModel`). Each turn resolves the
 * worker's key reference, builds the prompt from the transcript within the context budget, and runs the tool loop
 * with the filesystem tools the worker was granted, confined to its allocated scope.
 */
export const make = (
  config: LlmConfig = {}
): Effect.Effect<ReadonlyArray<Engine.Engine>, never, HttpClient.HttpClient | AllocationRegistry.AllocationRegistry> =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const configProvider = yield* Effect.configProviderWith(Effect.succeed)
    const tools = yield* FsTools.make({ ...FsTools.defaultLimits, ...config.toolLimits })
    const retry: Turn.RetryPolicy = { ...Turn.defaultRetry, ...config.retry }
    const defaults = (provider: Provider): ProviderDefaults => ({
      ...builtInDefaults[provider],
      ...config.providers?.[provider]
    })

    const engine = (provider: Provider): Engine.Engine => {
      const validate = (spec: Domain.EngineSpec) => {
        if (spec.model === undefined || spec.model.trim().length === 0) {
          return invalid("engine.model", `the ${provider} engine needs engine.model`)
        }
        const echoOnly = (["chunk_size", "delay_ms", "fail_after_chunks"] as const).filter((k) => spec[k] !== undefined)
        if (echoOnly.length > 0) {
          return invalid(`engine.${echoOnly[0]}`, `${echoOnly.join(", ")} only apply to the echo engine`)
        }
        const baseUrl = spec.base_url ?? defaults(provider).base_url
        if (baseUrl === undefined) {
          return invalid("engine.base_url", `the ${provider} engine needs engine.base_url (e.g. http://127.0.0.1:11434/v1)`)
        }
        if (!isHttpUrl(baseUrl)) return invalid("engine.base_url", "engine.base_url must be an http or https URL")
        return Effect.void
      }

      const runTurn = (context: Engine.TurnContext, emit: (event: Engine.EngineEvent) => Effect.Effect<void>) =>
        Effect.gen(function*() {
          const spec = context.spec
          const fallback = defaults(provider)
          const apiKey = yield* Secrets.apiKey(configProvider, spec.api_key, fallback.api_key)
          const settings: Settings = {
            model: spec.model ?? "",
            baseUrl: spec.base_url ?? fallback.base_url,
            apiKey,
            temperature: spec.temperature,
            maxOutputTokens: spec.max_output_tokens ?? config.maxOutputTokens
          }
          const model = yield* builders[provider](settings).pipe(Effect.provideService(HttpClient.HttpClient, http))
          const toolkit = yield* tools.toolkitFor(context.workerId, context.tools)
          const history = yield* context.history(config.historyEntries ?? 500)
          const { omitted, prompt } = History.build({
            systemPrompt: context.systemPrompt,
            history,
            input: context.input,
            budgetTokens: spec.context_budget_tokens ?? config.contextBudgetTokens ?? 100_000
          })
          if (omitted > 0) yield* Effect.logDebug("history entries left out of the prompt", { omitted })
          yield* Turn.run({
            model,
            toolkit,
            prompt,
            maxSteps: spec.max_steps ?? config.maxSteps ?? Domain.DEFAULT_MAX_STEPS,
            timeoutMs: spec.request_timeout_ms ?? config.requestTimeoutMs ?? 120_000,
            retry,
            secret: apiKey === undefined ? undefined : Redacted.value(apiKey),
            usage: provider === "anthropic" ? anthropicUsage : Turn.usageIncludingCached,
            emit: (event) => {
              if (event._tag === "Retry") Metrics.recordRetry(provider)
              return emit(event)
            }
          })
        }).pipe(
          Effect.scoped,
          // A defect would leave the turn unrecorded; the worker must see a typed failure instead.
          Effect.catchAllDefect((defect) =>
            Effect.zipRight(
              Effect.logError("the LLM engine failed unexpectedly", defect),
              Effect.fail(new Engine.EngineError({ code: "engine_internal_error", message: "the engine failed unexpectedly" }))
            )),
          Effect.withSpan("LlmEngine.turn", { attributes: { provider } })
        )

      /** A profile is ready when the key it names can be read, or, naming none, when the provider's default key can. */
      const notReady = (spec: Domain.EngineSpec): Effect.Effect<Option.Option<string>> => {
        const fallback = defaults(provider)
        const usesDefaultService = spec.base_url === undefined || spec.base_url === builtInDefaults[provider].base_url
        const ref = spec.api_key ?? (usesDefaultService ? fallback.api_key : undefined)
        if (ref === undefined) return Effect.succeed(Option.none())
        return Secrets.resolve(configProvider, ref).pipe(
          Effect.map((value) =>
            Option.isSome(value) ? Option.none() : Option.some("its API key is not set")
          ),
          Effect.orElseSucceed(() => Option.some("its API key cannot be read"))
        )
      }

      return {
        provider,
        tools: FsTools.names,
        validate,
        notReady,
        turn: (context) =>
          Stream.unwrapScoped(Effect.gen(function*() {
            const mailbox = yield* Mailbox.make<Engine.EngineEvent, Engine.EngineError>(256)
            yield* runTurn(context, (event) => Effect.asVoid(mailbox.offer(event))).pipe(
              Mailbox.into(mailbox),
              Effect.forkScoped
            )
            return Mailbox.toStream(mailbox)
          }))
      }
    }

    return providers.map(engine)
  })

/** The real engines plus the offline `echo`, as the runtime's `Engines` service. */
export const layer = (
  config: LlmConfig = {}
): Layer.Layer<Engine.Engines, never, HttpClient.HttpClient | AllocationRegistry.AllocationRegistry> =>
  Layer.effect(Engine.Engines, Effect.map(make(config), (engines) => Engine.makeEngines([Engine.echo, ...engines])))

/**
 * `layer` over the platform's fetch client, whose requests are aborted when a turn is interrupted. This is the
 * one-liner for a runtime: `layerMemory({ engineLayer: LlmEngines.layerFetch(config) })`.
 */
export const layerFetch = (
  config: LlmConfig = {}
): Layer.Layer<Engine.Engines, never, AllocationRegistry.AllocationRegistry> =>
  layer(config).pipe(Layer.provide(FetchHttpClient.layer))
