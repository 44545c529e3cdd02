import { Context, Data, Effect, Layer, Option, Stream } from "effect"
import type { EngineSpec, TranscriptEntry } from "./Domain.js"
import { InvalidInput } from "./Errors.js"

/** What an engine emits during one turn. */
export type EngineEvent =
  | { readonly _tag: "TextDelta"; readonly text: string }
  | { readonly _tag: "ToolCall"; readonly call_id: string; readonly name: string; readonly arguments: unknown }
  | {
    readonly _tag: "ToolResult"
    readonly call_id: string
    readonly name: string
    readonly result: unknown
    readonly is_error: boolean
  }
  | {
    readonly _tag: "Usage"
    readonly input_tokens: number
    readonly output_tokens: number
    readonly cached_tokens?: number | undefined
  }
  | { readonly _tag: "Retry"; readonly attempt: number; readonly delay_ms: number; readonly reason: string }
  | { readonly _tag: "Finish"; readonly reason: string }

/** A failed turn. Recorded in the transcript as `{_tag: "EngineError", code, message}`; the worker stays usable. */
export class EngineError extends Data.TaggedError("EngineError")<{
  readonly code: string
  readonly message: string
  readonly retryable?: boolean | undefined
  readonly cause?: unknown
}> {}

/** Everything an engine gets for one turn. */
export interface TurnContext {
  readonly runtimeId: string
  readonly workerId: string
  readonly turnId: string
  readonly spec: EngineSpec
  readonly systemPrompt: string | undefined
  readonly tools: ReadonlyArray<string>
  readonly input: string
  /** The committed transcript before this turn's input, newest `limit` entries, read only when asked for. */
  readonly history: (limit: number) => Effect.Effect<ReadonlyArray<TranscriptEntry>>
}

/** One provider: validates a profile's spec at start and runs turns as a stream of engine events. */
export interface Engine {
  readonly provider: string
  /** Tool names this engine can run for a worker that was granted them. */
  readonly tools: ReadonlyArray<string>
  /** Checks a configured profile's spec; `field` names the bad member (e.g. `base_url`). */
  readonly validate: (spec: EngineSpec) => Effect.Effect<void, InvalidInput>
  /**
   * Why a turn with this spec could not start now (its key cannot be read), or none when it could. Asked whenever a
   * client reads the runtime's profiles, so a key that appears later makes the profile ready. Absent: always ready.
   * The reason names no key reference or path.
   */
  readonly notReady?: ((spec: EngineSpec) => Effect.Effect<Option.Option<string>>) | undefined
  readonly turn: (context: TurnContext) => Stream.Stream<EngineEvent, EngineError>
}

export interface EnginesService {
  readonly get: (provider: string) => Option.Option<Engine>
  readonly providers: ReadonlyArray<string>
  readonly tools: ReadonlyArray<string>
}

/** The engines a runtime offers, by provider name. */
export class Engines extends Context.Tag("@yoi/worker-runtime/Engines")<Engines, EnginesService>() {}

export const makeEngines = (engines: ReadonlyArray<Engine>): EnginesService => {
  const byProvider = new Map(engines.map((e) => [e.provider, e] as const))
  return {
    get: (provider) => Option.fromNullable(byProvider.get(provider)),
    providers: Array.from(byProvider.keys()),
    tools: Array.from(new Set(engines.flatMap((e) => e.tools)))
  }
}

const chunk = (text: string, size: number): Array<string> => {
  const chars = Array.from(text)
  const out: Array<string> = []
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(""))
  return out
}

const countTokens = (text: string) => text.split(/\s+/).filter((w) => w.length > 0).length

/**
 * The offline engine: streams the input back in chunks of `chunk_size` characters (default 16), `delay_ms` apart
 * (default 0), reports word counts as usage, and fails with `echo_failure` after `fail_after_chunks` chunks if set.
 */
export const echo: Engine = {
  provider: "echo",
  tools: [],
  validate: (spec) =>
    spec.model !== undefined || spec.base_url !== undefined || spec.api_key !== undefined
      ? Effect.fail(new InvalidInput({
        field: spec.model !== undefined ? "model" : spec.base_url !== undefined ? "base_url" : "api_key",
        message: "the echo engine takes no model, base_url or api_key"
      }))
      : Effect.void,
  turn: (context) => {
    const size = context.spec.chunk_size ?? 16
    const delay = context.spec.delay_ms ?? 0
    const failAfter = context.spec.fail_after_chunks
    const parts = chunk(context.input, size)
    const deltas = Stream.fromIterable(parts.entries()).pipe(
      Stream.mapEffect(([i, text]) => {
        const emit = failAfter !== undefined && i >= failAfter
          ? Effect.fail(new EngineError({ code: "echo_failure", message: `echo failed after ${failAfter} chunks` }))
          : Effect.succeed<EngineEvent>({ _tag: "TextDelta", text })
        return delay > 0 ? Effect.zipRight(Effect.sleep(delay), emit) : emit
      })
    )
    const end: ReadonlyArray<EngineEvent> = [
      { _tag: "Usage", input_tokens: countTokens(context.input), output_tokens: countTokens(context.input) },
      { _tag: "Finish", reason: "stop" }
    ]
    if (delay === 0 && failAfter === undefined) {
      // One chunk: nothing to wait for between deltas.
      return Stream.fromIterable([...parts.map((text): EngineEvent => ({ _tag: "TextDelta", text })), ...end])
    }
    return Stream.concat(deltas, Stream.fromIterable(end))
  }
}

export const layer = (engines: ReadonlyArray<Engine>): Layer.Layer<Engines> =>
  Layer.succeed(Engines, makeEngines(engines))

/** Only the offline `echo` engine. */
export const layerEcho: Layer.Layer<Engines> = layer([echo])
