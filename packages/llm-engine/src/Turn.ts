import { type AiError, type LanguageModel, Prompt, type Response, type Tool, type Toolkit } from "@effect/ai"
import { Engine } from "@yoi/worker-runtime"
import { Clock, Effect, Either, Option, Random, Stream } from "effect"
import * as Errors from "./internal/errors.js"

/** How transient provider failures are retried: exponential backoff with jitter inside a total time budget. */
export interface RetryPolicy {
  /** Retries after the first attempt of one model request. */
  readonly maxRetries: number
  readonly initialDelayMs: number
  readonly maxDelayMs: number
  /** Total time one model request may spend across its attempts, waits included. */
  readonly budgetMs: number
}

export const defaultRetry: RetryPolicy = { maxRetries: 4, initialDelayMs: 500, maxDelayMs: 20_000, budgetMs: 60_000 }

export interface TurnOptions {
  readonly model: LanguageModel.Service
  readonly toolkit: Option.Option<Toolkit.WithHandler<Record<string, Tool.Any>>>
  readonly prompt: Prompt.Prompt
  /** Model requests one turn may make; a model still calling tools after the last one fails the turn. */
  readonly maxSteps: number
  /** Longest wait for the next piece of a response (the first one included). */
  readonly timeoutMs: number
  readonly retry: RetryPolicy
  /** The API key, only so provider text that echoes it can be scrubbed. */
  readonly secret: string | undefined
  /** Turns a request's finish part into usage; providers count cached input differently. */
  readonly usage: (finish: Response.FinishPart) => UsageCount
  readonly emit: (event: Engine.EngineEvent) => Effect.Effect<void>
}

export interface UsageCount {
  readonly input_tokens: number
  readonly output_tokens: number
  readonly cached_tokens: number
}

/** Usage as OpenAI reports it: input tokens include the cached ones. */
export const usageIncludingCached = (finish: Response.FinishPart): UsageCount => ({
  input_tokens: finish.usage.inputTokens ?? 0,
  output_tokens: finish.usage.outputTokens ?? 0,
  cached_tokens: finish.usage.cachedInputTokens ?? 0
})

interface StepResult {
  readonly text: string
  readonly calls: ReadonlyArray<{ readonly id: string; readonly name: string; readonly params: unknown }>
  readonly reason: Response.FinishReason
  readonly usage: UsageCount
}

const isFailure = (u: unknown): u is Errors.Failure =>
  typeof u === "object" && u !== null && "error" in u && u.error instanceof Engine.EngineError

const incomplete: Errors.Failure = {
  error: new Engine.EngineError({
    code: "provider_unavailable",
    message: "the provider closed the stream before the response finished",
    retryable: true
  }),
  retryable: true
}

/** One model request: streams text deltas out as they come, collects tool calls, usage and the finish reason. */
const attempt = (
  options: TurnOptions,
  prompt: Prompt.Prompt,
  progress: { emitted: boolean }
): Effect.Effect<StepResult, Errors.Failure> =>
  Effect.suspend(() => {
    let text = ""
    const calls: Array<StepResult["calls"][number]> = []
    let finish: Response.FinishPart | undefined
    const timeout: Errors.Failure = {
      error: new Engine.EngineError({
        code: "provider_timeout",
        message: `the provider sent nothing for ${options.timeoutMs} ms`,
        retryable: true
      }),
      retryable: true
    }
    const stream = (Option.isSome(options.toolkit)
      ? options.model.streamText({ prompt, toolkit: options.toolkit.value, disableToolCallResolution: true })
      : options.model.streamText({ prompt })) as Stream.Stream<Response.StreamPart<any>, AiError.AiError>
    return stream.pipe(
      Stream.timeoutFail(() => timeout, options.timeoutMs),
      Stream.runForEach((part): Effect.Effect<void, Errors.Failure> => {
        switch (part.type) {
          case "text-delta": {
            if (part.delta.length === 0) return Effect.void
            text += part.delta
            progress.emitted = true
            return options.emit({ _tag: "TextDelta", text: part.delta })
          }
          case "tool-call": {
            if (part.providerExecuted !== true) calls.push({ id: part.id, name: part.name, params: part.params })
            return Effect.void
          }
          case "finish": {
            finish = part
            return Effect.void
          }
          case "error":
            return Effect.fail(Errors.fromStreamError(part.error, options.secret))
          default:
            return Effect.void
        }
      }),
      Effect.catchAll((e) =>
        isFailure(e)
          ? Effect.fail(e)
          : Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.fail(Errors.fromAiError(e, options.secret, now)))),
      Effect.flatMap(() =>
        finish === undefined
          ? Effect.fail(incomplete)
          : Effect.succeed({ text, calls, reason: finish.reason, usage: options.usage(finish) })
      )
    )
  })

