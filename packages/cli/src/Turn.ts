import type { Domain } from "@yoi/worker-runtime"
import { Effect, Fiber, Ref, Stream } from "effect"
import { type CliError, TurnNotCompleted, Unreachable } from "./Errors.js"
import { cyan, dim, green, Output, red, statusColor, yellow } from "./Output.js"
import { Remote, type WorkerRef } from "./Remote.js"

export interface TokenUsage {
  readonly input_tokens: number
  readonly output_tokens: number
  readonly cached_tokens?: number | undefined
}

/** What `yoi send --json` prints, and what a chat turn returns. */
export interface ToolCall {
  readonly name: string
  readonly arguments: unknown
  readonly is_error?: boolean
}

export interface TurnResult {
  readonly runtime_id: string
  readonly worker_id: string
  readonly turn_id: string
  readonly outcome: string
  readonly text: string
  readonly usage: TokenUsage
  readonly tool_calls: ReadonlyArray<ToolCall>
  readonly error?: { readonly _tag: string; readonly message: string } | undefined
  readonly reason?: string | undefined
}

const TERMINAL = new Set(["turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"])

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

const record = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null ? value as Record<string, unknown> : {}

const brief = (value: unknown, max = 120): string => {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? ""
  const flat = text.replace(/\s+/g, " ")
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}

/**
 * Starts the turn only once the position to watch from is known, so no delta can be missed. Only with
 * `busy: "enqueue"` can the input be queued instead; that answer is returned as it is.
 */
export const start = (ref: WorkerRef, text: string) =>
  Effect.flatMap(startOrQueue(ref, text), (started) =>
    "queued" in started
      ? Effect.dieMessage("an input without a busy policy was queued")
      : Effect.succeed(started))

export const startOrQueue = (ref: WorkerRef, text: string, busy?: Domain.BusyPolicy) =>
  Effect.gen(function*() {
    const remote = yield* Remote
    const { cursor } = yield* remote.transcript(ref, { all: false, limit: 1 })
    const accepted = yield* remote.input(ref, text, busy)
    return "turn_id" in accepted ? { turnId: accepted.turn_id, cursor } : { queued: accepted }
  })

/**
 * Follows one turn to its end, writing the reply to stdout as it streams (unless `json`), and tool calls, results,
 * a spinner and the outcome to stderr. Interrupting it (Ctrl-C) cancels the turn.
 */
