import * as Reactivity from "@effect/experimental/Reactivity"
import type { Connection } from "@effect/sql/SqlConnection"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Duration, Effect, Exit, Redacted, type Scope } from "effect"
import type { Diagnostic } from "../../Domain.js"
import { type DiagnosticDraft, StoreError } from "../../WorkerStore.js"
import { ulid } from "../ulid.js"
import { StoreSchemaTooNew } from "../sqlite/errors.js"
import { migrations, SCHEMA_VERSION } from "./migrations.js"

/** Statements on one pooled connection (`$1`… placeholders). */
export interface Tx {
  readonly all: <A = Record<string, unknown>>(
    sql: string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<A>, StoreError>
  /** Runs a write; answers the number of rows it changed. */
  readonly run: (sql: string, params?: ReadonlyArray<unknown>) => Effect.Effect<number, StoreError>
}

export interface Database {
  /** Where the store is, for messages: `schema "s" on postgres://user@host:port/db`, never with a password. */
  readonly label: string
  /** The quoted schema name, to qualify table names: `${db.schema}.workers`. */
  readonly schema: string
  /** Runs `f` in one READ COMMITTED transaction on one connection: committed if `f` succeeds, else rolled back. */
  readonly transaction: <A, E>(f: (tx: Tx) => Effect.Effect<A, E>) => Effect.Effect<A, E | StoreError>
  /** Runs reads on one connection, outside any transaction. */
  readonly read: <A, E>(f: (tx: Tx) => Effect.Effect<A, E>) => Effect.Effect<A, E | StoreError>
}

export interface OpenOptions {
  /** `postgres://user:password@host:port/database`: a secret, since it may carry a password. */
  readonly url: Redacted.Redacted<string>
  /** The schema holding the runtime's tables (created if missing). Default `yoi_runtime`. */
  readonly schema?: string | undefined
  /** Pool size. Default 10. */
  readonly maxConnections?: number | undefined
  /** How long connecting may take. Default 5 s. */
  readonly connectTimeoutMs?: number | undefined
}

export const DEFAULT_SCHEMA = "yoi_runtime"

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

/** The database's clock in ms: leases are judged by one clock, whichever host a runtime runs on. */
export const NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

/** The URL without its password (and without query parameters, which may carry one). */
export const describeUrl = (url: Redacted.Redacted<string>): string => {
  try {
    const u = new URL(Redacted.value(url))
    const user = u.username === "" ? "" : `${decodeURIComponent(u.username)}@`
    return `${u.protocol}//${user}${u.host}${u.pathname}`
  } catch {
    return "(an unparseable PostgreSQL URL)"
  }
}

/** Removes the URL's password (raw and decoded) from a message, in case a driver repeats it. */
export const scrubber = (url: Redacted.Redacted<string>) => {
  const secrets: Array<string> = []
  try {
    const u = new URL(Redacted.value(url))
    if (u.password !== "") secrets.push(u.password, decodeURIComponent(u.password))
  } catch {
    secrets.push(Redacted.value(url))
  }
  return (text: string): string => secrets.reduce((t, s) => (s === "" ? t : t.split(s).join("***")), text)
}

const describe = (cause: unknown): string => {
  if (cause !== null && typeof cause === "object") {
    const inner = "cause" in cause ? (cause as { cause: unknown }).cause : undefined
    const message = "message" in cause ? String((cause as { message: unknown }).message) : String(cause)
    if (inner instanceof AggregateError && inner.errors.length > 0) {
      return `${message}: ${inner.errors.map((e) => (e instanceof Error ? e.message : String(e))).join("; ")}`
    }
    return inner instanceof Error && inner.message !== "" ? `${message}: ${inner.message}` : message
  }
  return String(cause)
}

/** int8 and int4 as numbers (seqs and counts stay far below 2^53), booleans as booleans, the rest as text. */
const types = {
  getTypeParser: (oid: number) => {
    if (oid === 20 || oid === 21 || oid === 23) return (value: string) => Number(value)
    if (oid === 16) return (value: string) => value === "t"
    return (value: string) => value
  }
}

/** Appends a diagnostic inside a transaction and drops the ones beyond the newest `MAX_DIAGNOSTICS`. */
export const MAX_DIAGNOSTICS = 1000

export const insertDiagnostic = (
  db: Database,
  tx: Tx,
  draft: DiagnosticDraft
): Effect.Effect<Diagnostic, StoreError> =>
  Effect.gen(function*() {
    const at = draft.at ?? new Date().toISOString()
    const rows = yield* tx.all<{ id: number }>(
      `INSERT INTO ${db.schema}.diagnostics (at, severity, code, message, worker_id) VALUES ($1, $2, $3, $4, $5) ` +
        "RETURNING id",
      [at, draft.severity, draft.code, draft.message, draft.worker_id ?? null]
    )
    const id = rows[0]?.id ?? 0
    if (id > MAX_DIAGNOSTICS) yield* tx.run(`DELETE FROM ${db.schema}.diagnostics WHERE id <= $1`, [id - MAX_DIAGNOSTICS])
    return {
      id,
      at,
      severity: draft.severity,
      code: draft.code,
      message: draft.message,
      ...(draft.worker_id === undefined ? {} : { worker_id: draft.worker_id })
    }
  })

/**
 * Connects a pool, then migrates the schema in one transaction under an advisory lock (two runtimes opening a new
 * database at once cannot both migrate it), refusing a schema newer than this code. The pool closes with the scope.
 */
export const open = (
  options: OpenOptions & { readonly runtimeId: string }
): Effect.Effect<Database, StoreError | StoreSchemaTooNew, Scope.Scope> =>
  Effect.gen(function*() {
    const schemaName = options.schema ?? DEFAULT_SCHEMA
    const scrub = scrubber(options.url)
    const label = `schema ${schemaName} on ${describeUrl(options.url)}`
    const storeError = (what: string) => (cause: unknown) =>
      new StoreError({ message: scrub(`${what}: ${describe(cause)}`) })
    if (!SCHEMA_NAME.test(schemaName)) {
      return yield* new StoreError({
        message: `the store schema ${JSON.stringify(schemaName)} is not a plain lowercase name ([a-z_][a-z0-9_]*)`
      })
    }
    const schema = `"${schemaName}"`
    const client = yield* PgClient.make({
      url: options.url,
      maxConnections: options.maxConnections ?? 10,
      connectTimeout: Duration.millis(options.connectTimeoutMs ?? 5_000),
      applicationName: `yoi-runtime ${options.runtimeId}`,
      types
    }).pipe(
      Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make),
      Effect.mapError(storeError(`cannot connect to ${describeUrl(options.url)}`)),
      Effect.catchAllDefect((defect) => Effect.fail(storeError(`cannot connect to ${describeUrl(options.url)}`)(defect)))
    )
    const reserve = Effect.mapError(client.reserve, storeError("the store connection is unavailable"))
    const makeTx = (conn: Connection): Tx => ({
      all: (sql, params = []) =>
        Effect.mapError(conn.execute(sql, params, undefined), storeError("a store query failed")),
      run: (sql, params = []) =>
        Effect.map(
          Effect.mapError(conn.executeRaw(sql, params), storeError("a store write failed")),
          (result) => (result as { readonly rowCount?: number | null }).rowCount ?? 0
        )
    })
    const exec = (conn: Connection, sql: string) =>
      Effect.mapError(conn.executeRaw(sql, []), storeError(`${sql} failed`))

    const transaction = <A, E>(f: (tx: Tx) => Effect.Effect<A, E>): Effect.Effect<A, E | StoreError> =>
      Effect.uninterruptible(Effect.scoped(Effect.gen(function*() {
        const conn = yield* reserve
        yield* exec(conn, "BEGIN")
        const exit = yield* Effect.exit(f(makeTx(conn)))
        if (Exit.isSuccess(exit)) {
          const committed = yield* Effect.exit(exec(conn, "COMMIT"))
          if (Exit.isSuccess(committed)) return exit.value
          yield* Effect.ignore(exec(conn, "ROLLBACK"))
          return yield* Effect.failCause(committed.cause)
        }
        yield* Effect.ignore(exec(conn, "ROLLBACK"))
        return yield* exit
      })))

    const database: Database = {
      label,
      schema,
      transaction,
      read: (f) => Effect.scoped(Effect.flatMap(reserve, (conn) => f(makeTx(conn))))
    }

    yield* transaction((tx) =>
      Effect.gen(function*() {
        yield* tx.all("SELECT pg_advisory_xact_lock(hashtext($1))", [`yoi-runtime-migrate:${schemaName}`])
        yield* tx.run(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
        yield* tx.run(
          `CREATE TABLE IF NOT EXISTS ${schema}.yoi_migrations (migration_id INTEGER PRIMARY KEY, name TEXT NOT NULL, ` +
            "created_at TEXT)"
        )
        const applied = yield* tx.all<{ v: number | null }>(`SELECT max(migration_id) AS v FROM ${schema}.yoi_migrations`)
        let found = applied[0]?.v ?? 0
        const hasMeta = yield* tx.all<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [`${schema}.meta`])
        if (hasMeta[0]?.t != null) {
          const rows = yield* tx.all<{ v: number }>(`SELECT schema_version AS v FROM ${schema}.meta WHERE id = 1`)
          found = Math.max(found, rows[0]?.v ?? 0)
        }
        if (found > SCHEMA_VERSION) {
          return yield* new StoreSchemaTooNew({
            filename: label,
            found,
            supported: SCHEMA_VERSION,
            message: `the store ${label} has schema version ${found}, newer than this runtime supports ` +
              `(${SCHEMA_VERSION}); it was written by a newer release: upgrade the runtime or use another store`
          })
        }
        for (const migration of migrations) {
          if (migration.id <= found) continue
          for (const statement of migration.statements(schema)) yield* tx.run(statement)
          yield* tx.run(`INSERT INTO ${schema}.yoi_migrations (migration_id, name, created_at) VALUES ($1, $2, $3)`, [
            migration.id,
            migration.name,
            new Date().toISOString()
          ])
        }
        const meta = yield* tx.all<{ runtime_id: string }>(`SELECT runtime_id FROM ${schema}.meta WHERE id = 1`)
        if (meta[0] === undefined) {
          yield* tx.run(
            `INSERT INTO ${schema}.meta (id, runtime_id, epoch, schema_version, last_seq, events_pruned_through, ` +
              "created_at) VALUES (1, $1, $2, $3, 0, 0, $4)",
            [options.runtimeId, ulid().slice(0, 16), SCHEMA_VERSION, new Date().toISOString()]
          )
        } else if (meta[0].runtime_id !== options.runtimeId) {
          return yield* new StoreError({
            message: `the store ${label} belongs to runtime ${meta[0].runtime_id}, not ${options.runtimeId}: ` +
              "give each runtime its own schema (--store-schema)"
          })
        } else {
          yield* tx.run(`UPDATE ${schema}.meta SET schema_version = $1 WHERE id = 1 AND schema_version < $1`, [
            SCHEMA_VERSION
          ])
        }
      })
    )
    return database
  })
