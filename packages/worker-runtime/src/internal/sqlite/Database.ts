import * as Reactivity from "@effect/experimental/Reactivity"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Effect, Exit, type Scope } from "effect"
import { mkdirSync } from "node:fs"
import { dirname, resolve } from "node:path"
import type { Diagnostic } from "../../Domain.js"
import { type DiagnosticDraft, StoreError } from "../../WorkerStore.js"
import { ulid } from "../ulid.js"
import { StoreSchemaTooNew } from "./errors.js"
import { migrations, MIGRATIONS_TABLE, SCHEMA_VERSION } from "./migrations.js"

/** Statements on the one connection. Every method is a prepared statement from the client's statement cache. */
export interface Tx {
  readonly all: <A = Record<string, unknown>>(
    sql: string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<A>, StoreError>
  /** Runs a write; answers the number of rows it changed. */
  readonly run: (sql: string, params?: ReadonlyArray<unknown>) => Effect.Effect<number, StoreError>
}

export interface Database {
  readonly filename: string
  /**
   * Runs `f` in one `BEGIN IMMEDIATE` transaction holding the connection: committed if `f` succeeds, rolled back if
   * it fails or dies. IMMEDIATE takes the write lock up front, so a read-then-write (a conflict check) is atomic
   * against other processes too. Never nest it: the connection is held until it ends.
   */
  readonly transaction: <A, E>(f: (tx: Tx) => Effect.Effect<A, E>) => Effect.Effect<A, E | StoreError>
  /** Runs reads holding the connection, outside any transaction. */
  readonly read: <A, E>(f: (tx: Tx) => Effect.Effect<A, E>) => Effect.Effect<A, E | StoreError>
}

export type Synchronous = "full" | "normal"

export interface OpenOptions {
  readonly filename: string
  /**
   * `full` (the default) syncs the WAL on every commit, so an acknowledged write survives power loss; `normal`
   * survives a crash of the process but may lose the newest commits on power loss, for about 10× the commit rate.
   */
  readonly synchronous?: Synchronous | undefined
}

const describe = (cause: unknown): string => {
  if (cause !== null && typeof cause === "object") {
    const inner = "cause" in cause ? (cause as { cause: unknown }).cause : undefined
    const message = "message" in cause ? String((cause as { message: unknown }).message) : String(cause)
    return inner instanceof Error ? `${message}: ${inner.message}` : message
  }
  return String(cause)
}

const storeError = (what: string) => (cause: unknown) =>
  new StoreError({ message: `${what}: ${describe(cause)}`, cause })

const makeTx = (conn: Connection): Tx => ({
  all: (sql, params = []) => Effect.mapError(conn.execute(sql, params, undefined), storeError("a store query failed")),
  run: (sql, params = []) =>
    Effect.map(
      Effect.mapError(conn.executeRaw(sql, params), storeError("a store write failed")),
      (result) => (result as { readonly changes?: number }).changes ?? 0
    )
})

/**
 * One write lock per file in this process. better-sqlite3 blocks the thread while it waits for SQLite's lock, so two
 * connections of one process (a store and a registry opened separately on one file) must never wait on each other
 * inside SQLite: the second would block the only thread that could finish the first. They queue here instead.
 */
const fileLocks = new Map<string, Effect.Semaphore>()
const fileLock = (filename: string): Effect.Semaphore => {
  if (filename === ":memory:" || filename === "") return Effect.unsafeMakeSemaphore(1)
  const key = resolve(filename)
  let lock = fileLocks.get(key)
  if (lock === undefined) {
    lock = Effect.unsafeMakeSemaphore(1)
    fileLocks.set(key, lock)
  }
  return lock
}

const makeDatabase = (filename: string, client: SqliteClient.SqliteClient) => {
  const writeLock = fileLock(filename)
  const reserve = Effect.mapError(client.reserve, storeError("the store connection is unavailable"))
  const exec = (conn: Connection, sql: string) =>
    Effect.mapError(conn.execute(sql, [], undefined), storeError(`${sql} failed`))

  const transactionOn = <A, E>(f: (tx: Tx, conn: Connection) => Effect.Effect<A, E>) =>
    Effect.uninterruptible(writeLock.withPermits(1)(Effect.scoped(Effect.gen(function*() {
      const conn = yield* reserve
      yield* exec(conn, "BEGIN IMMEDIATE")
      const exit = yield* Effect.exit(f(makeTx(conn), conn))
      if (Exit.isSuccess(exit)) {
        const committed = yield* Effect.exit(exec(conn, "COMMIT"))
        if (Exit.isSuccess(committed)) return exit.value
        yield* Effect.ignore(exec(conn, "ROLLBACK"))
        return yield* Effect.failCause(committed.cause)
      }
      yield* Effect.ignore(exec(conn, "ROLLBACK"))
      return yield* exit
    }))))

  const database: Database = {
    filename,
    transaction: (f) => transactionOn((tx) => f(tx)),
    read: (f) => Effect.scoped(Effect.flatMap(reserve, (conn) => f(makeTx(conn))))
  }
  return { database, transactionOn }
}

/**
 * Refuses a store whose recorded schema is newer than this code, then runs the pending migrations and creates the
 * meta row (the store's epoch is made here, once per file). All in one transaction, so two processes opening a new
 * file at once cannot both migrate it.
 */
const migrate = (filename: string, client: SqliteClient.SqliteClient, tx: Tx, conn: Connection) =>
  Effect.gen(function*() {
    const tables = yield* tx.all<{ name: string }>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, 'meta')",
      [MIGRATIONS_TABLE]
    )
    const names = new Set(tables.map((t) => t.name))
    let found = 0
    if (names.has(MIGRATIONS_TABLE)) {
      const rows = yield* tx.all<{ v: number | null }>(`SELECT max(migration_id) AS v FROM ${MIGRATIONS_TABLE}`)
      found = Math.max(found, rows[0]?.v ?? 0)
    }
    if (names.has("meta")) {
      const rows = yield* tx.all<{ v: number | null }>("SELECT schema_version AS v FROM meta WHERE id = 1")
      found = Math.max(found, rows[0]?.v ?? 0)
    }
    if (found > SCHEMA_VERSION) {
      return yield* new StoreSchemaTooNew({
        filename,
        found,
        supported: SCHEMA_VERSION,
        message: `the store ${filename} has schema version ${found}, newer than this runtime supports ` +
          `(${SCHEMA_VERSION}); it was written by a newer release: upgrade the runtime or use another store`
      })
    }
    yield* Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: MIGRATIONS_TABLE }).pipe(
      Effect.provideService(SqlClient.SqlClient, client),
      Effect.provideService(SqlClient.TransactionConnection, [conn, 0] as const),
      Effect.mapError(storeError("the store could not be migrated"))
    )
    const meta = yield* tx.all("SELECT id FROM meta WHERE id = 1")
    if (meta.length === 0) {
      yield* tx.run(
        "INSERT INTO meta (id, epoch, schema_version, last_seq, events_pruned_through, created_at) " +
          "VALUES (1, ?, ?, 0, 0, ?)",
        [ulid().slice(0, 16), SCHEMA_VERSION, new Date().toISOString()]
      )
    } else {
      yield* tx.run("UPDATE meta SET schema_version = ? WHERE id = 1 AND schema_version < ?", [
        SCHEMA_VERSION,
        SCHEMA_VERSION
      ])
    }
  })