export const follow = (ref: WorkerRef, started: { readonly turnId: string; readonly cursor: string }) =>
  Effect.gen(function*() {
    const remote = yield* Remote
    const output = yield* Output
    const human = !output.json
    const spin = human && output.errColor
    const follower = yield* remote.follow({ worker: ref, cursor: started.cursor })

    let text = ""
    let committed: string | undefined = undefined
    let atLineStart = true
    let usage = { input_tokens: 0, output_tokens: 0, cached_tokens: 0 }
    const toolCalls: Array<{ name: string; arguments: unknown; call_id: string; is_error?: boolean }> = []
    let end: Domain.RuntimeEvent | undefined = undefined

    const spinning = yield* Ref.make(spin)
    const spinner = spin
      ? yield* Effect.forkScoped(
        Effect.iterate(0, {
          while: () => true,
          body: (i) =>
            output.err(`\r${cyan(true, SPINNER[i % SPINNER.length]!)} ${dim(true, "thinking…")}`).pipe(
              Effect.zipRight(Effect.sleep("80 millis")),
              Effect.as(i + 1)
            )
        })
      )
      : undefined
    const stopSpinner = Effect.gen(function*() {
      if (spinner === undefined || !(yield* Ref.getAndSet(spinning, false))) return
      yield* Fiber.interrupt(spinner)
      yield* output.err("\r\u001b[K")
    })

    const toStderr = (line: string) =>
      Effect.gen(function*() {
        if (!human) return
        yield* stopSpinner
        if (!atLineStart) {
          yield* output.out("\n")
          atLineStart = true
        }
        yield* output.err(line)
      })

    const onEvent = (event: Domain.RuntimeEvent) =>
      Effect.gen(function*() {
        const data = record(event.data)
        switch (event.kind) {
          case "turn.delta": {
            const chunk = typeof data.text === "string" ? data.text : ""
            text += chunk
            if (human && chunk.length > 0) {
              yield* stopSpinner
              yield* output.out(chunk)
              atLineStart = chunk.endsWith("\n")
            }
            return
          }
          case "turn.tool_call": {
            toolCalls.push({ name: String(data.name), arguments: data.arguments, call_id: String(data.call_id) })
            return yield* toStderr(`${cyan(output.errColor, "⚙ tool")} ${String(data.name)} ${dim(output.errColor, brief(data.arguments))}\n`)
          }
          case "turn.tool_result": {
            const call = toolCalls.find((c) => c.call_id === String(data.call_id))
            if (call !== undefined) call.is_error = data.is_error === true
            const mark = data.is_error === true ? red(output.errColor, "✗ result") : green(output.errColor, "✓ result")
            return yield* toStderr(`${mark} ${String(data.name)} ${dim(output.errColor, brief(data.result))}\n`)
          }
          case "turn.retry":
            return yield* toStderr(`${yellow(output.errColor, "↻ retry")} ${brief(data.reason ?? "")}\n`)
          case "transcript.appended": {
            const entry = record(record(data.entry).data)
            if (entry._tag === "assistant_message" && typeof entry.text === "string") committed = entry.text
            return
          }
          default:
            if (TERMINAL.has(event.kind)) {
              end = event
              const u = record(data.usage)
              usage = {
                input_tokens: Number(u.input_tokens ?? 0),
                output_tokens: Number(u.output_tokens ?? 0),
                cached_tokens: Number(u.cached_tokens ?? 0)
              }
            }
        }
      })

    const cancelled = remote.cancel(ref).pipe(Effect.ignore)

    yield* follower.events.pipe(
      Stream.filter((e) => e.turn_id === started.turnId),
      Stream.takeUntil((e) => TERMINAL.has(e.kind)),
      Stream.runForEach(onEvent),
      Effect.onInterrupt(() => Effect.zipRight(stopSpinner, cancelled)),
      Effect.catchTag("RuntimeUnavailable", (e) => Effect.fail(new Unreachable({ message: e.message }))),
      Effect.catchIf(
        (e): e is Exclude<typeof e, Unreachable> => e._tag !== "Unreachable",
        (e) => Effect.fail(new TurnNotCompleted({ outcome: "unknown", tag: e._tag, message: e.message }))
      )
    )
    yield* stopSpinner
    const finished = end as Domain.RuntimeEvent | undefined
    const data = record(finished?.data)
    const error = record(data.error)
    const outcome = typeof data.outcome === "string" ? data.outcome : "unknown"
    const result: TurnResult = {
      runtime_id: ref.runtime,
      worker_id: ref.worker,
      turn_id: started.turnId,
      outcome,
      text: committed ?? text,
      usage,
      tool_calls: toolCalls.map(({ call_id: _, ...c }) => c),
      ...(typeof error._tag === "string" ? { error: { _tag: error._tag, message: String(error.message ?? "") } } : {}),
      ...(typeof data.reason === "string" ? { reason: data.reason } : {})
    }
    if (human) {
      if (!atLineStart) yield* output.out("\n")
      const tokens = `${usage.input_tokens} in · ${usage.output_tokens} out tokens`
      const why = result.error !== undefined ? ` · ${result.error._tag}: ${result.error.message}` : ""
      yield* output.err(`${dim(output.errColor, "—")} ${statusColor(output.errColor, outcome)} ${dim(output.errColor, `· ${tokens}`)}${why}\n`)
    }
    return result
  })

/** A finished turn that did not complete is a failure of the command (exit 1), after its result was shown. */
export const requireCompleted = (result: TurnResult): Effect.Effect<TurnResult, CliError> =>
  result.outcome === "completed"
    ? Effect.succeed(result)
    : Effect.fail(new TurnNotCompleted({
      outcome: result.outcome,
      tag: result.error?._tag,
      message: result.error?.message ?? result.reason ?? `the turn ended ${result.outcome}`
    }))
