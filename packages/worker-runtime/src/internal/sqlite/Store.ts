import { Array as Arr, Effect, Either, Option } from "effect"
import type { RuntimeEvent, TranscriptEntry, WorkerRecord } from "../../Domain.js"
import type { CommitBatch, StoreError, WorkerStoreService } from "../../WorkerStore.js"
import { type Database, insertDiagnostic, type Tx } from "./Database.js"
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
  EVENT_COLUMNS,
  eventParams,
  type EntryRow,
  type EventRow,
  QUEUE_COLUMNS,
  queueParams,
  WORKER_COLUMNS,
  workerParams,
  type WorkerRow
} from "./rows.js"
import { SEQ_GAP_AFTER_CRASH } from "../seqGap.js"

export interface StoreOptions {
  /** Durable events kept for replay (the newest ones); older ones are deleted in batches as new ones commit. */
  readonly eventRetention: number
}

export const defaultEventRetention = 100_000

export { SEQ_GAP_AFTER_CRASH } from "../seqGap.js"

/** Rows per multi-row INSERT: one statement per table per commit for ordinary batches. */
const CHUNK = 64

const insertSql = new Map<string, string>()
const insertStatement = (head: string, columns: ReadonlyArray<string>, rows: number): string => {
  const key = `${head}|${rows}`
  let sql = insertSql.get(key)
  if (sql === undefined) {
    const tuple = `(${columns.map(() => "?").join(", ")})`
    sql = `${head} (${columns.join(", ")}) VALUES ${Array.from({ length: rows }, () => tuple).join(", ")}`
    insertSql.set(key, sql)
  }
  return sql
}

const insertRows = (
  tx: Tx,
  head: string,
  columns: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<unknown>>
): Effect.Effect<void, StoreError> => {
  if (rows.length === 0) return Effect.void
  if (rows.length <= CHUNK) return tx.run(insertStatement(head, columns, rows.length), rows.flat())
  const chunks: Array<ReadonlyArray<ReadonlyArray<unknown>>> = []
  for (let i = 0; i < rows.length; i += CHUNK) chunks.push(rows.slice(i, i + CHUNK))
  return Effect.forEach(chunks, (chunk) => tx.run(insertStatement(head, columns, chunk.length), chunk.flat()), {
    discard: true
  })
}

const WORKER_SELECT = `SELECT ${WORKER_COLUMNS.join(", ")} FROM workers`

/**
 * The SQLite worker store. This instance is the store's only writer (its lease says so), so the event high-water
 * mark, the retention floor and the event count live in memory and are written in the same transaction as the
 * events they describe.
 */
