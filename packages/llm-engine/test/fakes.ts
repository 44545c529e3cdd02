import { Effect } from "effect"
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

/** The wire protocols the fakes speak. */
export type Protocol = "chat" | "responses" | "anthropic"

export interface ScriptedCall {
  readonly id: string
  readonly name: string
  /** The JSON arguments as the model would send them. */
  readonly args: string
  /** How many deltas the arguments are split into (default 3). */
  readonly pieces?: number
}

export interface Usage {
  /** All input tokens, cached ones included. */
  readonly input: number
  readonly output: number
  readonly cached?: number
  /** Anthropic only: input tokens written to the prompt cache (also inside `input`). */
  readonly cacheWrite?: number
}

export type Reply =
  | {
    readonly kind: "stream"
    readonly text?: ReadonlyArray<string>
    readonly calls?: ReadonlyArray<ScriptedCall>
    readonly usage?: Usage
    /** After the text, report this provider error inside the stream (an Anthropic `error` event and the like). */
    readonly errorAfterText?: { readonly type: string; readonly message: string }
    /** After the text, keep the response open without finishing it. */
    readonly hang?: boolean
    /** After the text, destroy the connection without finishing the stream. */
    readonly cut?: boolean
    /** Pause between frames. */
    readonly frameDelayMs?: number
  }
  | {
    readonly kind: "status"
    readonly status: number
    readonly type: string
    readonly message: string
    readonly headers?: Readonly<Record<string, string>>
  }

export interface Recorded {
  readonly method: string
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: any
}

export interface Fake {
  readonly protocol: Protocol
  /** The origin, e.g. `http://127.0.0.1:43210`. */
  readonly origin: string
  readonly requests: Array<Recorded>
  /** Responses the client closed before the fake finished them (an aborted request). */
  readonly closedEarly: () => number
  /** Resolves once a hanging reply has been started, so a test can cancel mid-stream. */
  readonly hanging: () => Promise<void>
  readonly script: (...replies: ReadonlyArray<Reply>) => void
}

type Frame = { readonly event?: string; readonly data: unknown }

const MODEL = "fake-model"

const chatFrames = (reply: Extract<Reply, { kind: "stream" }>): { head: Array<Frame>; tail: Array<Frame> } => {
  const base = { id: "chatcmpl-1", object: "chat.completion.chunk", created: 1_700_000_000, model: MODEL }
  const chunk = (delta: unknown, finish: string | null = null) => ({
    data: { ...base, choices: [{ index: 0, delta, finish_reason: finish }] }
  })
  const head: Array<Frame> = [chunk({ role: "assistant", content: "" })]
  for (const text of reply.text ?? []) head.push(chunk({ content: text }))
  const tail: Array<Frame> = []
  for (const [index, call] of (reply.calls ?? []).entries()) {
    tail.push(chunk({ tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] }))
    for (const piece of split(call.args, call.pieces ?? 3)) {
      tail.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }))
    }
  }
  tail.push(chunk({}, (reply.calls ?? []).length > 0 ? "tool_calls" : "stop"))
  const usage = reply.usage ?? { input: 10, output: 5 }
  tail.push({
    data: {
      ...base,
      choices: [],
      usage: {
        prompt_tokens: usage.input,
        completion_tokens: usage.output,
        total_tokens: usage.input + usage.output,
        prompt_tokens_details: { cached_tokens: usage.cached ?? 0 }
      }
    }
  })
  tail.push({ data: "[DONE]" })
  return { head, tail }
}

const responseObject = (status: string, output: Array<unknown>, usage?: Usage) => ({
  id: "resp_1",
  object: "response",
  created_at: 1_700_000_000,
  status,
  error: null,
  incomplete_details: null,
  instructions: null,
  max_output_tokens: null,
  model: MODEL,
  output,
  parallel_tool_calls: true,
  previous_response_id: null,
  reasoning: { effort: null, summary: null },
  store: true,
  temperature: 1,
  text: { format: { type: "text" } },
  tool_choice: "auto",
  tools: [],
  top_p: 1,
  truncation: "disabled",
  usage: usage === undefined
    ? null
    : {
      input_tokens: usage.input,
      input_tokens_details: { cached_tokens: usage.cached ?? 0 },
      output_tokens: usage.output,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: usage.input + usage.output
    },
  user: null,
  metadata: {}
})

