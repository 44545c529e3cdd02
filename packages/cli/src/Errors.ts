import { Data, ParseResult } from "effect"

/** Exit codes: 0 ok, 1 a typed error or a failed turn, 2 a usage error, 3 the server cannot be reached. */
export const ExitCode = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/** A typed error answered by the server (or a turn that failed), printed as `tag: message`. */
export class ApiFailure extends Data.TaggedError("ApiFailure")<{
  readonly tag: string
  readonly message: string
}> {}

/** A bad argument found after parsing (a malformed `R/W`, a missing token). */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

/** The server could not be reached: refused, timed out, unresolvable. */
export class Unreachable extends Data.TaggedError("Unreachable")<{ readonly message: string }> {}

/** A turn ended without completing; its outcome was already printed. */
export class TurnNotCompleted extends Data.TaggedError("TurnNotCompleted")<{
  readonly outcome: string
  readonly tag: string | undefined
  readonly message: string
}> {}

export type CliError = ApiFailure | UsageError | Unreachable | TurnNotCompleted

export const exitCodeOf = (error: CliError): ExitCode => {
  switch (error._tag) {
    case "UsageError":
      return ExitCode.usage
    case "Unreachable":
      return ExitCode.unreachable
    default:
      return ExitCode.failed
  }
}

const describeTransport = (error: { readonly description?: string | undefined; readonly cause?: unknown }) => {
  const cause = error.cause as { readonly cause?: { readonly code?: string; readonly message?: string } } | undefined
  const code = cause?.cause?.code
  if (code === "ECONNREFUSED") return "connection refused"
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "host not found"
  if (code !== undefined) return code
  return error.description ?? "transport error"
}

/**
 * Any failure of a derived client (a typed error of the contract, a transport error, an unreadable answer) as a CLI
 * error. Typed errors are recognised by their `_tag` and `message`, never by status.
 */
export const fromClientError = (target: string) => (error: unknown): CliError => {
  const e = error as { readonly _tag?: unknown; readonly message?: unknown; readonly reason?: unknown }
  switch (e._tag) {
    case "RequestError":
      return e.reason === "Transport"
        ? new Unreachable({ message: `cannot reach ${target}: ${describeTransport(error as never)}` })
        : new UsageError({ message: `cannot build the request: ${String(e.message)}` })
    case "ResponseError":
      return new ApiFailure({ tag: "ResponseError", message: `unexpected answer from ${target}: ${String(e.message)}` })
    case "ParseError":
      // A request this client refuses to send (the contract does not accept it): say which fields, in one line.
      return new ApiFailure({
        tag: "InvalidInput",
        message: ParseResult.ArrayFormatter.formatErrorSync(error as ParseResult.ParseError)
          .slice(0, 3)
          .map((issue) => `${issue.path.join(".") || "request"}: ${issue.message}`)
          .join("; ")
      })
    default:
      return typeof e._tag === "string"
        ? new ApiFailure({ tag: e._tag, message: typeof e.message === "string" ? e.message : e._tag })
        : new ApiFailure({ tag: "Unknown", message: String(error) })
  }
}
