import { Effect } from "effect"
import type { RuntimeEvent, TranscriptEntry, TranscriptEntryData, Usage, WorkerRecord } from "../Domain.js"
import { RuntimeUnavailable } from "../Errors.js"
import { type EventDraft, EventLog } from "../EventLog.js"
import { IdGenerator, type TurnId } from "../Ids.js"
import { type CommitBatch, type StoreError, WorkerStore } from "../WorkerStore.js"
import type { ActiveTurn } from "./workerTable.js"

/** How a change reaches the store, the event log and memory, with the time and ids it is stamped with. */

export const unavailable = (e: StoreError) => new RuntimeUnavailable({ message: `the store failed: ${e.message}` })

export const addUsage = (a: Usage, b: ActiveTurn["usage"], at: string, turns: number): Usage => ({
  input_tokens: a.input_tokens + b.input_tokens,
  output_tokens: a.output_tokens + b.output_tokens,
  cached_tokens: a.cached_tokens + b.cached_tokens,
  turns: a.turns + turns,
  last_activity_at: at
})

export const revise = (r: WorkerRecord, patch: Partial<WorkerRecord>, at: string): WorkerRecord => ({
  ...r,
  ...patch,
  updated_at: at,
  revision: r.revision + 1
})

export const appendedDrafts = (entries: ReadonlyArray<TranscriptEntry>): Array<EventDraft> =>
  entries.map((e) => ({
    worker_id: e.worker_id,
    turn_id: e.turn_id,
    kind: "transcript.appended" as const,
    data: { entry: e }
  }))

export interface Committer {
  /** The time from the `Clock` service, as an ISO string. */
  readonly now: () => string
  /** A transcript entry `offset` places after the record's transcript, with an id from the `IdGenerator`. */
  readonly entry: (
    r: WorkerRecord,
    offset: number,
    data: TranscriptEntryData,
    at: string,
    turnId?: TurnId
  ) => TranscriptEntry
  /** Commits a batch and publishes its events in one step, then installs the new records in memory. */
  readonly commit: (
    drafts: ReadonlyArray<EventDraft>,
    batch: Omit<CommitBatch, "events">,
    apply: () => void
  ) => Effect.Effect<ReadonlyArray<RuntimeEvent>, RuntimeUnavailable>
}

export const make: Effect.Effect<Committer, never, WorkerStore | EventLog> = Effect.gen(function*() {
  const store = yield* WorkerStore
  const log = yield* EventLog
  const clock = yield* Effect.clock
  const ids = yield* IdGenerator

  const now = () => new Date(clock.unsafeCurrentTimeMillis()).toISOString()

  const entry = (
    r: WorkerRecord,
    offset: number,
    data: TranscriptEntryData,
    at: string,
    turnId?: TurnId
  ): TranscriptEntry => ({
    worker_id: r.worker_id,
    index: r.transcript_length + offset,
    entry_id: ids.entryId(),
    ...(turnId === undefined ? {} : { turn_id: turnId }),
    at,
    data
  })

  /** Commits a batch and publishes its events in one step, then installs the new records in memory. */
  const commit = (
    drafts: ReadonlyArray<EventDraft>,
    batch: Omit<CommitBatch, "events">,
    apply: () => void
  ): Effect.Effect<ReadonlyArray<RuntimeEvent>, RuntimeUnavailable> => {
    const write = (events: ReadonlyArray<RuntimeEvent>) =>
      store.commit({ ...batch, events }).pipe(Effect.tap(() => Effect.sync(apply)), Effect.mapError(unavailable))
    return drafts.length === 0 ? Effect.as(write([]), []) : log.append(drafts, write)
  }

  return { now, entry, commit }
})
