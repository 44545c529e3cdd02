import { Data } from "effect"

/** The store was written by a newer version of this code: opening it could corrupt it, so it is refused. */
export class StoreSchemaTooNew extends Data.TaggedError("StoreSchemaTooNew")<{
  readonly filename: string
  readonly found: number
  readonly supported: number
  readonly message: string
}> {}

/** Another live runtime instance owns the store; a store has one writer at a time. */
export class StoreLocked extends Data.TaggedError("StoreLocked")<{
  readonly filename: string
  readonly instance_id: string
  readonly pid: number
  readonly host: string
  readonly lease_expires_at: string
  readonly message: string
}> {}