/**
 * One model request with retries: a transient failure before any text reached the worker is retried after
 * `Retry-After` or an exponential, jittered backoff, each retry announced as a `Retry` event; a failure once text has
 * streamed fails the turn (the partial text is kept), since a retry would repeat it.
 */
const step = (options: TurnOptions, prompt: Prompt.Prompt): Effect.Effect<StepResult, Engine.EngineError> =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    for (let retries = 0; ; retries++) {
      const progress = { emitted: false }
      const outcome = yield* Effect.either(attempt(options, prompt, progress))
      if (Either.isRight(outcome)) return outcome.right
      const failure = outcome.left
      if (!failure.retryable || progress.emitted) return yield* failure.error
      if (retries >= options.retry.maxRetries) {
        return yield* new Engine.EngineError({
          code: failure.error.code,
          message: `${failure.error.message} (gave up after ${retries + 1} attempts)`,
          retryable: true
        })
      }
      const backoff = Math.min(options.retry.maxDelayMs, options.retry.initialDelayMs * 2 ** retries)
      const jitter = yield* Random.nextRange(0.5, 1)
      const delay = failure.retryAfterMs ?? Math.round(backoff * jitter)
      const elapsed = (yield* Clock.currentTimeMillis) - started
      if (elapsed + delay > options.retry.budgetMs) {
        return yield* new Engine.EngineError({
          code: failure.error.code,
          message: `${failure.error.message} (a retry in ${delay} ms would exceed the ${options.retry.budgetMs} ms retry budget)`,
          retryable: true
        })
      }
      yield* options.emit({ _tag: "Retry", attempt: retries + 1, delay_ms: delay, reason: failure.error.message })
      yield* Effect.sleep(delay)
    }
  })

const stepLimit = (steps: number) =>
  new Engine.EngineError({
    code: "step_limit_reached",
    message: `the model was still calling tools after ${steps} model requests (max_steps); its last tool calls were not run`,
    retryable: false
  })

/** Runs the tool loop of one turn: model request, tool calls, their results back to the model, until it finishes. */
export const run = (options: TurnOptions): Effect.Effect<void, Engine.EngineError> =>
  Effect.gen(function*() {
    let prompt = options.prompt
    for (let steps = 1; ; steps++) {
      const result = yield* step(options, prompt)
      yield* options.emit({ _tag: "Usage", ...result.usage })
      if (result.calls.length === 0 || Option.isNone(options.toolkit)) {
        return yield* options.emit({ _tag: "Finish", reason: result.reason })
      }
      if (steps >= options.maxSteps) return yield* stepLimit(steps)
      const toolkit = options.toolkit.value
      const results: Array<Prompt.ToolResultPartEncoded> = []
      for (const call of result.calls) {
        yield* options.emit({ _tag: "ToolCall", call_id: call.id, name: call.name, arguments: call.params })
        const outcome = yield* toolkit.handle(call.name, call.params as never).pipe(
          Effect.map((r) => ({ result: r.encodedResult, isFailure: r.isFailure })),
          Effect.catchAll((e: unknown) =>
            Effect.succeed({
              result: {
                _tag: "ToolError",
                code: "invalid_arguments",
                message: typeof e === "object" && e !== null && "message" in e ? String(e.message) : "the tool failed"
              },
              isFailure: true
            }))
        )
        yield* options.emit({
          _tag: "ToolResult",
          call_id: call.id,
          name: call.name,
          result: outcome.result,
          is_error: outcome.isFailure
        })
        results.push({
          type: "tool-result",
          id: call.id,
          name: call.name,
          result: outcome.result,
          isFailure: outcome.isFailure,
          providerExecuted: false
        })
      }
      const assistant: Prompt.AssistantMessageEncoded = {
        role: "assistant",
        content: [
          ...(result.text.length > 0 ? [{ type: "text" as const, text: result.text }] : []),
          ...result.calls.map((call) => ({
            type: "tool-call" as const,
            id: call.id,
            name: call.name,
            params: call.params,
            providerExecuted: false
          }))
        ]
      }
      prompt = Prompt.merge(prompt, Prompt.make([assistant, { role: "tool", content: results }]))
    }
  })
