import { Context, Schema } from "effect"
import { ulid } from "./internal/ulid.js"

/** A runtime's stable identity: lowercase, set by config, the same across restarts. */
export const RuntimeId = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9-]{0,62}$/, {
    message: () => "must be 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit"
  }),
  Schema.brand("RuntimeId")
)
export type RuntimeId = typeof RuntimeId.Type

/**
 * A worker's runtime-scoped id. Generated ids are `w_` + a ULID and sort by creation; a client may supply its own
 * (letters, digits, `_`, `-`, `.`; no path separators, so an id is never a path).
 */
export const WorkerId = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, {
    message: () =>
      "worker_id must be 1-128 characters of letters, digits, '_', '-' or '.', starting with a letter or digit"
  }),
  Schema.filter((s) => !s.includes(".."), { message: () => "worker_id must not contain '..'" }),
  Schema.brand("WorkerId")
)
export type WorkerId = typeof WorkerId.Type

export const TurnId = Schema.String.pipe(Schema.brand("TurnId"))
export type TurnId = typeof TurnId.Type

// Generated ids are valid by construction: no schema check on the create and input paths.
export const makeWorkerId = (): WorkerId => WorkerId.make(`w_${ulid()}`, { disableValidation: true })
export const makeTurnId = (): TurnId => TurnId.make(`t_${ulid()}`, { disableValidation: true })
export const makeEntryId = (): string => `e_${ulid()}`
export const makeInputId = (): string => `i_${ulid()}`

/**
 * Where the runtime gets worker, turn and transcript entry ids. Synchronous, like `Clock.unsafeCurrentTimeMillis`,
 * because ids are taken inside a commit's pure step. The default gives ULID-based ids; a test provides
 * `sequentialIds()` (`Layer.succeed(IdGenerator, ...)` or `RuntimeOptions.ids`) to pin them.
 */
export interface IdGeneratorService {
  readonly workerId: () => WorkerId
  readonly turnId: () => TurnId
  readonly entryId: () => string
  /** Ids of queued inputs; ULID-based (`i_...`) when a generator does not give its own. */
  readonly inputId?: (() => string) | undefined
}

export const ulidIds: IdGeneratorService = {
  workerId: makeWorkerId,
  turnId: makeTurnId,
  entryId: makeEntryId,
  inputId: makeInputId
}

export class IdGenerator extends Context.Reference<IdGenerator>()("@yoi/worker-runtime/IdGenerator", {
  defaultValue: (): IdGeneratorService => ulidIds
}) {}

/** Deterministic ids for tests: `w_000001`, `t_000001`, `e_000001`..., each kind counting on its own. */
export const sequentialIds = (): IdGeneratorService => {
  const next = { w: 0, t: 0, e: 0, i: 0 }
  const make = (kind: "w" | "t" | "e" | "i") => `${kind}_${String(++next[kind]).padStart(6, "0")}`
  return {
    workerId: () => WorkerId.make(make("w")),
    turnId: () => TurnId.make(make("t")),
    entryId: () => make("e"),
    inputId: () => make("i")
  }
}
