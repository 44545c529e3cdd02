import { Either } from "effect"
import { CursorInvalid } from "@yoi/backend-api/Errors"

/**
 * The cursor of `GET /api/events`: one position per runtime, `{runtime_id: cursor}` as base64url JSON. Opaque to
 * clients; resuming with it resumes every runtime where it was.
 */
export type Positions = ReadonlyMap<string, string>

const MAX_LENGTH = 16_384

export const encode = (positions: Positions): string =>
  Buffer.from(JSON.stringify(Object.fromEntries(positions)), "utf8").toString("base64url")

export const decode = (cursor: string): Either.Either<Positions, CursorInvalid> => {
  const invalid = Either.left(
    new CursorInvalid({ message: "the cursor is not a cursor issued by this Backend's GET /api/events" })
  )
  if (cursor.length === 0 || cursor.length > MAX_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) return invalid
  const parsed = Either.try(() => JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown)
  if (Either.isLeft(parsed)) return invalid
  const value = parsed.right
  if (typeof value !== "object" || value === null || Array.isArray(value)) return invalid
  const positions = new Map<string, string>()
  for (const [key, position] of Object.entries(value)) {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(key) || typeof position !== "string" || position.length > 1000) {
      return invalid
    }
    positions.set(key, position)
  }
  return Either.right(positions)
}
