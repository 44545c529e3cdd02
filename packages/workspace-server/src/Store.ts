import { NodeContext } from "@effect/platform-node"
import { SqlClient, type SqlError } from "@effect/sql"
import * as Migrator from "@effect/sql/Migrator"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient, SqliteMigrator } from "@effect/sql-sqlite-node"
import { Data, Duration, Effect, Layer, Redacted } from "effect"

/**
 * Where the Backend keeps its own state (sessions, the command audit and the observation audit): a SQLite file in the
 * data directory (the default, one machine), or a PostgreSQL database shared by Backend replicas.
 */
export type Database =
  | { readonly _tag: "Sqlite"; readonly filename: string }
  | { readonly _tag: "Postgres"; readonly url: Redacted.Redacted<string> }

/** The PostgreSQL schema that holds the Backend's tables, so that a runtime may share the database. */
export const PG_SCHEMA = "yoi_backend"

/** The Backend's database could not be opened or migrated. Its message never holds the database password. */
export class DatabaseError extends Data.TaggedError("DatabaseError")<{ readonly message: string }> {}

/** Parses a `--database` value: a `postgres://` or `postgresql://` URL. The error never echoes the value. */
export const parseDatabaseUrl = (value: string): Database | DatabaseError => {
  const trimmed = value.trim()
  if (!/^postgres(ql)?:\/\//.test(trimmed) || !URL.canParse(trimmed)) {
    return new DatabaseError({
      message: "--database must be a postgres:// URL (postgres://user:password@host:5432/db); the value given is " +
        "not printed because it may hold a password"
    })
  }
  return { _tag: "Postgres", url: Redacted.make(trimmed) }
}

/** A URL with its password (and any `password` parameter) replaced, safe to print. */
export const describe = (database: Database): string => {
  if (database._tag === "Sqlite") return `sqlite:${database.filename}`
  try {
    const url = new URL(Redacted.value(database.url))
    if (url.password !== "") url.password = "***"
    if (url.searchParams.has("password")) url.searchParams.set("password", "***")
    return url.toString()
  } catch {
    return "postgres://(unparsable URL)"
  }
}

/** Removes every occurrence of the password from a text (a driver's message may quote the URL). */
const scrub = (database: Database, text: string): string => {
  if (database._tag === "Sqlite") return text
  const raw = Redacted.value(database.url)
  let password = ""
  try {
    const url = new URL(raw)
    password = decodeURIComponent(url.password) || (url.searchParams.get("password") ?? "")
  } catch {
    // unparsable: nothing more to take out than the URL itself
  }
  let out = text.split(raw).join(describe(database))
  if (password.length > 0) out = out.split(password).join("***")
  return out
}

/** A table of the Backend's: in its own schema on PostgreSQL, unqualified on SQLite. */
export const table = (sql: SqlClient.SqlClient, name: string) =>
  sql(sql.onDialectOrElse({ pg: () => true, orElse: () => false }) === true ? `${PG_SCHEMA}.${name}` : name)

