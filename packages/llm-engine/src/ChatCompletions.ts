import { AiError, IdGenerator, LanguageModel, type Prompt, type Response, Tool } from "@effect/ai"
import { HttpClient, type HttpClientError, HttpClientRequest } from "@effect/platform"
import { SseWire } from "@yoi/worker-runtime"
import { Effect, Either, identity, Layer, type Redacted, Schema, Stream } from "effect"

/**
 * An `@effect/ai` `LanguageModel` for the Chat Completions wire protocol (`POST {base_url}/chat/completions`,
 * `stream: true`, `stream_options.include_usage`): what Ollama, vLLM, llama.cpp's server, LM Studio and most
 * gateways speak. Streams text deltas, assembles tool-call deltas into calls, and reports usage and the finish reason.
 */
export interface Options {
  /** Ends before `/chat/completions`, e.g. `http://127.0.0.1:11434/v1`. */
  readonly baseUrl: string
  readonly apiKey?: Redacted.Redacted | undefined
  readonly model: string
  readonly temperature?: number | undefined
  readonly maxTokens?: number | undefined
}

const ToolCallDelta = Schema.Struct({
  index: Schema.optional(Schema.NullOr(Schema.Number)),
  id: Schema.optional(Schema.NullOr(Schema.String)),
  function: Schema.optional(Schema.NullOr(Schema.Struct({
    name: Schema.optional(Schema.NullOr(Schema.String)),
    arguments: Schema.optional(Schema.NullOr(Schema.String))
  })))
})

const UsageWire = Schema.Struct({
  prompt_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  completion_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  prompt_tokens_details: Schema.optional(Schema.NullOr(Schema.Struct({
    cached_tokens: Schema.optional(Schema.NullOr(Schema.Number))
  })))
})

const ChunkWire = Schema.Struct({
  id: Schema.optional(Schema.NullOr(Schema.String)),
  model: Schema.optional(Schema.NullOr(Schema.String)),
  choices: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
    index: Schema.optional(Schema.NullOr(Schema.Number)),
    delta: Schema.optional(Schema.NullOr(Schema.Struct({
      content: Schema.optional(Schema.NullOr(Schema.String)),
      tool_calls: Schema.optional(Schema.NullOr(Schema.Array(ToolCallDelta)))
    }))),
    finish_reason: Schema.optional(Schema.NullOr(Schema.String))
  })))),
  usage: Schema.optional(Schema.NullOr(UsageWire)),
  error: Schema.optional(Schema.Unknown)
})
type ChunkWire = typeof ChunkWire.Type

const CompletionWire = Schema.Struct({
  id: Schema.optional(Schema.NullOr(Schema.String)),
  model: Schema.optional(Schema.NullOr(Schema.String)),
  choices: Schema.Array(Schema.Struct({
    message: Schema.Struct({
      content: Schema.optional(Schema.NullOr(Schema.String)),
      tool_calls: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
        id: Schema.String,
        function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
      }))))
    }),
    finish_reason: Schema.optional(Schema.NullOr(Schema.String))
  })),
  usage: Schema.optional(Schema.NullOr(UsageWire))
})

const decodeChunk = Schema.decodeUnknown(Schema.parseJson(ChunkWire))
const decodeCompletion = Schema.decodeUnknown(CompletionWire)

const malformedInput = (description: string) =>
  new AiError.MalformedInput({ module: "ChatCompletions", method: "prepareMessages", description })

type WireMessage =
  | { role: "system"; content: string }
  | { role: "user"; content: string }
  | {
    role: "assistant"
    content: string | null
    tool_calls?: Array<{ id: string; type: "function"; function: { name: string; arguments: string } }>
  }
  | { role: "tool"; tool_call_id: string; content: string }

