import { Array as Arr, Effect, Either, Option } from "effect"
import type { RuntimeEvent, TranscriptEntry, WorkerRecord } from "../../Domain.js"
import type { CommitBatch, StoreError, WorkerStoreService } from "../../WorkerStore.js"
import {
  corruptWorkerRow,
  decodeDiagnostic,
  decodeEntry,
  decodeEvent,
  decodeQueuedRows,
  decodeWorker,
  type DiagnosticRow,
  ENTRY_COLUMNS,
  entryParams,
  type EntryRow,
  EVENT_COLUMNS,
  eventParams,
  type EventRow,
  QUEUE_COLUMNS,
  queueParams,
  WORKER_COLUMNS,
  workerParams,
  type WorkerRow
} from "../sqlite/rows.js"
import { SEQ_GAP_AFTER_CRASH } from "../seqGap.js"
import { type Database, insertDiagnostic, type Tx } from "./Database.js"
import type { OwnerLease } from "./OwnerLease.js"

export interface StoreOptions {
  /** Durable events kept for replay (the newest ones); older ones are deleted in batches as new ones commit. */
  readonly eventRetention: number
}

/** Rows per multi-row INSERT: one statement per table per commit for ordinary batches. */
const CHUNK = 64

const upsertStatement = (
  table: string,
  columns: ReadonlyArray<string>,
  key: ReadonlyArray<string> | undefined,
  rows: number
): string => {
  const tuples = Array.from({ length: rows }, (_, r) =>
    `(${columns.map((_, c) => `$${r * columns.length + c + 1}`).join(", ")})`)
  const head = `INSERT INTO ${table} (${columns.join(", ")}) VALUES ${tuples.join(", ")}`
  if (key === undefined) return head
  const updates = columns.filter((c) => !key.includes(c)).map((c) => `${c} = EXCLUDED.${c}`)
  return `${head} ON CONFLICT (${key.join(", ")}) DO UPDATE SET ${updates.join(", ")}`
}

const statements = new Map<string, string>()

const insertRows = (
  tx: Tx,
  table: string,
  columns: ReadonlyArray<string>,
  key: ReadonlyArray<string> | undefined,
  rows: ReadonlyArray<ReadonlyArray<unknown>>
): Effect.Effect<void, StoreError> => {
  if (rows.length === 0) return Effect.void
  const chunks: Array<ReadonlyArray<ReadonlyArray<unknown>>> = []
  for (let i = 0; i < rows.length; i += CHUNK) chunks.push(rows.slice(i, i + CHUNK))
  return Effect.forEach(chunks, (chunk) => {
    const cacheKey = `${table}|${chunk.length}`
    let sql = statements.get(cacheKey)
    if (sql === undefined) {
      sql = upsertStatement(table, columns, key, chunk.length)
      statements.set(cacheKey, sql)
    }
    return tx.run(sql, chunk.flat())
  }, { discard: true })
}

/** The last of each key wins, as it would row by row: one statement cannot upsert a row twice. */
const lastByKey = <A>(items: ReadonlyArray<A>, key: (a: A) => string): ReadonlyArray<A> => {
  const byKey = new Map<string, A>()
  for (const item of items) {
    const k = key(item)
    byKey.delete(k)
    byKey.set(k, item)
  }
  return byKey.size === items.length ? items : Array.from(byKey.values())
}

/**
 * The PostgreSQL worker store: the same contract and bookkeeping as the SQLite store (`internal/sqlite/Store.ts`).
 * This instance holds the owner lease, so the event high-water mark, the retention floor and the event count live
 * in memory; every write transaction first checks the lease, so once it is lost nothing more is written.
 */