export const make = (db: Database, options: StoreOptions): Effect.Effect<WorkerStoreService, StoreError> =>
  Effect.gen(function*() {
    const opened = yield* db.transaction((tx) =>
      Effect.gen(function*() {
        const meta = yield* tx.all<{ epoch: string; last_seq: number; events_pruned_through: number }>(
          "SELECT epoch, last_seq, events_pruned_through FROM meta WHERE id = 1"
        )
        const events = yield* tx.all<{ n: number }>("SELECT count(*) AS n FROM events")
        const rows = yield* tx.all<WorkerRow>(WORKER_SELECT)
        const workers: Array<WorkerRecord> = []
        for (const row of rows) {
          const decoded = decodeWorker(row)
          if (Either.isRight(decoded)) {
            workers.push(decoded.right)
            continue
          }
          yield* insertDiagnostic(tx, corruptWorkerRow(row, String(decoded.left)))
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
      return db.read((tx) => tx.all<WorkerRow>(WORKER_SELECT)).pipe(
        Effect.map((rows) => Arr.getRights(rows.map(decodeWorker)))
      )
    })

    const prune = (tx: Tx, count: number) =>
      Effect.gen(function*() {
        const excess = count - retention
        const cut = yield* tx.all<{ seq: number }>("SELECT seq FROM events ORDER BY seq LIMIT 1 OFFSET ?", [excess - 1])
        const through = cut[0]?.seq
        if (through === undefined) return { deleted: 0, through: prunedThrough }
        // Raised before the rows go (and kept if the commit fails): a replay that reads after this must see it.
        prunedThrough = Math.max(prunedThrough, through)
        const deleted = yield* tx.run("DELETE FROM events WHERE seq <= ?", [through])
        yield* tx.run("UPDATE meta SET events_pruned_through = ? WHERE id = 1", [through])
        return { deleted, through }
      })

    const commit = (batch: CommitBatch): Effect.Effect<void, StoreError> => {
      const deleted = batch.deleted ?? []
      const workers = batch.workers ?? []
      const entries: ReadonlyArray<TranscriptEntry> = batch.transcript ?? []
      const events: ReadonlyArray<RuntimeEvent> = batch.events ?? []
      const queued = batch.queued ?? []
      const unqueued = batch.unqueued ?? []
      if (deleted.length + workers.length + entries.length + events.length + queued.length + unqueued.length === 0) {
        return Effect.void
      }
      const maxSeq = events.reduce((m, e) => Math.max(m, e.seq), 0)
      return db.transaction((tx) =>
        Effect.gen(function*() {
          for (const id of deleted) {
            yield* tx.run("DELETE FROM workers WHERE worker_id = ?", [id])
            yield* tx.run("DELETE FROM transcript WHERE worker_id = ?", [id])
            yield* tx.run("DELETE FROM input_queue WHERE worker_id = ?", [id])
          }
          for (const id of unqueued) yield* tx.run("DELETE FROM input_queue WHERE input_id = ?", [id])
          yield* insertRows(
            tx,
            "INSERT OR REPLACE INTO input_queue",
            QUEUE_COLUMNS,
            queued.map(queueParams)
          )
          yield* insertRows(tx, "INSERT OR REPLACE INTO workers", WORKER_COLUMNS, workers.map(workerParams))
          yield* insertRows(tx, "INSERT OR REPLACE INTO transcript", ENTRY_COLUMNS, entries.map(entryParams))
          yield* insertRows(tx, "INSERT INTO events", EVENT_COLUMNS, events.map(eventParams))
          if (maxSeq > persistedSeq) yield* tx.run("UPDATE meta SET last_seq = ? WHERE id = 1", [maxSeq])
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
          "SELECT worker_id, idx, entry_id, turn_id, at, data FROM transcript WHERE worker_id = ? AND idx >= ? " +
            "ORDER BY idx LIMIT ?",
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
          "SELECT seq, runtime_id, worker_id, turn_id, kind, at, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
          [after, limit]
        )
      ).pipe(Effect.flatMap((rows) =>
        Effect.forEach(rows, (row) =>
          Either.match(toEvent(row), {
            onRight: Effect.succeed,
            onLeft: ({ event, reason }) =>
              Effect.as(Effect.logWarning(`event ${row.seq} is corrupt: ${reason}`), event)
          }))
      ))

    const loadQueued = db.read((tx) =>
      tx.all<Record<string, unknown>>(`SELECT ${QUEUE_COLUMNS.join(", ")} FROM input_queue ORDER BY worker_id, seq`)
    ).pipe(Effect.flatMap(decodeQueuedRows))

    return {
      kind: "sqlite",
      durable: true,
      meta: Effect.sync(() => ({ epoch, lastSeq })),
      loadWorkers,
      commit,
      loadQueued,
      transcript,
      eventsAfter,
      eventsRetainedFrom: Effect.sync(() => Option.some(prunedThrough + 1)),
      addDiagnostic: (draft) => db.transaction((tx) => insertDiagnostic(tx, draft)),
      diagnostics: (limit) =>
        db.read((tx) =>
          tx.all<DiagnosticRow>(
            "SELECT id, at, severity, code, message, worker_id FROM diagnostics ORDER BY id DESC LIMIT ?",
            [limit]
          )
        ).pipe(Effect.map((rows) => rows.map(decodeDiagnostic)))
    } satisfies WorkerStoreService
  })