/** Converts a prompt to Chat Completions messages; only text, tool calls and tool results are supported. */
export const toMessages = (prompt: Prompt.Prompt): Effect.Effect<Array<WireMessage>, AiError.MalformedInput> =>
  Effect.gen(function*() {
    const out: Array<WireMessage> = []
    for (const message of prompt.content) {
      switch (message.role) {
        case "system":
          out.push({ role: "system", content: message.content })
          break
        case "user": {
          const texts: Array<string> = []
          for (const part of message.content) {
            if (part.type !== "text") return yield* malformedInput(`unsupported user content: ${part.type}`)
            texts.push(part.text)
          }
          out.push({ role: "user", content: texts.join("") })
          break
        }
        case "assistant": {
          const texts: Array<string> = []
          const calls: Array<{ id: string; type: "function"; function: { name: string; arguments: string } }> = []
          for (const part of message.content) {
            if (part.type === "text") texts.push(part.text)
            if (part.type === "tool-call" && !part.providerExecuted) {
              calls.push({
                id: part.id,
                type: "function",
                function: { name: part.name, arguments: JSON.stringify(part.params ?? {}) }
              })
            }
          }
          const text = texts.join("")
          out.push({
            role: "assistant",
            content: text.length > 0 ? text : null,
            ...(calls.length > 0 ? { tool_calls: calls } : {})
          })
          break
        }
        case "tool":
          for (const part of message.content) {
            out.push({ role: "tool", tool_call_id: part.id, content: JSON.stringify(part.result) ?? "null" })
          }
          break
      }
    }
    return out
  })

const prepareTools = (options: LanguageModel.ProviderOptions) => {
  const tools = options.tools.filter(Tool.isUserDefined).map((tool) => {
    const description = tool.description ?? Tool.getDescriptionFromSchemaAst(tool.parametersSchema.ast)
    return {
      type: "function" as const,
      function: {
        name: tool.name,
        ...(description === undefined ? {} : { description }),
        parameters: Tool.getJsonSchemaFromSchemaAst(tool.parametersSchema.ast)
      }
    }
  })
  if (tools.length === 0) return {}
  const choice = options.toolChoice
  const tool_choice = typeof choice === "string"
    ? choice
    : "tool" in choice
      ? { type: "function", function: { name: choice.tool } }
      : (choice.mode ?? "auto")
  return { tools, tool_choice }
}

const prepareResponseFormat = (options: LanguageModel.ProviderOptions) =>
  options.responseFormat.type === "json"
    ? {
      response_format: {
        type: "json_schema",
        json_schema: {
          name: options.responseFormat.objectName,
          schema: Tool.getJsonSchemaFromSchemaAst(options.responseFormat.schema.ast)
        }
      }
    }
    : {}

const finishReason = (reason: string | null | undefined, hasToolCalls: boolean): Response.FinishReason => {
  switch (reason) {
    case "tool_calls":
    case "function_call":
      return "tool-calls"
    case "length":
      return "length"
    case "content_filter":
      return "content-filter"
    case "stop":
    case null:
    case undefined:
      return hasToolCalls ? "tool-calls" : "stop"
    default:
      return hasToolCalls ? "tool-calls" : "other"
  }
}

const usage = (wire: typeof UsageWire.Type | null | undefined): typeof Response.Usage.Encoded => {
  const input = wire?.prompt_tokens ?? undefined
  const output = wire?.completion_tokens ?? undefined
  const cached = wire?.prompt_tokens_details?.cached_tokens ?? undefined
  return {
    inputTokens: input,
    outputTokens: output,
    totalTokens: input === undefined && output === undefined ? undefined : (input ?? 0) + (output ?? 0),
    ...(cached === undefined ? {} : { cachedInputTokens: cached })
  }
}

/**
 * Tool arguments as sent. Text that is not JSON becomes `{}`, so the call fails the tool's own argument check and the
 * model is told, instead of the whole turn failing (local models get JSON wrong more often).
 */
const parseArguments = (text: string): unknown =>
  text.trim().length === 0 ? {} : Either.getOrElse(Either.try(() => Tool.unsafeSecureJsonParse(text)), () => ({}))

/**
 * The data of each event of an SSE body, read with the shared parser. An event the server left without its final
 * blank line at the end of the body still counts (some servers end that way); `[DONE]` is left to the caller.
 */
