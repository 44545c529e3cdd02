import { Context, Data, Effect, Layer, Option } from "effect"
import type { Diagnostic, QueuedInput, RuntimeEvent, TranscriptEntry, WorkerRecord } from "./Domain.js"
import type { WorkerId } from "./Ids.js"
import { ulid } from "./internal/ulid.js"

/** An infrastructure failure inside a store. The Runtime turns it into `RuntimeUnavailable` at its edge. */
export class StoreError extends Data.TaggedError("StoreError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** One atomic write: all of it is committed, or none of it. */
export interface CommitBatch {
  readonly workers?: ReadonlyArray<WorkerRecord> | undefined
  readonly deleted?: ReadonlyArray<WorkerId> | undefined
  readonly transcript?: ReadonlyArray<TranscriptEntry> | undefined
  readonly events?: ReadonlyArray<RuntimeEvent> | undefined
  /** Inputs entering a worker's queue. */
  readonly queued?: ReadonlyArray<QueuedInput> | undefined
  /** Ids of inputs leaving a queue (started or cancelled); a deleted worker's queue goes with it. */
  readonly unqueued?: ReadonlyArray<string> | undefined
}

export type DiagnosticDraft = Omit<Diagnostic, "id" | "at"> & { readonly at?: string }

/** The store's identity: its epoch (carried by every cursor) and the highest event seq it ever issued. */
export interface StoreMeta {
  readonly epoch: string
  readonly lastSeq: number
}

/**
 * Durable worker records (with their config snapshot), transcript entries, durable events and diagnostics.
 * Layers: `layerMemory` here, `layerSqlite` in `@yoi/worker-runtime/sqlite`.
 */
export interface WorkerStoreService {
  readonly kind: "memory" | "sqlite" | "postgres"
  readonly durable: boolean
  readonly meta: Effect.Effect<StoreMeta, StoreError>
  /** Every worker record, read once by the Runtime at startup. */
  readonly loadWorkers: Effect.Effect<ReadonlyArray<WorkerRecord>, StoreError>
  readonly commit: (batch: CommitBatch) => Effect.Effect<void, StoreError>
  /** Every queued input of every worker, in queue order per worker; read once by the Runtime at startup. */
  readonly loadQueued: Effect.Effect<ReadonlyArray<QueuedInput>, StoreError>
  /** Entries with `index >= fromIndex`, ascending, at most `limit`. */
  readonly transcript: (
    workerId: WorkerId,
    fromIndex: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<TranscriptEntry>, StoreError>
  /** Durable events with `seq > after`, ascending, at most `limit` (always empty for a non-durable store). */
  readonly eventsAfter: (after: number, limit: number) => Effect.Effect<ReadonlyArray<RuntimeEvent>, StoreError>
  /** The lowest seq from which every durable event is retained; none when the store keeps no events. */
  readonly eventsRetainedFrom: Effect.Effect<Option.Option<number>, StoreError>
  readonly addDiagnostic: (draft: DiagnosticDraft) => Effect.Effect<Diagnostic, StoreError>
  /** Newest first. */
  readonly diagnostics: (limit: number) => Effect.Effect<ReadonlyArray<Diagnostic>, StoreError>
}

export class WorkerStore extends Context.Tag("@yoi/worker-runtime/WorkerStore")<WorkerStore, WorkerStoreService>() {}

const MAX_MEMORY_DIAGNOSTICS = 1000

/**
 * An in-memory store: a new epoch for every life, so cursors of a previous life are recognised as foreign. It keeps
 * no events (the EventLog's in-memory backlog is the only replay source) and holds records by reference.
 */
export const makeMemory: Effect.Effect<WorkerStoreService> = Effect.sync(() => {
  const epoch = ulid().slice(0, 16)
  const workers = new Map<WorkerId, WorkerRecord>()
  const transcripts = new Map<WorkerId, Array<TranscriptEntry>>()
  const queued = new Map<string, QueuedInput>()
  const diagnostics: Array<Diagnostic> = []
  let diagnosticId = 0

  const commit = (batch: CommitBatch) =>
    Effect.sync(() => {
      for (const id of batch.deleted ?? []) {
        workers.delete(id)
        transcripts.delete(id)
        for (const [inputId, q] of queued) if (q.worker_id === id) queued.delete(inputId)
      }
      for (const id of batch.unqueued ?? []) queued.delete(id)
      for (const q of batch.queued ?? []) queued.set(q.input_id, q)
      for (const record of batch.workers ?? []) workers.set(record.worker_id, record)
      for (const entry of batch.transcript ?? []) {
        let list = transcripts.get(entry.worker_id)
        if (list === undefined) {
          list = []
          transcripts.set(entry.worker_id, list)
        }
        list[entry.index] = entry
      }
    })

  return {
    kind: "memory",
    durable: false,
    meta: Effect.succeed({ epoch, lastSeq: 0 }),
    loadWorkers: Effect.sync(() => Array.from(workers.values())),
    commit,
    loadQueued: Effect.sync(() => Array.from(queued.values()).sort((a, b) => a.seq - b.seq)),
    transcript: (workerId, fromIndex, limit) =>
      Effect.sync(() => {
        const from = Math.max(0, fromIndex)
        return (transcripts.get(workerId) ?? []).slice(from, from + limit)
      }),
    eventsAfter: () => Effect.succeed([]),
    eventsRetainedFrom: Effect.succeed(Option.none()),
    addDiagnostic: (draft) =>
      Effect.sync(() => {
        diagnosticId += 1
        const diagnostic: Diagnostic = { ...draft, id: diagnosticId, at: draft.at ?? new Date().toISOString() }
        diagnostics.push(diagnostic)
        if (diagnostics.length > MAX_MEMORY_DIAGNOSTICS) diagnostics.shift()
        return diagnostic
      }),
    diagnostics: (limit) => Effect.sync(() => diagnostics.slice(-limit).reverse())
  } satisfies WorkerStoreService
})

export const layerMemory: Layer.Layer<WorkerStore> = Layer.effect(WorkerStore, makeMemory)