/** Diagnostics kept in the store: the newest ones; older rows are deleted as new ones arrive. */
export const MAX_DIAGNOSTICS = 1000

/** Appends a diagnostic inside a transaction and drops the ones beyond the newest `MAX_DIAGNOSTICS`. */
export const insertDiagnostic = (tx: Tx, draft: DiagnosticDraft): Effect.Effect<Diagnostic, StoreError> =>
  Effect.gen(function*() {
    const at = draft.at ?? new Date().toISOString()
    const rows = yield* tx.all<{ id: number }>(
      "INSERT INTO diagnostics (at, severity, code, message, worker_id) VALUES (?, ?, ?, ?, ?) RETURNING id",
      [at, draft.severity, draft.code, draft.message, draft.worker_id ?? null]
    )
    const id = rows[0]?.id ?? 0
    yield* tx.run("DELETE FROM diagnostics WHERE id <= ?", [id - MAX_DIAGNOSTICS])
    return {
      id,
      at,
      severity: draft.severity,
      code: draft.code,
      message: draft.message,
      ...(draft.worker_id === undefined ? {} : { worker_id: draft.worker_id })
    }
  })

/** Opens (creating if needed) a store file in WAL mode and migrates it. The connection closes with the scope. */
export const open = (
  options: OpenOptions
): Effect.Effect<Database, StoreError | StoreSchemaTooNew, Scope.Scope> =>
  Effect.gen(function*() {
    const filename = options.filename
    if (filename !== ":memory:" && filename !== "") {
      yield* Effect.try({
        try: () => mkdirSync(dirname(filename), { recursive: true }),
        catch: storeError(`the directory of ${filename} could not be created`)
      })
    }
    const client = yield* SqliteClient.make({ filename, prepareCacheSize: 1000 }).pipe(
      Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make),
      Effect.catchAllDefect((defect) => Effect.fail(storeError(`the store ${filename} could not be opened`)(defect)))
    )
    const { database, transactionOn } = makeDatabase(filename, client)
    const synchronous = options.synchronous === "normal" ? "NORMAL" : "FULL"
    yield* database.read((tx) => tx.run(`PRAGMA synchronous = ${synchronous}`)).pipe(
      Effect.mapError((e) => new StoreError({ message: `the store ${filename} could not be opened: ${e.message}` }))
    )
    yield* transactionOn((tx, conn) => migrate(filename, client, tx, conn))
    return database
  })
