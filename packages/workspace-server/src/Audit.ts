import { SqlClient, SqlSchema } from "@effect/sql"
import { Context, Deferred, Effect, Exit, Layer, Schema, type Scope } from "effect"
import { InternalError, InvalidInput } from "@yoi/backend-api/Errors"
import {
  type AuditAction,
  type AuditOutcome,
  type AuditPage,
  AuditRecord,
  type ObservationEnd,
  type ObservationPage,
  ObservationRecord
} from "@yoi/backend-api/Views"
import * as Store from "./Store.js"

export interface AuditEntry {
  readonly actor: string
  readonly runtime_id: string
  readonly worker_id?: string | undefined
  readonly action: AuditAction
  readonly outcome: AuditOutcome
  readonly error_tag?: string | undefined
  readonly request_id: string
}

export interface AuditQuery {
  readonly limit?: number | undefined
  readonly page_token?: string | undefined
  readonly runtime_id?: string | undefined
  readonly worker_id?: string | undefined
  readonly action?: AuditAction | undefined
}

/** One observed event stream, recorded when it closes. */
export interface ObservationEntry {
  readonly actor: string
  readonly request_id: string
  readonly stream: "all" | "worker"
  readonly runtime_id?: string | undefined
  readonly worker_id?: string | undefined
  readonly cursor?: string | undefined
  readonly start_cursor?: string | undefined
  readonly last_cursor?: string | undefined
  readonly opened_at: Date
  readonly closed_at: Date
  readonly events: number
  readonly end_reason: ObservationEnd
  readonly error_tag?: string | undefined
}

export interface ObservationQuery {
  readonly limit?: number | undefined
  readonly page_token?: string | undefined
  readonly runtime_id?: string | undefined
  readonly worker_id?: string | undefined
  readonly actor?: string | undefined
}

/** The Backend's audit trail: one record per command through the Backend, allowed or not, newest first. */
export interface AuditService {
  /**
   * Writes the record and returns once it is committed: a command answers only after its record is durable. A store
   * that cannot write is a defect of the command (logged, answered as a typed 500 `InternalError`), never a command
   * acknowledged without its record.
   */
  readonly record: (entry: AuditEntry) => Effect.Effect<void>
  /** Records an observed stream when it closes; a store failure is logged (the stream is already over). */
  readonly observe: (entry: ObservationEntry) => Effect.Effect<void>
  readonly page: (query: AuditQuery) => Effect.Effect<AuditPage, InvalidInput | InternalError>
  readonly observations: (query: ObservationQuery) => Effect.Effect<ObservationPage, InvalidInput | InternalError>
}

export class Audit extends Context.Tag("@yoi/workspace-server/Audit")<Audit, AuditService>() {}

export const AUDIT_PAGE_MAX = 500

/** The SQLite migrations (kept here for callers that migrate a database of their own). */
export const migrations = Store.sqliteMigrations

/** PostgreSQL returns BIGINT as text: numbers are read through this. */
const Num = Schema.Union(Schema.Number, Schema.NumberFromString)

const Row = Schema.Struct({ ...AuditRecord.fields, id: Num })
const ObservationRow = Schema.Struct({ ...ObservationRecord.fields, id: Num, duration_ms: Num, events: Num })

const InsertRow = Schema.Struct({
  at: Schema.String,
  actor: Schema.String,
  runtime_id: Schema.String,
  worker_id: Schema.NullOr(Schema.String),
  action: Schema.String,
  outcome: Schema.String,
  error_tag: Schema.NullOr(Schema.String),
  request_id: Schema.String
})
type InsertRow = typeof InsertRow.Type

const ObservationInsert = Schema.Struct({
  actor: Schema.String,
  request_id: Schema.String,
  stream: Schema.String,
  runtime_id: Schema.NullOr(Schema.String),
  worker_id: Schema.NullOr(Schema.String),
  cursor: Schema.NullOr(Schema.String),
  start_cursor: Schema.NullOr(Schema.String),
  last_cursor: Schema.NullOr(Schema.String),
  opened_at: Schema.String,
  closed_at: Schema.String,
  duration_ms: Schema.Number,
  events: Schema.Number,
  end_reason: Schema.String,
  error_tag: Schema.NullOr(Schema.String)
})
type ObservationInsert = typeof ObservationInsert.Type

/** Rows written per statement (well under SQLite's variable limit and PostgreSQL's 65,535 parameters). */
const BATCH = 200

const clip = (value: string | undefined, max: number) => value === undefined ? null : value.slice(0, max)

interface Pending {
  readonly rows: Array<InsertRow>
  readonly observations: Array<ObservationInsert>
  readonly waiters: Array<Deferred.Deferred<void, unknown>>
}