const responsesFrames = (reply: Extract<Reply, { kind: "stream" }>): { head: Array<Frame>; tail: Array<Frame> } => {
  let seq = 0
  const ev = (type: string, fields: Record<string, unknown>): Frame => ({
    event: type,
    data: { type, sequence_number: seq++, ...fields }
  })
  const head: Array<Frame> = [
    ev("response.created", { response: responseObject("in_progress", []) }),
    ev("response.in_progress", { response: responseObject("in_progress", []) })
  ]
  const output: Array<unknown> = []
  const tail: Array<Frame> = []
  const texts = reply.text ?? []
  if (texts.length > 0) {
    const item = { id: "msg_1", type: "message", status: "in_progress", role: "assistant", content: [] }
    head.push(ev("response.output_item.added", { output_index: 0, item }))
    head.push(ev("response.content_part.added", {
      item_id: "msg_1",
      output_index: 0,
      content_index: 0,
      part: { type: "output_text", text: "", annotations: [] }
    }))
    for (const delta of texts) {
      head.push(ev("response.output_text.delta", { item_id: "msg_1", output_index: 0, content_index: 0, delta, logprobs: [] }))
    }
    const full = texts.join("")
    tail.push(ev("response.output_text.done", { item_id: "msg_1", output_index: 0, content_index: 0, text: full, logprobs: [] }))
    const done = {
      ...item,
      status: "completed",
      content: [{ type: "output_text", text: full, annotations: [], logprobs: [] }]
    }
    tail.push(ev("response.output_item.done", { output_index: 0, item: done }))
    output.push(done)
  }
  for (const call of reply.calls ?? []) {
    const index = output.length
    const itemId = `fc_${call.id}`
    const item = { id: itemId, type: "function_call", status: "in_progress", call_id: call.id, name: call.name, arguments: "" }
    tail.push(ev("response.output_item.added", { output_index: index, item }))
    for (const delta of split(call.args, call.pieces ?? 3)) {
      tail.push(ev("response.function_call_arguments.delta", { item_id: itemId, output_index: index, delta }))
    }
    tail.push(ev("response.function_call_arguments.done", { item_id: itemId, output_index: index, arguments: call.args }))
    const done = { ...item, status: "completed", arguments: call.args }
    tail.push(ev("response.output_item.done", { output_index: index, item: done }))
    output.push(done)
  }
  tail.push(ev("response.completed", { response: responseObject("completed", output, reply.usage ?? { input: 10, output: 5 }) }))
  return { head, tail }
}

const anthropicFrames = (reply: Extract<Reply, { kind: "stream" }>): { head: Array<Frame>; tail: Array<Frame> } => {
  const ev = (type: string, fields: Record<string, unknown>): Frame => ({ event: type, data: { type, ...fields } })
  const usage = reply.usage ?? { input: 10, output: 5 }
  const head: Array<Frame> = [
    ev("message_start", {
      message: {
        id: "msg_1",
        type: "message",
        role: "assistant",
        content: [],
        model: MODEL,
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: usage.input - (usage.cached ?? 0) - (usage.cacheWrite ?? 0),
          cache_creation_input_tokens: usage.cacheWrite ?? 0,
          cache_read_input_tokens: usage.cached ?? 0,
          output_tokens: 1
        }
      }
    }),
    ev("ping", {})
  ]
  const tail: Array<Frame> = []
  let index = 0
  const texts = reply.text ?? []
  if (texts.length > 0) {
    head.push(ev("content_block_start", { index, content_block: { type: "text", text: "" } }))
    for (const text of texts) head.push(ev("content_block_delta", { index, delta: { type: "text_delta", text } }))
    tail.push(ev("content_block_stop", { index }))
    index += 1
  }
  for (const call of reply.calls ?? []) {
    tail.push(ev("content_block_start", { index, content_block: { type: "tool_use", id: call.id, name: call.name, input: {} } }))
    for (const partial_json of split(call.args, call.pieces ?? 3)) {
      tail.push(ev("content_block_delta", { index, delta: { type: "input_json_delta", partial_json } }))
    }
    tail.push(ev("content_block_stop", { index }))
    index += 1
  }
  tail.push(ev("message_delta", {
    delta: { stop_reason: (reply.calls ?? []).length > 0 ? "tool_use" : "end_turn", stop_sequence: null },
    usage: { output_tokens: usage.output }
  }))
  tail.push(ev("message_stop", {}))
  return { head, tail }
}