export const make = (
  db: Database,
  lease: OwnerLease,
  options: StoreOptions
): Effect.Effect<WorkerStoreService, StoreError> =>
  Effect.gen(function*() {
    const s = db.schema
    const workerSelect = `SELECT ${WORKER_COLUMNS.join(", ")} FROM ${s}.workers`
    const opened = yield* db.transaction((tx) =>
      Effect.gen(function*() {
        yield* lease.check(tx)
        const meta = yield* tx.all<{ epoch: string; last_seq: number; events_pruned_through: number }>(
          `SELECT epoch, last_seq, events_pruned_through FROM ${s}.meta WHERE id = 1`
        )
        const events = yield* tx.all<{ n: number }>(`SELECT count(*) AS n FROM ${s}.events`)
        const rows = yield* tx.all<WorkerRow>(workerSelect)
        const workers: Array<WorkerRecord> = []
        for (const row of rows) {
          const decoded = decodeWorker(row)
          if (Either.isRight(decoded)) {
            workers.push(decoded.right)
            continue
          }
          yield* insertDiagnostic(db, tx, corruptWorkerRow(row, String(decoded.left)))
        }
        return { meta: meta[0], eventCount: events[0]?.n ?? 0, workers }
      })
    )
    if (opened.meta === undefined) return yield* Effect.dieMessage("the store has no meta row after migration")
    const epoch = opened.meta.epoch
    const crashed = opened.workers.some((w) => w.status === "running")
    let lastSeq = opened.meta.last_seq + (crashed ? SEQ_GAP_AFTER_CRASH : 0)
    let persistedSeq = opened.meta.last_seq
    let prunedThrough = opened.meta.events_pruned_through
    let eventCount = opened.eventCount
    let initial: ReadonlyArray<WorkerRecord> | undefined = opened.workers
    const retention = Math.max(1, options.eventRetention)
    const slack = Math.min(10_000, Math.ceil(retention / 10))
    const toEvent = decodeEvent(epoch, "unknown")

    const loadWorkers = Effect.suspend(() => {
      if (initial !== undefined) {
        const workers = initial
        initial = undefined
        return Effect.succeed(workers)
      }
      return db.read((tx) => tx.all<WorkerRow>(workerSelect)).pipe(
        Effect.map((rows) => Arr.getRights(rows.map(decodeWorker)))
      )
    })

    const prune = (tx: Tx, count: number) =>
      Effect.gen(function*() {
        const excess = count - retention
        const cut = yield* tx.all<{ seq: number }>(`SELECT seq FROM ${s}.events ORDER BY seq LIMIT 1 OFFSET $1`, [
          excess - 1
        ])
        const through = cut[0]?.seq
        if (through === undefined) return { deleted: 0, through: prunedThrough }
        // Raised before the rows go (and kept if the commit fails): a replay that reads after this must see it.
        prunedThrough = Math.max(prunedThrough, through)
        const deleted = yield* tx.run(`DELETE FROM ${s}.events WHERE seq <= $1`, [through])
        yield* tx.run(`UPDATE ${s}.meta SET events_pruned_through = $1 WHERE id = 1`, [through])
        return { deleted, through }
      })

    const commit = (batch: CommitBatch): Effect.Effect<void, StoreError> => {
      const deleted = batch.deleted ?? []
      const workers = lastByKey(batch.workers ?? [], (w) => w.worker_id)
      const entries: ReadonlyArray<TranscriptEntry> = lastByKey(batch.transcript ?? [], (e) =>
        `${e.worker_id}\u0000${e.index}`)
      const events: ReadonlyArray<RuntimeEvent> = batch.events ?? []
      const queued = lastByKey(batch.queued ?? [], (q) => q.input_id)
      const unqueued = batch.unqueued ?? []
      if (deleted.length + workers.length + entries.length + events.length + queued.length + unqueued.length === 0) {
        return Effect.void
      }
      const maxSeq = events.reduce((m, e) => Math.max(m, e.seq), 0)
      return db.transaction((tx) =>
        Effect.gen(function*() {
          yield* lease.check(tx)
          if (deleted.length > 0) {
            yield* tx.run(`DELETE FROM ${s}.workers WHERE worker_id = ANY($1)`, [deleted])
            yield* tx.run(`DELETE FROM ${s}.transcript WHERE worker_id = ANY($1)`, [deleted])
            yield* tx.run(`DELETE FROM ${s}.input_queue WHERE worker_id = ANY($1)`, [deleted])
          }
          if (unqueued.length > 0) yield* tx.run(`DELETE FROM ${s}.input_queue WHERE input_id = ANY($1)`, [unqueued])
          yield* insertRows(
            tx,
            `${s}.input_queue`,
            QUEUE_COLUMNS,
            ["input_id"],
            queued.map(queueParams)
          )
          yield* insertRows(tx, `${s}.workers`, WORKER_COLUMNS, ["worker_id"], workers.map(workerParams))
          yield* insertRows(tx, `${s}.transcript`, ENTRY_COLUMNS, ["worker_id", "idx"], entries.map(entryParams))
          yield* insertRows(tx, `${s}.events`, EVENT_COLUMNS, undefined, events.map(eventParams))
          if (maxSeq > persistedSeq) yield* tx.run(`UPDATE ${s}.meta SET last_seq = $1 WHERE id = 1`, [maxSeq])
          const count = eventCount + events.length
          return count > retention + slack ? yield* prune(tx, count) : { deleted: 0, through: prunedThrough }
        })
      ).pipe(Effect.tap((pruned) =>
        Effect.sync(() => {
          eventCount += events.length - pruned.deleted
          prunedThrough = pruned.through
          if (maxSeq > persistedSeq) persistedSeq = maxSeq
          if (maxSeq > lastSeq) lastSeq = maxSeq
        })
      ), Effect.asVoid)
    }

    const transcript: WorkerStoreService["transcript"] = (workerId, fromIndex, limit) =>
      db.read((tx) =>
        tx.all<EntryRow>(
          `SELECT worker_id, idx, entry_id, turn_id, at, data FROM ${s}.transcript WHERE worker_id = $1 AND ` +
            "idx >= $2 ORDER BY idx LIMIT $3",
          [workerId, Math.max(0, fromIndex), limit]
        )
      ).pipe(Effect.flatMap((rows) =>
        Effect.forEach(rows, (row) =>
          Either.match(decodeEntry(row), {
            onRight: Effect.succeed,
            onLeft: ({ entry, reason }) =>
              Effect.as(
                Effect.logWarning(`transcript entry ${row.idx} of worker ${row.worker_id} is corrupt: ${reason}`),
                entry
              )
          }))
      ))

    const eventsAfter: WorkerStoreService["eventsAfter"] = (after, limit) =>
      db.read((tx) =>
        tx.all<EventRow>(
          `SELECT seq, runtime_id, worker_id, turn_id, kind, at, data FROM ${s}.events WHERE seq > $1 ORDER BY seq ` +
            "LIMIT $2",
          [after, limit]
        )
      ).pipe(Effect.flatMap((rows) =>
        Effect.forEach(rows, (row) =>
          Either.match(toEvent(row), {
            onRight: Effect.succeed,
            onLeft: ({ event, reason }) => Effect.as(Effect.logWarning(`event ${row.seq} is corrupt: ${reason}`), event)
          }))
      ))

    const loadQueued: WorkerStoreService["loadQueued"] = db.read((tx) =>
      tx.all<Record<string, unknown>>(
        `SELECT ${QUEUE_COLUMNS.join(", ")} FROM ${s}.input_queue ORDER BY worker_id, seq`
      )
    ).pipe(Effect.flatMap(decodeQueuedRows))

    return {
      kind: "postgres",
      durable: true,
      meta: Effect.sync(() => ({ epoch, lastSeq })),
      loadWorkers,
      commit,
      loadQueued,
      transcript,
      eventsAfter,
      eventsRetainedFrom: Effect.sync(() => Option.some(prunedThrough + 1)),
      addDiagnostic: (draft) =>
        db.transaction((tx) => Effect.zipRight(lease.check(tx), insertDiagnostic(db, tx, draft))),
      diagnostics: (limit) =>
        db.read((tx) =>
          tx.all<DiagnosticRow>(
            `SELECT id, at, severity, code, message, worker_id FROM ${s}.diagnostics ORDER BY id DESC LIMIT $1`,
            [limit]
          )
        ).pipe(Effect.map((rows) => rows.map(decodeDiagnostic)))
    } satisfies WorkerStoreService
  })