const emptyPending = (): Pending => ({ rows: [], observations: [], waiters: [] })

const decodeToken = (token: string | undefined, prefix: string): number | InvalidInput => {
  if (token === undefined) return Number.MAX_SAFE_INTEGER
  const decoded = new RegExp(`^${prefix}[0-9]{1,15}$`).test(token) ? Number(token.slice(prefix.length)) : NaN
  return Number.isSafeInteger(decoded)
    ? decoded
    : new InvalidInput({ field: "page_token", message: "page_token is invalid" })
}

const checkLimit = (limit: number) =>
  !Number.isInteger(limit) || limit < 1 || limit > AUDIT_PAGE_MAX
    ? new InvalidInput({ field: "limit", message: `limit must be an integer from 1 to ${AUDIT_PAGE_MAX}` })
    : undefined

/**
 * Group commit: a command queues its record and waits; one writer fiber takes everything queued, writes it in one
 * transaction, and wakes every waiter once it is committed. Under load one commit carries the records of every
 * command that finished while the previous commit was running, so a command waits for at most two commits and the
 * store sees one transaction per commit, not one per command.
 */
export const make: Effect.Effect<AuditService, never, SqlClient.SqlClient | Scope.Scope> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const audit = Store.table(sql, "audit")
  const observationsTable = Store.table(sql, "observations")

  const insert = SqlSchema.void({
    Request: Schema.Array(InsertRow),
    execute: (rows) => sql`INSERT INTO ${audit} ${sql.insert(rows)}`
  })

  const insertObservations = SqlSchema.void({
    Request: Schema.Array(ObservationInsert),
    execute: (rows) => sql`INSERT INTO ${observationsTable} ${sql.insert(rows)}`
  })

  const select = SqlSchema.findAll({
    Request: Schema.Struct({
      before: Schema.Number,
      runtime_id: Schema.NullOr(Schema.String),
      worker_id: Schema.NullOr(Schema.String),
      action: Schema.NullOr(Schema.String),
      limit: Schema.Number
    }),
    Result: Row,
    execute: (q) =>
      sql`SELECT id, at, actor, runtime_id, worker_id, action, outcome, error_tag, request_id FROM ${audit} WHERE ${
        sql.and([
          sql`id < ${q.before}`,
          ...(q.runtime_id === null ? [] : [sql`runtime_id = ${q.runtime_id}`]),
          ...(q.worker_id === null ? [] : [sql`worker_id = ${q.worker_id}`]),
          ...(q.action === null ? [] : [sql`action = ${q.action}`])
        ])
      } ORDER BY id DESC LIMIT ${q.limit}`
  })

  const selectObservations = SqlSchema.findAll({
    Request: Schema.Struct({
      before: Schema.Number,
      runtime_id: Schema.NullOr(Schema.String),
      worker_id: Schema.NullOr(Schema.String),
      actor: Schema.NullOr(Schema.String),
      limit: Schema.Number
    }),
    Result: ObservationRow,
    execute: (q) =>
      sql`SELECT id, actor, request_id, stream, runtime_id, worker_id, cursor, start_cursor, last_cursor, opened_at,
        closed_at, duration_ms, events, end_reason, error_tag FROM ${observationsTable} WHERE ${
        sql.and([
          sql`id < ${q.before}`,
          ...(q.runtime_id === null ? [] : [sql`runtime_id = ${q.runtime_id}`]),
          ...(q.worker_id === null ? [] : [sql`worker_id = ${q.worker_id}`]),
          ...(q.actor === null ? [] : [sql`actor = ${q.actor}`])
        ])
      } ORDER BY id DESC LIMIT ${q.limit}`
  })

  let pending = emptyPending()
  const wake = yield* Effect.makeLatch(false)
  const writeLock = yield* Effect.makeSemaphore(1)

  const writeBatches = <A>(
    rows: ReadonlyArray<A>,
    write: (batch: ReadonlyArray<A>) => Effect.Effect<void, unknown>
  ) => {
    const batches: Array<ReadonlyArray<A>> = []
    for (let i = 0; i < rows.length; i += BATCH) batches.push(rows.slice(i, i + BATCH))
    return Effect.forEach(batches, write, { discard: true })
  }

  /** Writes everything queued so far in one transaction and settles its waiters with the outcome. */
  const flush = writeLock.withPermits(1)(Effect.suspend(() => {
    const taken = pending
    pending = emptyPending()
    if (taken.waiters.length === 0 && taken.observations.length === 0) return Effect.void
    return Effect.all([writeBatches(taken.rows, insert), writeBatches(taken.observations, insertObservations)]).pipe(
      sql.withTransaction,
      Effect.exit,
      Effect.flatMap((exit) =>
        Effect.zipRight(
          Exit.isFailure(exit)
            ? Effect.logError(
              `could not write ${taken.rows.length} audit and ${taken.observations.length} observation record(s)`,
              exit.cause
            )
            : Effect.void,
          Effect.forEach(taken.waiters, (d) => Deferred.done(d, Exit.asVoid(exit)), { discard: true })
        )
      )
    )
  }))

  yield* Effect.forkScoped(Effect.forever(
    wake.await.pipe(Effect.zipRight(wake.close), Effect.zipRight(flush))
  ))
  yield* Effect.addFinalizer(() => flush)

  const record = (entry: AuditEntry) =>
    Effect.gen(function*() {
      const done = yield* Deferred.make<void, unknown>()
      pending.rows.push({
        at: new Date().toISOString(),
        actor: entry.actor.slice(0, 200),
        runtime_id: entry.runtime_id.slice(0, 80),
        worker_id: clip(entry.worker_id, 200),
        action: entry.action,
        outcome: entry.outcome,
        error_tag: entry.error_tag ?? null,
        request_id: entry.request_id.slice(0, 200)
      })
      pending.waiters.push(done)
      yield* wake.open
      // The record is written even when the command's fiber is interrupted while it waits.
      yield* Deferred.await(done).pipe(
        Effect.orDieWith((cause) => new InternalError({ message: `the audit record could not be written: ${cause}` }))
      )
    }).pipe(Effect.uninterruptible)

  const observe = (entry: ObservationEntry) =>
    Effect.suspend(() => {
      pending.observations.push({
        actor: entry.actor.slice(0, 200),
        request_id: entry.request_id.slice(0, 200),
        stream: entry.stream,
        runtime_id: clip(entry.runtime_id, 80),
        worker_id: clip(entry.worker_id, 200),
        cursor: clip(entry.cursor, 2000),
        start_cursor: clip(entry.start_cursor, 2000),
        last_cursor: clip(entry.last_cursor, 2000),
        opened_at: entry.opened_at.toISOString(),
        closed_at: entry.closed_at.toISOString(),
        duration_ms: Math.max(0, entry.closed_at.getTime() - entry.opened_at.getTime()),
        events: entry.events,
        end_reason: entry.end_reason,
        error_tag: entry.error_tag ?? null
      })
      return wake.open
    })

  const unreadable = (what: string) => (e: unknown) =>
    Effect.zipRight(
      Effect.logError(`could not read the ${what}`, e),
      Effect.fail(new InternalError({ message: `the ${what} could not be read` }))
    )

  const page = Effect.fn("Audit.page")(function*(query: AuditQuery) {
    const limit = query.limit ?? 100
    const badLimit = checkLimit(limit)
    if (badLimit !== undefined) return yield* badLimit
    const before = decodeToken(query.page_token, "a")
    if (typeof before !== "number") return yield* before
    const rows = yield* select({
      before,
      runtime_id: query.runtime_id ?? null,
      worker_id: query.worker_id ?? null,
      action: query.action ?? null,
      limit: limit + 1
    }).pipe(Effect.catchAll(unreadable("audit trail")))
    const items = rows.slice(0, limit)
    return rows.length > limit ? { items, next_page_token: `a${items[items.length - 1]!.id}` } : { items }
  })

  const observations = Effect.fn("Audit.observations")(function*(query: ObservationQuery) {
    // Streams closed just before are still queued: write them first so the reader sees them.
    yield* flush
    const limit = query.limit ?? 100
    const badLimit = checkLimit(limit)
    if (badLimit !== undefined) return yield* badLimit
    const before = decodeToken(query.page_token, "o")
    if (typeof before !== "number") return yield* before
    const rows = yield* selectObservations({
      before,
      runtime_id: query.runtime_id ?? null,
      worker_id: query.worker_id ?? null,
      actor: query.actor ?? null,
      limit: limit + 1
    }).pipe(Effect.catchAll(unreadable("observation audit")))
    const items = rows.slice(0, limit)
    return rows.length > limit ? { items, next_page_token: `o${items[items.length - 1]!.id}` } : { items }
  })

  return { record, observe, page, observations } satisfies AuditService
})

/** The audit service over whatever `SqlClient` is provided (migrations must have run). */
export const layer: Layer.Layer<Audit, never, SqlClient.SqlClient> = Layer.scoped(Audit, make)

/** The audit service on its own SQLite file (`:memory:` for tests), migrated at start. */
export const layerSqlite = (filename: string) =>
  layer.pipe(Layer.provide(Store.layer({ _tag: "Sqlite", filename })))