/** Versioned migrations, the same tables on both engines. SQLite files from before keep their `0001_audit`. */
export const sqliteMigrations = SqliteMigrator.fromRecord({
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
  }),
  "0002_sessions_observations": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE sessions (
      id_hash TEXT PRIMARY KEY,
      label TEXT NOT NULL,
      expires_at INTEGER NOT NULL
    )`
    yield* sql`CREATE INDEX sessions_expiry ON sessions (expires_at)`
    yield* sql`CREATE TABLE observations (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      actor TEXT NOT NULL,
      request_id TEXT NOT NULL,
      stream TEXT NOT NULL,
      runtime_id TEXT,
      worker_id TEXT,
      cursor TEXT,
      start_cursor TEXT,
      last_cursor TEXT,
      opened_at TEXT NOT NULL,
      closed_at TEXT NOT NULL,
      duration_ms INTEGER NOT NULL,
      events INTEGER NOT NULL,
      end_reason TEXT NOT NULL,
      error_tag TEXT
    )`
    yield* sql`CREATE INDEX observations_runtime ON observations (runtime_id, id)`
    yield* sql`CREATE INDEX observations_worker ON observations (worker_id, id)`
  })
})

const pgMigrations = Migrator.fromRecord({
  "0001_backend": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const t = (name: string) => sql(`${PG_SCHEMA}.${name}`)
    // One sequence orders the audit of every replica: the log reads in commit-assigned id order.
    yield* sql`CREATE TABLE ${t("audit")} (
      id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      at TEXT NOT NULL,
      actor TEXT NOT NULL,
      runtime_id TEXT NOT NULL,
      worker_id TEXT,
      action TEXT NOT NULL,
      outcome TEXT NOT NULL,
      error_tag TEXT,
      request_id TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX audit_runtime ON ${t("audit")} (runtime_id, id)`
    yield* sql`CREATE INDEX audit_worker ON ${t("audit")} (worker_id, id)`
    yield* sql`CREATE TABLE ${t("sessions")} (
      id_hash TEXT PRIMARY KEY,
      label TEXT NOT NULL,
      expires_at BIGINT NOT NULL
    )`
    yield* sql`CREATE INDEX sessions_expiry ON ${t("sessions")} (expires_at)`
    yield* sql`CREATE TABLE ${t("observations")} (
      id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      actor TEXT NOT NULL,
      request_id TEXT NOT NULL,
      stream TEXT NOT NULL,
      runtime_id TEXT,
      worker_id TEXT,
      cursor TEXT,
      start_cursor TEXT,
      last_cursor TEXT,
      opened_at TEXT NOT NULL,
      closed_at TEXT NOT NULL,
      duration_ms BIGINT NOT NULL,
      events BIGINT NOT NULL,
      end_reason TEXT NOT NULL,
      error_tag TEXT
    )`
    yield* sql`CREATE INDEX observations_runtime ON ${t("observations")} (runtime_id, id)`
    yield* sql`CREATE INDEX observations_worker ON ${t("observations")} (worker_id, id)`
  })
})

/**
 * Runs the PostgreSQL migrations. Replicas may start at once: an advisory lock held for the transaction serializes
 * them, the schema and the migrations table are created idempotently under it, and the migrator then skips what the
 * first replica applied.
 */
const migratePg = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`SELECT pg_advisory_xact_lock(hashtext(${PG_SCHEMA}))`
    yield* sql`CREATE SCHEMA IF NOT EXISTS ${sql(PG_SCHEMA)}`
    yield* sql`CREATE TABLE IF NOT EXISTS ${sql(`${PG_SCHEMA}.migrations`)} (
      migration_id integer primary key,
      created_at timestamp with time zone not null default now(),
      name text not null
    )`
    yield* Migrator.make({})({ loader: pgMigrations, table: `${PG_SCHEMA}.migrations` })
  }))
})

/**
 * Audit records are written on the command path. WAL with `synchronous = NORMAL` makes a commit a write without an
 * fsync: a committed record survives a crash of the Backend process; only a power loss can take the last moments
 * (with `FULL`, every commit would wait for the disk).
 */
const sqlitePragmas = Layer.effectDiscard(
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`PRAGMA synchronous = NORMAL`)
)

const toDatabaseError = (database: Database, what: string) =>
  (e: { readonly message: string; readonly cause?: unknown }) => {
    const cause = e.cause instanceof Error ? `: ${e.cause.message}` : ""
    return new DatabaseError({ message: scrub(database, `${what} ${describe(database)}: ${e.message}${cause}`) })
  }

/** A `SqlClient` on the Backend's database, migrated. */
export const layer = (database: Database): Layer.Layer<SqlClient.SqlClient, DatabaseError> =>
  database._tag === "Sqlite"
    ? Layer.provideMerge(
      Layer.mergeAll(SqliteMigrator.layer({ loader: sqliteMigrations }), sqlitePragmas),
      SqliteClient.layer({ filename: database.filename })
    ).pipe(
      Layer.provide(NodeContext.layer),
      Layer.mapError((e) => toDatabaseError(database, "cannot open the Backend database")(e as SqlError.SqlError))
    )
    : Layer.provideMerge(
      Layer.effectDiscard(migratePg),
      PgClient.layer({
        url: database.url,
        applicationName: "yoi-backend",
        maxConnections: 8,
        connectTimeout: Duration.seconds(10)
      })
    ).pipe(
      Layer.mapError((e) => toDatabaseError(database, "cannot open the Backend database")(e as SqlError.SqlError))
    )
