import { Effect, Fiber, Queue } from "effect"
import * as Readline from "node:readline"
import { bold, dim, Output } from "./Output.js"
import { Remote, type WorkerRef } from "./Remote.js"
import * as Turn from "./Turn.js"

type Line = { readonly _tag: "Line"; readonly text: string } | { readonly _tag: "End" }

/**
 * An interactive session with one worker: each line is a turn whose reply streams in place. Ctrl-C during a reply
 * cancels the turn; Ctrl-C or Ctrl-D at the prompt leaves. Piped input works too (one turn per line).
 */
export const session = (ref: WorkerRef) =>
  Effect.gen(function*() {
    const remote = yield* Remote
    const output = yield* Output
    const worker = yield* remote.get(ref)
    const lines = yield* Queue.unbounded<Line>()
    const interrupts = yield* Queue.unbounded<void>()
    const terminal = process.stdin.isTTY === true && process.stdout.isTTY === true
    const rl = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const rl = Readline.createInterface({ input: process.stdin, output: process.stdout, terminal })
        rl.on("line", (text) => Queue.unsafeOffer(lines, { _tag: "Line", text }))
        rl.on("close", () => Queue.unsafeOffer(lines, { _tag: "End" }))
        rl.on("SIGINT", () => Queue.unsafeOffer(interrupts, undefined))
        rl.setPrompt(`${bold(output.color, "you ›")} `)
        return rl
      }),
      (rl) => Effect.sync(() => rl.close())
    )
    yield* output.err(
      `${bold(output.errColor, worker.display_name)} ${dim(output.errColor, `(${ref.runtime}/${ref.worker})`)} ` +
        `${dim(output.errColor, "· Ctrl-C cancels a reply · Ctrl-D leaves")}\n`
    )

    const turn = (text: string) =>
      Effect.gen(function*() {
        const started = yield* Turn.start(ref, text)
        const fiber = yield* Effect.fork(Effect.scoped(Turn.follow(ref, started)))
        // Ctrl-C while the reply streams asks the runtime to cancel; the turn then ends `cancelled` on its own.
        const watcher = yield* Effect.fork(Effect.forever(Effect.zipRight(
          Queue.take(interrupts),
          Effect.zipRight(output.err(dim(output.errColor, "\n(cancelling)\n")), Effect.ignore(remote.cancel(ref)))
        )))
        const result = yield* Fiber.join(fiber).pipe(Effect.ensuring(Fiber.interrupt(watcher)))
        return result
      })

    while (true) {
      if (terminal) rl.prompt()
      const next = yield* Effect.raceFirst(
        Queue.take(lines),
        Effect.as(Queue.take(interrupts), { _tag: "End" } as Line)
      )
      if (next._tag === "End") break
      const text = next.text.trim()
      if (text.length === 0) continue
      // A failed or cancelled turn was already shown; the session goes on.
      yield* turn(text).pipe(
        Effect.catchTag("TurnNotCompleted", () => Effect.void),
        Effect.catchTag("ApiFailure", (e) => output.err(`${e.tag}: ${e.message}\n`))
      )
    }
    if (terminal) yield* output.out("\n")
  }).pipe(Effect.scoped)