const sseData = <E, R>(
  text: Stream.Stream<string, E, R>,
  method: string
): Stream.Stream<string, E | AiError.MalformedOutput, R> =>
  Stream.suspend(() => {
    const parser = new SseWire.SseParser()
    const dataOf = (items: ReadonlyArray<SseWire.SseItem>) =>
      items.flatMap((item) => (item._tag === "Event" ? [item.data] : []))
    return text.pipe(
      Stream.mapConcatEffect((piece) =>
        Either.match(parser.feed(piece), {
          onLeft: (description) => Effect.fail(new AiError.MalformedOutput({ module: "ChatCompletions", method, description })),
          onRight: (items) => Effect.succeed(dataOf(items))
        })
      ),
      Stream.concat(Stream.suspend(() => Stream.fromIterable(dataOf(parser.end()))))
    )
  })

interface StreamState {
  metadataSent: boolean
  textOpen: boolean
  readonly calls: Map<number, { id: string; name: string; args: string }>
  finish: string | null | undefined
  usage: typeof UsageWire.Type | null | undefined
  done: boolean
}

const chunkParts = (
  state: StreamState,
  chunk: ChunkWire,
  newId: Effect.Effect<string>
): Effect.Effect<Array<Response.StreamPartEncoded>> =>
  Effect.gen(function*() {
    const parts: Array<Response.StreamPartEncoded> = []
    if (chunk.error !== undefined && chunk.error !== null) parts.push({ type: "error", error: chunk.error })
    if (!state.metadataSent && (chunk.id || chunk.model)) {
      state.metadataSent = true
      parts.push({
        type: "response-metadata",
        ...(chunk.id ? { id: chunk.id } : {}),
        ...(chunk.model ? { modelId: chunk.model } : {})
      })
    }
    if (chunk.usage !== undefined && chunk.usage !== null) state.usage = chunk.usage
    for (const choice of chunk.choices ?? []) {
      if ((choice.index ?? 0) !== 0) continue
      const content = choice.delta?.content
      if (content !== undefined && content !== null && content.length > 0) {
        if (!state.textOpen) {
          state.textOpen = true
          parts.push({ type: "text-start", id: "0" })
        }
        parts.push({ type: "text-delta", id: "0", delta: content })
      }
      for (const [position, delta] of (choice.delta?.tool_calls ?? []).entries()) {
        const key = delta.index ?? position
        let call = state.calls.get(key)
        if (call === undefined) {
          call = { id: delta.id ?? (yield* newId), name: delta.function?.name ?? "", args: "" }
          state.calls.set(key, call)
          parts.push({ type: "tool-params-start", id: call.id, name: call.name })
        } else if (call.name === "" && delta.function?.name) {
          call.name = delta.function.name
        }
        const args = delta.function?.arguments
        if (args !== undefined && args !== null && args.length > 0) {
          call.args += args
          parts.push({ type: "tool-params-delta", id: call.id, delta: args })
        }
      }
      if (choice.finish_reason !== undefined && choice.finish_reason !== null) state.finish = choice.finish_reason
    }
    return parts
  })

const endParts = (state: StreamState): Array<Response.StreamPartEncoded> => {
  // A stream cut off before any finish reason or `[DONE]` gets no finish part: the caller sees it as incomplete.
  if (state.finish === undefined && !state.done) return []
  const parts: Array<Response.StreamPartEncoded> = []
  if (state.textOpen) parts.push({ type: "text-end", id: "0" })
  const calls = Array.from(state.calls.entries()).sort(([a], [b]) => a - b).map(([, call]) => call)
  for (const call of calls) {
    parts.push({ type: "tool-params-end", id: call.id })
    parts.push({ type: "tool-call", id: call.id, name: call.name, params: parseArguments(call.args) })
  }
  parts.push({ type: "finish", reason: finishReason(state.finish, calls.length > 0), usage: usage(state.usage) })
  return parts
}

