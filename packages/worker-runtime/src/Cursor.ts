import { Either } from "effect"
import { CursorInvalid } from "./Errors.js"

/**
 * Event cursors. A cursor names the position just after the event with sequence number `seq` in the store whose
 * epoch is `epoch`. Clients treat it as opaque; the epoch lets a runtime recognise a cursor from another store (or
 * from a previous life of an ephemeral runtime) instead of silently resetting.
 */
export interface Position {
  readonly epoch: string
  readonly seq: number
}

export const EARLIEST = "earliest"

const PREFIX = "c1."

export const encode = (epoch: string, seq: number): string =>
  PREFIX + Buffer.from(`${epoch}:${seq.toString(36)}`, "utf8").toString("base64url")

export const decode = (cursor: string): Either.Either<Position, CursorInvalid> => {
  const invalid = (why: string) =>
    Either.left(new CursorInvalid({ cursor: cursor.slice(0, 200), message: `cursor is invalid: ${why}` }))
  if (!cursor.startsWith(PREFIX) || cursor.length > 200) return invalid("not a cursor issued by a Yoi runtime")
  const body = cursor.slice(PREFIX.length)
  if (!/^[A-Za-z0-9_-]+$/.test(body)) return invalid("not a cursor issued by a Yoi runtime")
  const text = Buffer.from(body, "base64url").toString("utf8")
  const match = /^([A-Za-z0-9]{1,64}):([0-9a-z]{1,12})$/.exec(text)
  if (match === null) return invalid("not a cursor issued by a Yoi runtime")
  const seq = parseInt(match[2]!, 36)
  if (!Number.isSafeInteger(seq)) return invalid("sequence out of range")
  return Either.right({ epoch: match[1]!, seq })
}
