import { Prompt } from "@effect/ai"
import type { Domain } from "@yoi/worker-runtime"

/** A rough token count (four characters a token): enough to keep a prompt inside a budget without a tokenizer. */
export const estimateTokens = (text: string): number => Math.ceil(text.length / 4)

const json = (value: unknown): string => JSON.stringify(value) ?? "null"

const cost = (data: Domain.TranscriptEntryData): number => {
  switch (data._tag) {
    case "user_input":
    case "assistant_message":
      return estimateTokens(data.text) + 4
    case "tool_call":
      return estimateTokens(data.name + json(data.arguments)) + 8
    case "tool_result":
      return estimateTokens(json(data.result)) + 8
    case "notice":
      return 0
  }
}

export interface BuildOptions {
  readonly systemPrompt: string | undefined
  /** The committed transcript before this turn, oldest first. */
  readonly history: ReadonlyArray<Domain.TranscriptEntry>
  readonly input: string
  /** Estimated tokens the whole prompt may take; the system prompt and the input always go in. */
  readonly budgetTokens: number
}

export interface Built {
  readonly prompt: Prompt.Prompt
  /** Transcript entries left out (over budget, or unusable on their own). */
  readonly omitted: number
}

/**
 * Builds the prompt for a turn from the transcript: the system prompt, then the newest entries that fit the budget,
 * then the input. The kept history starts at a user input, and tool calls and results are kept only in pairs, so
 * every provider accepts the message sequence (a cancelled turn may have left a call without a result).
 */
export const build = (options: BuildOptions): Built => {
  const usable = options.history.filter((e) => e.data._tag !== "notice")
  let remaining = options.budgetTokens - estimateTokens(options.systemPrompt ?? "") - estimateTokens(options.input)
  let start = usable.length
  while (start > 0) {
    const next = cost(usable[start - 1]!.data)
    if (next > remaining) break
    remaining -= next
    start -= 1
  }
  let kept = usable.slice(start)
  const firstUser = kept.findIndex((e) => e.data._tag === "user_input")
  kept = firstUser === -1 ? [] : kept.slice(firstUser)
  const calls = new Set(kept.flatMap((e) => (e.data._tag === "tool_call" ? [e.data.call_id] : [])))
  const results = new Set(kept.flatMap((e) => (e.data._tag === "tool_result" ? [e.data.call_id] : [])))
  kept = kept.filter((e) =>
    e.data._tag === "tool_call" ? results.has(e.data.call_id)
      : e.data._tag === "tool_result" ? calls.has(e.data.call_id)
        : !(e.data._tag === "assistant_message" && e.data.text.trim().length === 0)
  )

  const messages: Array<Prompt.MessageEncoded> = []
  if (options.systemPrompt !== undefined && options.systemPrompt.length > 0) {
    messages.push({ role: "system", content: options.systemPrompt })
  }
  type Assistant = Extract<Prompt.MessageEncoded, { role: "assistant" }>
  type ToolMessage = Extract<Prompt.MessageEncoded, { role: "tool" }>
  const last = () => messages[messages.length - 1]
  for (const { data } of kept) {
    switch (data._tag) {
      case "user_input":
        messages.push({ role: "user", content: [{ type: "text", text: data.text }] })
        break
      case "assistant_message":
      case "tool_call": {
        const part: Assistant["content"][number] = data._tag === "assistant_message"
          ? { type: "text", text: data.text }
          : { type: "tool-call", id: data.call_id, name: data.name, params: data.arguments, providerExecuted: false }
        const previous = last()
        if (previous?.role === "assistant" && Array.isArray(previous.content)) {
          ;(previous.content as Array<Assistant["content"][number]>).push(part)
        } else {
          messages.push({ role: "assistant", content: [part] })
        }
        break
      }
      case "tool_result": {
        const part: ToolMessage["content"][number] = {
          type: "tool-result",
          id: data.call_id,
          name: data.name,
          result: data.result,
          isFailure: data.is_error,
          providerExecuted: false
        }
        const previous = last()
        if (previous?.role === "tool") {
          ;(previous.content as Array<ToolMessage["content"][number]>).push(part)
        } else {
          messages.push({ role: "tool", content: [part] })
        }
        break
      }
      case "notice":
        break
    }
  }
  messages.push({ role: "user", content: [{ type: "text", text: options.input }] })
  return { prompt: Prompt.make(messages), omitted: options.history.length - kept.length }
}