export const make = (options: Options): Effect.Effect<LanguageModel.Service, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const base = options.baseUrl.replace(/\/+$/, "")
    const client = (yield* HttpClient.HttpClient).pipe(
      HttpClient.mapRequest((request) =>
        request.pipe(
          HttpClientRequest.prependUrl(base),
          options.apiKey === undefined ? identity : HttpClientRequest.bearerToken(options.apiKey)
        )
      ),
      HttpClient.filterStatusOk
    )

    const body = (providerOptions: LanguageModel.ProviderOptions, stream: boolean) =>
      Effect.map(toMessages(providerOptions.prompt), (messages) => ({
        model: options.model,
        messages,
        ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
        ...(options.maxTokens === undefined ? {} : { max_tokens: options.maxTokens }),
        ...prepareTools(providerOptions),
        ...prepareResponseFormat(providerOptions),
        ...(stream ? { stream: true, stream_options: { include_usage: true } } : {})
      }))

    const request = (json: unknown, accept: string) =>
      HttpClientRequest.post("/chat/completions").pipe(
        HttpClientRequest.setHeader("accept", accept),
        HttpClientRequest.bodyUnsafeJson(json)
      )

    const fromHttpError = (method: string) =>
      (error: HttpClientError.HttpClientError): Effect.Effect<never, AiError.AiError> =>
        error._tag === "RequestError"
          ? Effect.fail(AiError.HttpRequestError.fromRequestError({ module: "ChatCompletions", method, error }))
          : AiError.HttpResponseError.fromResponseError({ module: "ChatCompletions", method, error })

    const streamText = (providerOptions: LanguageModel.ProviderOptions) =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const idGenerator = yield* IdGenerator.IdGenerator
        const json = yield* body(providerOptions, true)
        const response = yield* client.execute(request(json, "text/event-stream")).pipe(
          Effect.catchTags({ RequestError: fromHttpError("streamText"), ResponseError: fromHttpError("streamText") })
        )
        const state: StreamState = {
          metadataSent: false,
          textOpen: false,
          calls: new Map(),
          finish: undefined,
          usage: undefined,
          done: false
        }
        const parts = response.stream.pipe(
          Stream.decodeText(),
          (text) => sseData(text, "streamText"),
          Stream.takeWhile((data) => {
            if (data.trim() === "[DONE]") state.done = true
            return !state.done
          }),
          Stream.mapEffect((data) =>
            Effect.flatMap(
              Effect.mapError(decodeChunk(data), (error) =>
                AiError.MalformedOutput.fromParseError({ module: "ChatCompletions", method: "streamText", error })),
              (chunk) => chunkParts(state, chunk, idGenerator.generateId())
            )),
          Stream.flattenIterables,
          Stream.concat(Stream.suspend(() => Stream.fromIterable(endParts(state)))),
          Stream.catchTag("ResponseError", (error) => Stream.fromEffect(fromHttpError("streamText")(error)))
        )
        return parts
      }))

    const generateText = (providerOptions: LanguageModel.ProviderOptions) =>
      Effect.gen(function*() {
        const json = yield* body(providerOptions, false)
        const raw = yield* client.execute(request(json, "application/json")).pipe(
          Effect.flatMap((response) => response.json),
          Effect.scoped,
          Effect.catchTags({ RequestError: fromHttpError("generateText"), ResponseError: fromHttpError("generateText") })
        )
        const completion = yield* Effect.mapError(decodeCompletion(raw), (error) =>
          AiError.MalformedOutput.fromParseError({ module: "ChatCompletions", method: "generateText", error }))
        const parts: Array<Response.PartEncoded> = [{
          type: "response-metadata",
          ...(completion.id ? { id: completion.id } : {}),
          ...(completion.model ? { modelId: completion.model } : {})
        }]
        const choice = completion.choices[0]
        const text = choice?.message.content
        if (text !== undefined && text !== null && text.length > 0) parts.push({ type: "text", text })
        const calls = choice?.message.tool_calls ?? []
        for (const call of calls) {
          parts.push({
            type: "tool-call",
            id: call.id,
            name: call.function.name,
            params: parseArguments(call.function.arguments)
          })
        }
        parts.push({
          type: "finish",
          reason: finishReason(choice?.finish_reason, calls.length > 0),
          usage: usage(completion.usage)
        })
        return parts
      })

    return yield* LanguageModel.make({ generateText, streamText })
  })

export const layer = (options: Options): Layer.Layer<LanguageModel.LanguageModel, never, HttpClient.HttpClient> =>
  Layer.effect(LanguageModel.LanguageModel, make(options))
