import { Effect, Either, ParseResult, Schema } from "effect"
import { CancelRequest, CreateWorker, EventKind, SendInput, WorkerStatus } from "../Domain.js"
import { InvalidInput } from "../Errors.js"
import { WorkerId } from "../Ids.js"
import * as Profiles from "../Profiles.js"

/** Checks on what callers send: decoding with readable errors, the nesting bound, page tokens and limits. */

export const TRANSCRIPT_PAGE_MAX = 500
export const WORKER_PAGE_MAX = 500
export const MAX_INPUT_CHARS = 1_000_000

export const formatParseError = (error: ParseResult.ParseError): InvalidInput => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  const field = first === undefined || first.path.length === 0 ? undefined : first.path.join(".")
  const message = issues.slice(0, 3).map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ` : "") + i.message)
    .join("; ")
  return new InvalidInput({ message: message || "invalid input", ...(field === undefined ? {} : { field }) })
}

/** Input nested deeper than this is refused before decoding: formatting a failure on it would overflow the stack. */
export const MAX_INPUT_DEPTH = 64

const deeperThan = (input: unknown, max: number): boolean => {
  const stack: Array<readonly [unknown, number]> = [[input, 0]]
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!
    if (value === null || typeof value !== "object") continue
    if (depth >= max) return true
    for (const child of Array.isArray(value) ? value : Object.values(value)) stack.push([child, depth + 1])
  }
  return false
}

const tooDeep = new InvalidInput({ message: `the input nests deeper than ${MAX_INPUT_DEPTH} levels` })

/** Decodes unknown input with a schema, failing with a readable `InvalidInput`. */
export const decodeInput = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })
  return (input: unknown): Effect.Effect<A, InvalidInput> =>
    deeperThan(input, MAX_INPUT_DEPTH)
      ? Effect.fail(tooDeep)
      : Either.match(decode(input), { onLeft: (e) => Effect.fail(formatParseError(e)), onRight: Effect.succeed })
}

const decodeCreateSchema = decodeInput(CreateWorker)

/**
 * Decodes a create request: an `engine` member other than a profile and the bounded overrides is refused first,
 * naming the member, so that no endpoint or key reference is ever taken from a request.
 */
export const decodeCreate = (raw: unknown): Effect.Effect<CreateWorker, InvalidInput> =>
  typeof raw === "object" && raw !== null
    ? Effect.zipRight(Profiles.checkRequestShape((raw as { engine?: unknown }).engine), decodeCreateSchema(raw))
    : decodeCreateSchema(raw)
export const decodeSendInput = decodeInput(SendInput)
export const decodeCancelRequest = decodeInput(CancelRequest)

/** The longest a cancel may wait for its turn to end (`wait_ms`). */
export const MAX_WAIT_MS = 60_000
export const isWorkerId = Schema.is(WorkerId)
export const isStatus = Schema.is(WorkerStatus)
export const isKind = Schema.is(EventKind)

export const encodeToken = (prefix: string, value: string) => Buffer.from(`${prefix}:${value}`).toString("base64url")
export const decodeToken = (prefix: string, token: string): string | undefined => {
  if (!/^[A-Za-z0-9_-]{1,700}$/.test(token)) return undefined
  const text = Buffer.from(token, "base64url").toString("utf8")
  return text.startsWith(`${prefix}:`) ? text.slice(prefix.length + 1) : undefined
}

export const checkLimit = (value: number | undefined, fallback: number, max: number, field = "limit") =>
  value === undefined
    ? Effect.succeed(fallback)
    : Number.isInteger(value) && value >= 1 && value <= max
      ? Effect.succeed(value)
      : Effect.fail(new InvalidInput({ field, message: `${field} must be an integer from 1 to ${max}` }))