/** Every frame of a scripted stream in the protocol's own shapes (used to check them against the clients' schemas). */
export const frames = (protocol: Protocol, reply: Extract<Reply, { kind: "stream" }>): Array<Frame> => {
  const { head, tail } = protocol === "chat"
    ? chatFrames(reply)
    : protocol === "responses"
      ? responsesFrames(reply)
      : anthropicFrames(reply)
  return [...head, ...tail]
}

const streamError = (protocol: Protocol, type: string, message: string): Frame =>
  protocol === "chat"
    ? { data: { error: { message, type, code: null } } }
    : protocol === "responses"
      ? { event: "error", data: { type: "error", sequence_number: 99, code: type, message, param: null } }
      : { event: "error", data: { type: "error", error: { type, message } } }

const statusBody = (protocol: Protocol, type: string, message: string) =>
  protocol === "anthropic"
    ? { type: "error", error: { type, message } }
    : { error: { message, type, param: null, code: type } }

const split = (text: string, pieces: number): Array<string> => {
  const size = Math.max(1, Math.ceil(text.length / Math.max(1, pieces)))
  const out: Array<string> = []
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size))
  return out.length === 0 ? [""] : out
}

const encode = (frame: Frame): string =>
  (frame.event === undefined ? "" : `event: ${frame.event}\n`) +
  `data: ${typeof frame.data === "string" ? frame.data : JSON.stringify(frame.data)}\n\n`

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A `node:http` server on port 0 that answers each request with the next scripted reply, in one protocol. */
export const make = (protocol: Protocol): Effect.Effect<Fake, never, import("effect").Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ fake: Fake; close: () => Promise<void> }>((resume) => {
      const queue: Array<Reply> = []
      const requests: Array<Recorded> = []
      let closedEarly = 0
      let hangStarted: (() => void) | undefined
      let hangPromise = new Promise<void>((resolve) => {
        hangStarted = resolve
      })
      const writeStream = async (res: ServerResponse, reply: Extract<Reply, { kind: "stream" }>) => {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
        const { head, tail } = protocol === "chat"
          ? chatFrames(reply)
          : protocol === "responses"
            ? responsesFrames(reply)
            : anthropicFrames(reply)
        const write = async (frame: Frame) => {
          if (res.destroyed) return
          res.write(encode(frame))
          if (reply.frameDelayMs !== undefined) await sleep(reply.frameDelayMs)
        }
        for (const frame of head) await write(frame)
        if (reply.errorAfterText !== undefined) {
          await write(streamError(protocol, reply.errorAfterText.type, reply.errorAfterText.message))
          res.end()
          return
        }
        if (reply.cut === true) {
          res.destroy()
          return
        }
        if (reply.hang === true) {
          hangStarted?.()
          return
        }
        for (const frame of tail) await write(frame)
        res.end()
      }
      const server = createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          requests.push({
            method: req.method ?? "",
            path: req.url ?? "",
            headers: req.headers,
            body: text.length > 0 ? JSON.parse(text) : undefined
          })
          res.on("close", () => {
            if (!res.writableEnded) closedEarly += 1
          })
          const reply = queue.shift()
          if (reply === undefined) {
            res.writeHead(500, { "content-type": "application/json" })
            res.end(JSON.stringify(statusBody(protocol, "api_error", "the fake has no scripted reply")))
            return
          }
          if (reply.kind === "status") {
            res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers })
            res.end(JSON.stringify(statusBody(protocol, reply.type, reply.message)))
            return
          }
          void writeStream(res, reply)
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        const fake: Fake = {
          protocol,
          origin: `http://127.0.0.1:${port}`,
          requests,
          closedEarly: () => closedEarly,
          hanging: () => hangPromise,
          script: (...replies) => {
            hangPromise = new Promise<void>((resolve) => {
              hangStarted = resolve
            })
            queue.push(...replies)
          }
        }
        resume(Effect.succeed({
          fake,
          close: () =>
            new Promise<void>((resolve) => {
              server.closeAllConnections()
              server.close(() => resolve())
            })
        }))
      })
    }),
    ({ close }) => Effect.promise(close)
  ).pipe(Effect.map(({ fake }) => fake))
