import { Command, ValidationError } from "@effect/cli"
import type { Teardown } from "@effect/platform/Runtime"
import { Console, Effect, Exit } from "effect"
import * as Commands from "./Commands.js"
import { type CliError, ExitCode, exitCodeOf } from "./Errors.js"

const VERSION = "0.1.0"

const isCliError = (e: unknown): e is CliError =>
  typeof e === "object" && e !== null && "_tag" in e &&
  ["ApiFailure", "UsageError", "Unreachable", "TurnNotCompleted"].includes((e as CliError)._tag)

const describe = (error: CliError): string => {
  switch (error._tag) {
    case "ApiFailure":
      return `${error.tag}: ${error.message}`
    case "TurnNotCompleted":
      return `the turn ended ${error.outcome}${error.tag === undefined ? "" : `: ${error.tag}`}: ${error.message}`
    default:
      return error.message
  }
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g

const colorAllowed = (stream: NodeJS.WriteStream) =>
  stream.isTTY === true && (process.env.NO_COLOR ?? "") === "" && process.env.TERM !== "dumb"

/** `@effect/cli` colours its help and errors unconditionally: without a terminal (or with NO_COLOR) they go plain. */
const plainConsole = (base: Console.Console): Console.Console => {
  const strip = (args: ReadonlyArray<unknown>) => args.map((a) => (typeof a === "string" ? a.replace(ANSI, "") : a))
  return {
    ...base,
    log: (...args) => colorAllowed(process.stdout) ? base.log(...args) : base.log(...strip(args)),
    error: (...args) => colorAllowed(process.stderr) ? base.error(...args) : base.error(...strip(args))
  }
}

/**
 * `yoi` from a full argv (node, script, args...), to its exit code: 0 ok, 1 a typed error or a failed turn, 2 a
 * usage error (what `@effect/cli` rejects, already printed with the usage), 3 the server cannot be reached.
 */
export const run = (argv: ReadonlyArray<string>) =>
  Command.run(Commands.yoi, { name: "yoi", version: VERSION })(argv).pipe(
    (effect) => Console.consoleWith((base) => Effect.withConsole(effect, plainConsole(base))),
    Effect.as<number>(ExitCode.ok),
    Effect.catchAll((error) => {
      if (ValidationError.isValidationError(error)) return Effect.succeed(ExitCode.usage)
      if (isCliError(error)) {
        return Effect.as(Effect.sync(() => process.stderr.write(`yoi: ${describe(error)}\n`)), exitCodeOf(error))
      }
      const unknown: unknown = error
      const message = typeof unknown === "object" && unknown !== null && "message" in unknown
        ? String(unknown.message)
        : String(unknown)
      return Effect.as(Effect.sync(() => process.stderr.write(`yoi: ${message}\n`)), ExitCode.failed)
    })
  )

/** Exits with the code `run` returned; 130 after Ctrl-C, as shells expect. */
export const teardown: Teardown = (exit, onExit) =>
  onExit(
    Exit.isSuccess(exit) && typeof exit.value === "number"
      ? exit.value
      : Exit.isInterrupted(exit)
        ? 130
        : ExitCode.failed
  )
