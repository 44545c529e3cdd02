import { NodeContext } from "@effect/platform-node"
import { SqlClient, SqlSchema } from "@effect/sql"
import { SqliteClient, SqliteMigrator } from "@effect/sql-sqlite-node"
import { Context, Duration, Effect, Layer, Schema, type Scope } from "effect"
import { InternalError, InvalidInput } from "@yoi/backend-api/Errors"
import { type AuditAction, type AuditOutcome, type AuditPage, AuditRecord } from "@yoi/backend-api/Views"

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

/** The Backend's audit trail: one record per command through the Backend, allowed or not, newest first. */
export interface AuditService {
  /** Never fails the command it records: a store failure is logged. */
  readonly record: (entry: AuditEntry) => Effect.Effect<void>
  readonly page: (query: AuditQuery) => Effect.Effect<AuditPage, InvalidInput | InternalError>
}

export class Audit extends Context.Tag("@yoi/workspace-server/Audit")<Audit, AuditService>() {}

export const AUDIT_PAGE_MAX = 500

export const migrations = SqliteMigrator.fromRecord({
  "0001_audit": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE audit (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at TEXT NOT NULL,
      actor TEXT NOT NULL,
      runtime_id TEXT NOT NULL,
      worker_id TEXT,
      action TEXT NOT NULL,
      outcome TEXT NOT NULL,
      error_tag TEXT,
      request_id TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX audit_runtime ON audit (runtime_id, id)`
    yield* sql`CREATE INDEX audit_worker ON audit (worker_id, id)`
  })
})

const Row = Schema.Struct({ ...AuditRecord.fields, id: Schema.Number })

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

/** Rows written per statement (8 columns each, well under SQLite's variable limit). */
const BATCH = 200

const FLUSH_DELAY = Duration.millis(5)

/**
 * Records are queued on the command path and written by one fiber, every queued record in one transaction, so a
 * command never waits for the store. Reading the trail (and closing the service) first writes what is queued, so a
 * reader always sees every command that answered before it asked.
 */
export const make: Effect.Effect<AuditService, never, SqlClient.SqlClient | Scope.Scope> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const insert = SqlSchema.void({
    Request: Schema.Array(InsertRow),
    execute: (rows) => sql`INSERT INTO audit ${sql.insert(rows)}`
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
      sql`SELECT id, at, actor, runtime_id, worker_id, action, outcome, error_tag, request_id FROM audit WHERE ${
        sql.and([
          sql`id < ${q.before}`,
          ...(q.runtime_id === null ? [] : [sql`runtime_id = ${q.runtime_id}`]),
          ...(q.worker_id === null ? [] : [sql`worker_id = ${q.worker_id}`]),
          ...(q.action === null ? [] : [sql`action = ${q.action}`])
        ])
      } ORDER BY id DESC LIMIT ${q.limit}`
  })

  let pending: Array<InsertRow> = []
  const wake = yield* Effect.makeLatch(false)
  const writeLock = yield* Effect.makeSemaphore(1)

  /** Writes everything queued so far; a store failure is logged and those records are lost, not retried forever. */
  const flush = writeLock.withPermits(1)(Effect.suspend(() => {
    const rows = pending
    pending = []
    if (rows.length === 0) return Effect.void
    const batches: Array<Array<InsertRow>> = []
    for (let i = 0; i < rows.length; i += BATCH) batches.push(rows.slice(i, i + BATCH))
    return Effect.forEach(batches, insert, { discard: true }).pipe(
      sql.withTransaction,
      Effect.catchAll((e) => Effect.logError(`could not write ${rows.length} audit record(s)`, e))
    )
  }))

  // After a wake the writer lets a few milliseconds of records gather, so that under load one transaction carries
  // many of them instead of one each.
  yield* Effect.forkScoped(Effect.forever(
    wake.await.pipe(Effect.zipRight(wake.close), Effect.zipRight(Effect.sleep(FLUSH_DELAY)), Effect.zipRight(flush))
  ))
  yield* Effect.addFinalizer(() => flush)

  const record = (entry: AuditEntry) =>
    Effect.zipRight(
      Effect.sync(() => {
        pending.push({
          at: new Date().toISOString(),
          actor: entry.actor.slice(0, 200),
          runtime_id: entry.runtime_id.slice(0, 80),
          worker_id: entry.worker_id === undefined ? null : entry.worker_id.slice(0, 200),
          action: entry.action,
          outcome: entry.outcome,
          error_tag: entry.error_tag ?? null,
          request_id: entry.request_id.slice(0, 200)
        })
      }),
      wake.open
    )

  const page = Effect.fn("Audit.page")(function*(query: AuditQuery) {
    yield* flush
    const limit = query.limit ?? 100
    if (!Number.isInteger(limit) || limit < 1 || limit > AUDIT_PAGE_MAX) {
      return yield* new InvalidInput({ field: "limit", message: `limit must be an integer from 1 to ${AUDIT_PAGE_MAX}` })
    }
    let before = Number.MAX_SAFE_INTEGER
    if (query.page_token !== undefined) {
      const decoded = /^a[0-9]{1,15}$/.test(query.page_token) ? Number(query.page_token.slice(1)) : NaN
      if (!Number.isSafeInteger(decoded)) {
        return yield* new InvalidInput({ field: "page_token", message: "page_token is invalid" })
      }
      before = decoded
    }
    const rows = yield* select({
      before,
      runtime_id: query.runtime_id ?? null,
      worker_id: query.worker_id ?? null,
      action: query.action ?? null,
      limit: limit + 1
    }).pipe(
      Effect.tapError((e) => Effect.logError("could not read the audit trail", e)),
      Effect.mapError(() => new InternalError({ message: "the audit store could not be read" }))
    )
    const items = rows.slice(0, limit)
    return rows.length > limit ? { items, next_page_token: `a${items[items.length - 1]!.id}` } : { items }
  })

  return { record, page } satisfies AuditService
})

/** The audit service over whatever `SqlClient` is provided (migrations must have run). */
export const layer: Layer.Layer<Audit, never, SqlClient.SqlClient> = Layer.scoped(Audit, make)

/**
 * Audit records are written on the command path, one small transaction each. WAL with `synchronous = NORMAL`
 * makes a commit a write without an fsync: a record survives a crash of the Backend, and only a power loss can take
 * the last moments (with `FULL`, every command would wait for the disk).
 */
const pragmas = Layer.effectDiscard(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`PRAGMA synchronous = NORMAL`))

/** The audit service on its own SQLite file (`:memory:` for tests), migrated at start. */
export const layerSqlite = (filename: string) =>
  layer.pipe(
    Layer.provide(SqliteMigrator.layer({ loader: migrations })),
    Layer.provide(pragmas),
    Layer.provide(SqliteClient.layer({ filename })),
    Layer.provide(NodeContext.layer)
  )
