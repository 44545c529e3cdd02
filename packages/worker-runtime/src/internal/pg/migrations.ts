/** The statements a migration runs, in one transaction, against the store's schema (given as a quoted name). */
export interface PgMigration {
  readonly id: number
  readonly name: string
  readonly statements: (schema: string) => ReadonlyArray<string>
}

/**
 * Versioned migrations of the PostgreSQL store, recorded in `<schema>.yoi_migrations`. Never edit one that has
 * shipped: add the next id. `SCHEMA_VERSION` is the highest id; a store recording a higher one is refused. The
 * tables mirror the SQLite store's (`internal/sqlite/migrations.ts`), with the owner lease in place of instances.
 */
export const migrations: ReadonlyArray<PgMigration> = [{
  id: 1,
  name: "initial",
  statements: (s) => [
    `CREATE TABLE ${s}.meta (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      runtime_id TEXT NOT NULL,
      epoch TEXT NOT NULL,
      schema_version INTEGER NOT NULL,
      last_seq BIGINT NOT NULL,
      events_pruned_through BIGINT NOT NULL,
      created_at TEXT NOT NULL
    )`,
    `CREATE TABLE ${s}.owner_lease (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      runtime_id TEXT NOT NULL,
      instance_id TEXT NOT NULL,
      pid INTEGER NOT NULL,
      host TEXT NOT NULL,
      acquired_at TEXT NOT NULL,
      expires_at BIGINT NOT NULL
    )`,
    `CREATE TABLE ${s}.workers (
      worker_id TEXT PRIMARY KEY,
      spec TEXT NOT NULL,
      status TEXT NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      current_turn_id TEXT,
      last_turn TEXT,
      input_tokens BIGINT NOT NULL,
      output_tokens BIGINT NOT NULL,
      cached_tokens BIGINT NOT NULL,
      turns BIGINT NOT NULL,
      last_activity_at TEXT,
      transcript_length BIGINT NOT NULL,
      revision BIGINT NOT NULL
    )`,
    `CREATE INDEX workers_status ON ${s}.workers (status)`,
    `CREATE TABLE ${s}.transcript (
      worker_id TEXT NOT NULL,
      idx BIGINT NOT NULL,
      entry_id TEXT NOT NULL,
      turn_id TEXT,
      at TEXT NOT NULL,
      data TEXT NOT NULL,
      PRIMARY KEY (worker_id, idx)
    )`,
    `CREATE TABLE ${s}.events (
      seq BIGINT PRIMARY KEY,
      runtime_id TEXT NOT NULL,
      worker_id TEXT,
      turn_id TEXT,
      kind TEXT NOT NULL,
      at TEXT NOT NULL,
      data TEXT NOT NULL
    )`,
    `CREATE TABLE ${s}.diagnostics (
      id BIGSERIAL PRIMARY KEY,
      at TEXT NOT NULL,
      severity TEXT NOT NULL,
      code TEXT NOT NULL,
      message TEXT NOT NULL,
      worker_id TEXT
    )`,
    `CREATE TABLE ${s}.allocations (
      worker_id TEXT PRIMARY KEY,
      instance_id TEXT NOT NULL,
      allow TEXT NOT NULL,
      deny TEXT NOT NULL,
      delegated_from TEXT,
      allocated_at TEXT NOT NULL
    )`
  ]
}, {
  id: 2,
  name: "input_queue",
  statements: (s) => [
    `CREATE TABLE ${s}.input_queue (
      input_id TEXT PRIMARY KEY,
      worker_id TEXT NOT NULL,
      seq BIGINT NOT NULL,
      text TEXT NOT NULL,
      queued_at TEXT NOT NULL
    )`,
    `CREATE INDEX input_queue_worker ON ${s}.input_queue (worker_id, seq)`
  ]
}]

export const SCHEMA_VERSION = 2
