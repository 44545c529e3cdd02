import { SqlClient } from "@effect/sql/SqlClient"
import { Effect } from "effect"

/**
 * Versioned migrations, run by `@effect/sql`'s Migrator (ids recorded in `yoi_migrations`). Never edit one that has
 * shipped: add the next id. `SCHEMA_VERSION` is the highest id; a store recording a higher one is refused.
 */
export const migrations: Record<string, Effect.Effect<void, unknown, SqlClient>> = {
  "1_initial": Effect.gen(function*() {
    const sql = yield* SqlClient
    yield* sql`CREATE TABLE meta (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      epoch TEXT NOT NULL,
      schema_version INTEGER NOT NULL,
      last_seq INTEGER NOT NULL,
      events_pruned_through INTEGER NOT NULL,
      created_at TEXT NOT NULL
    )`
    yield* sql`CREATE TABLE workers (
      worker_id TEXT PRIMARY KEY NOT NULL,
      spec TEXT NOT NULL,
      status TEXT NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      current_turn_id TEXT,
      last_turn TEXT,
      input_tokens INTEGER NOT NULL,
      output_tokens INTEGER NOT NULL,
      cached_tokens INTEGER NOT NULL,
      turns INTEGER NOT NULL,
      last_activity_at TEXT,
      transcript_length INTEGER NOT NULL,
      revision INTEGER NOT NULL
    )`
    yield* sql`CREATE INDEX workers_status ON workers (status)`
    yield* sql`CREATE TABLE transcript (
      worker_id TEXT NOT NULL,
      idx INTEGER NOT NULL,
      entry_id TEXT NOT NULL,
      turn_id TEXT,
      at TEXT NOT NULL,
      data TEXT NOT NULL,
      PRIMARY KEY (worker_id, idx)
    )`
    yield* sql`CREATE TABLE events (
      seq INTEGER PRIMARY KEY NOT NULL,
      runtime_id TEXT NOT NULL,
      worker_id TEXT,
      turn_id TEXT,
      kind TEXT NOT NULL,
      at TEXT NOT NULL,
      data TEXT NOT NULL
    )`
    yield* sql`CREATE TABLE diagnostics (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at TEXT NOT NULL,
      severity TEXT NOT NULL,
      code TEXT NOT NULL,
      message TEXT NOT NULL,
      worker_id TEXT
    )`
    yield* sql`CREATE TABLE instances (
      instance_id TEXT PRIMARY KEY NOT NULL,
      pid INTEGER NOT NULL,
      process_origin INTEGER NOT NULL,
      host TEXT NOT NULL,
      started_at TEXT NOT NULL,
      lease_expires_at INTEGER NOT NULL,
      store_owner INTEGER NOT NULL
    )`
    yield* sql`CREATE TABLE allocations (
      worker_id TEXT PRIMARY KEY NOT NULL,
      instance_id TEXT NOT NULL,
      allow TEXT NOT NULL,
      deny TEXT NOT NULL,
      delegated_from TEXT,
      allocated_at TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX allocations_instance ON allocations (instance_id)`
  }),
  "2_input_queue": Effect.gen(function*() {
    const sql = yield* SqlClient
    yield* sql`CREATE TABLE input_queue (
      input_id TEXT PRIMARY KEY NOT NULL,
      worker_id TEXT NOT NULL,
      seq INTEGER NOT NULL,
      text TEXT NOT NULL,
      queued_at TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX input_queue_worker ON input_queue (worker_id, seq)`
  })
}

export const SCHEMA_VERSION = 2

export const MIGRATIONS_TABLE = "yoi_migrations"
