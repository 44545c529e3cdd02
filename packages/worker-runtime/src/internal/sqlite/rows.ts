import { Effect, Either, ParseResult, Schema } from "effect"
import type { Allocation } from "../../AllocationRegistry.js"
import * as Cursor from "../../Cursor.js"
import {
  AllowRule,
  CreateWorker,
  DenyRule,
  type Diagnostic,
  LastTurn,
  QueuedInput,
  RuntimeEvent,
  Severity,
  type TranscriptEntry,
  TranscriptEntryData,
  WorkerRecord,
  WorkerStatus
} from "../../Domain.js"
import { TurnId, WorkerId } from "../../Ids.js"
import * as Profiles from "../../Profiles.js"
import type { DiagnosticDraft } from "../../WorkerStore.js"

/** Row shapes and codecs. Decoders never throw: a row that does not decode is reported, never trusted. */

export interface WorkerRow {
  readonly worker_id: unknown
  readonly spec: unknown
  readonly status: unknown
  readonly created_at: unknown
  readonly updated_at: unknown
  readonly current_turn_id: unknown
  readonly last_turn: unknown
  readonly input_tokens: unknown
  readonly output_tokens: unknown
  readonly cached_tokens: unknown
  readonly turns: unknown
  readonly last_activity_at: unknown
  readonly transcript_length: unknown
  readonly revision: unknown
}

export const WORKER_COLUMNS = [
  "worker_id",
  "spec",
  "status",
  "created_at",
  "updated_at",
  "current_turn_id",
  "last_turn",
  "input_tokens",
  "output_tokens",
  "cached_tokens",
  "turns",
  "last_activity_at",
  "transcript_length",
  "revision"
] as const

export const workerParams = (r: WorkerRecord): Array<unknown> => [
  r.worker_id,
  JSON.stringify(r.spec),
  r.status,
  r.created_at,
  r.updated_at,
  r.current_turn_id ?? null,
  r.last_turn === undefined ? null : JSON.stringify(r.last_turn),
  r.usage.input_tokens,
  r.usage.output_tokens,
  r.usage.cached_tokens,
  r.usage.turns,
  r.usage.last_activity_at ?? null,
  r.transcript_length,
  r.revision
]

export const ENTRY_COLUMNS = ["worker_id", "idx", "entry_id", "turn_id", "at", "data"] as const

export const entryParams = (e: TranscriptEntry): Array<unknown> => [
  e.worker_id,
  e.index,
  e.entry_id,
  e.turn_id ?? null,
  e.at,
  JSON.stringify(e.data)
]

export const EVENT_COLUMNS = ["seq", "runtime_id", "worker_id", "turn_id", "kind", "at", "data"] as const

export const eventParams = (e: RuntimeEvent): Array<unknown> => [
  e.seq,
  e.runtime_id,
  e.worker_id ?? null,
  e.turn_id ?? null,
  e.kind,
  e.at,
  JSON.stringify(e.data ?? null)
]

const parseJson = (text: unknown, field: string): Either.Either<unknown, string> =>
  typeof text !== "string"
    ? Either.left(`${field} is not text`)
    : Either.try({ try: () => JSON.parse(text) as unknown, catch: () => `${field} is not valid JSON` })

const text = (value: unknown, field: string): Either.Either<string, string> =>
  typeof value === "string" ? Either.right(value) : Either.left(`${field} is not text`)

const isEntryData = Schema.is(TranscriptEntryData)
const decodeRuntimeEvent = Schema.decodeUnknownEither(RuntimeEvent)
const isSeverity = Schema.is(Severity)
const isAllow = Schema.is(Schema.Array(AllowRule))
const isDeny = Schema.is(Schema.Array(DenyRule))

const schemaError = (field: string) => (e: ParseResult.ParseError) =>
  `${field}: ${ParseResult.TreeFormatter.formatErrorSync(e).split("\n").slice(0, 4).join(" ")}`

const decodeRowError = (e: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(e)[0]
  if (issue === undefined) return "the row does not decode"
  const path = issue.path.join(".")
  return path === "" || issue.message.startsWith(path) ? issue.message : `${path}: ${issue.message}`
}

/** A JSON text column, decoded with `schema`; a text that does not parse says so, naming the column. */
const JsonColumn = <A, I, R>(column: string, schema: Schema.Schema<A, I, R>) =>
  Schema.compose(Schema.parseJson().annotations({ message: () => `${column} is not valid JSON` }), schema)

/** A stored create spec. An inline engine spec written before profiles is upgraded to its provider's profile. */
const StoredSpec = Schema.compose(
  Schema.transform(Schema.Unknown, Schema.Unknown, {
    strict: true,
    decode: (spec) => {
      const engine = typeof spec === "object" && spec !== null ? (spec as { engine?: unknown }).engine : undefined
      return typeof engine === "object" && engine !== null
        ? { ...(spec as object), engine: Profiles.upgradeStoredEngine(engine) }
        : spec
    },
    encode: (spec) => spec
  }),
  CreateWorker,
  { strict: false }
)

/** The columns of a worker row, each checked: counts are non-negative integers, nullable columns are `null`. */
const WorkerColumns = Schema.Struct({
  worker_id: WorkerId,
  spec: JsonColumn("spec", StoredSpec),
  status: WorkerStatus,
  created_at: Schema.String,
  updated_at: Schema.String,
  current_turn_id: Schema.NullOr(TurnId),
  last_turn: Schema.NullOr(JsonColumn("last_turn", LastTurn)),
  input_tokens: Schema.NonNegativeInt,
  output_tokens: Schema.NonNegativeInt,
  cached_tokens: Schema.NonNegativeInt,
  turns: Schema.NonNegativeInt,
  last_activity_at: Schema.NullOr(Schema.String),
  transcript_length: Schema.NonNegativeInt,
  revision: Schema.NonNegativeInt
}).pipe(
  Schema.filter((row) => row.spec.worker_id === row.worker_id || "spec.worker_id does not match the row")
)

/** A worker row as a `WorkerRecord`. */
export const WorkerFromRow = Schema.transform(WorkerColumns, Schema.typeSchema(WorkerRecord), {
  strict: true,
  decode: (row): typeof WorkerRecord.Type => ({
    worker_id: row.worker_id,
    spec: row.spec,
    status: row.status,
    created_at: row.created_at,
    updated_at: row.updated_at,
    current_turn_id: row.current_turn_id ?? undefined,
    last_turn: row.last_turn ?? undefined,
    usage: {
      input_tokens: row.input_tokens,
      output_tokens: row.output_tokens,
      cached_tokens: row.cached_tokens,
      turns: row.turns,
      ...(row.last_activity_at === null ? {} : { last_activity_at: row.last_activity_at })
    },
    transcript_length: row.transcript_length,
    revision: row.revision
  }),
  encode: (r) => ({
    worker_id: r.worker_id,
    spec: r.spec,
    status: r.status,
    created_at: r.created_at,
    updated_at: r.updated_at,
    current_turn_id: r.current_turn_id ?? null,
    last_turn: r.last_turn ?? null,
    input_tokens: r.usage.input_tokens,
    output_tokens: r.usage.output_tokens,
    cached_tokens: r.usage.cached_tokens,
    turns: r.usage.turns,
    last_activity_at: r.usage.last_activity_at ?? null,
    transcript_length: r.transcript_length,
    revision: r.revision
  })
})

const decodeWorkerRow = Schema.decodeUnknownEither(WorkerFromRow)

/** A worker record, or why the row cannot be one. */
export const decodeWorker = (row: WorkerRow): Either.Either<WorkerRecord, string> =>
  Either.mapLeft(decodeWorkerRow(row), decodeRowError)

export interface EntryRow {
  readonly worker_id: string
  readonly idx: number
  readonly entry_id: unknown
  readonly turn_id: unknown
  readonly at: unknown
  readonly data: unknown
}

/** A transcript entry; a row that does not decode keeps its place as a `corrupt_transcript_entry` notice. */
export const decodeEntry = (
  row: EntryRow
): Either.Either<TranscriptEntry, { entry: TranscriptEntry; reason: string }> => {
  const data = Either.flatMap(parseJson(row.data, "data"), (d) =>
    isEntryData(d) ? Either.right(d) : Either.left("data is not a transcript entry"))
  const entryId = typeof row.entry_id === "string" ? row.entry_id : `e_corrupt_${row.idx}`
  const at = typeof row.at === "string" ? row.at : new Date(0).toISOString()
  const turnId = typeof row.turn_id === "string" ? { turn_id: TurnId.make(row.turn_id) } : {}
  const base = { worker_id: WorkerId.make(row.worker_id), index: row.idx, entry_id: entryId, ...turnId, at }
  if (Either.isRight(data) && typeof row.entry_id === "string" && typeof row.at === "string") {
    return Either.right({ ...base, data: data.right })
  }
  const reason = Either.isLeft(data) ? data.left : "entry_id or at is missing"
  return Either.left({
    reason,
    entry: {
      ...base,
      data: {
        _tag: "notice",
        code: "corrupt_transcript_entry",
        message: `transcript entry ${row.idx} could not be read from the store (${reason})`
      }
    }
  })
}

export interface EventRow {
  readonly seq: number
  readonly runtime_id: unknown
  readonly worker_id: unknown
  readonly turn_id: unknown
  readonly kind: unknown
  readonly at: unknown
  readonly data: unknown
}

/** A durable event; a row that does not decode keeps its seq as a `runtime.diagnostic` event saying so. */
export const decodeEvent = (
  epoch: string,
  runtimeId: string
) =>
  (row: EventRow): Either.Either<RuntimeEvent, { event: RuntimeEvent; reason: string }> => {
    const data = parseJson(row.data, "data")
    const base = {
      cursor: Cursor.encode(epoch, row.seq),
      seq: row.seq,
      runtime_id: typeof row.runtime_id === "string" ? row.runtime_id : runtimeId,
      ...(typeof row.worker_id === "string" ? { worker_id: row.worker_id } : {}),
      ...(typeof row.turn_id === "string" ? { turn_id: row.turn_id } : {}),
      at: typeof row.at === "string" ? row.at : new Date(0).toISOString()
    }
    const event = Either.isRight(data) && typeof row.at === "string"
      ? Either.mapLeft(decodeRuntimeEvent({ ...base, kind: row.kind, data: data.right }), schemaError("event"))
      : Either.left(Either.isLeft(data) ? data.left : "at is malformed")
    if (Either.isRight(event)) return Either.right(event.right)
    const reason = event.left
    return Either.left({
      reason,
      event: {
        ...base,
        kind: "runtime.diagnostic",
        data: {
          severity: "error",
          code: "corrupt_event_row",
          message: `event ${row.seq} could not be read from the store (${reason})`
        }
      }
    })
  }

export interface DiagnosticRow {
  readonly id: number
  readonly at: unknown
  readonly severity: unknown
  readonly code: unknown
  readonly message: unknown
  readonly worker_id: unknown
}

export const decodeDiagnostic = (row: DiagnosticRow): Diagnostic => ({
  id: row.id,
  at: typeof row.at === "string" ? row.at : new Date(0).toISOString(),
  severity: isSeverity(row.severity) ? row.severity : "error",
  code: typeof row.code === "string" ? row.code : "unknown",
  message: typeof row.message === "string" ? row.message : "",
  ...(typeof row.worker_id === "string" ? { worker_id: row.worker_id } : {})
})

export interface AllocationRow {
  readonly worker_id: string
  readonly instance_id: unknown
  readonly allow: unknown
  readonly deny: unknown
  readonly delegated_from: unknown
  readonly allocated_at: unknown
}

export const allocationParams = (a: Allocation, instanceId: string): Array<unknown> => [
  a.worker_id,
  instanceId,
  JSON.stringify(a.allow),
  JSON.stringify(a.deny),
  a.delegated_from ?? null,
  a.allocated_at
]

export const decodeAllocation = (row: AllocationRow): Either.Either<Allocation, string> =>
  Either.gen(function*() {
    const allow = yield* parseJson(row.allow, "allow")
    if (!isAllow(allow)) return yield* Either.left("allow is not a list of allow rules")
    const deny = yield* parseJson(row.deny, "deny")
    if (!isDeny(deny)) return yield* Either.left("deny is not a list of deny rules")
    if (row.delegated_from !== null && typeof row.delegated_from !== "string") {
      return yield* Either.left("delegated_from is not text")
    }
    const allocation: Allocation = {
      worker_id: row.worker_id,
      allow,
      deny,
      delegated_from: row.delegated_from ?? undefined,
      allocated_at: yield* text(row.allocated_at, "allocated_at")
    }
    return allocation
  })

/** The `input_queue` table's columns, in the order of `queueParams`. */
export const QUEUE_COLUMNS = ["input_id", "worker_id", "seq", "text", "queued_at"] as const

export const queueParams = (q: QueuedInput): ReadonlyArray<unknown> =>
  [q.input_id, q.worker_id, q.seq, q.text, q.queued_at]

const decodeQueued = Schema.decodeUnknownEither(QueuedInput)

/** Queued inputs from their rows; a row that does not decode is logged and left out. `seq` may come as a string. */
export const decodeQueuedRows = (
  rows: ReadonlyArray<Record<string, unknown>>
): Effect.Effect<ReadonlyArray<QueuedInput>> =>
  Effect.map(
    Effect.forEach(rows, (row) =>
      Either.match(decodeQueued({ ...row, seq: Number(row.seq) }), {
        onRight: (q) => Effect.succeed([q]),
        onLeft: (e) => Effect.as(Effect.logWarning(`queued input ${String(row.input_id)} is corrupt: ${e.message}`), [])
      })),
    (lists) => lists.flat()
  )

/** The diagnostic recorded for a stored worker row that could not be read (the worker is skipped). */
export const corruptWorkerRow = (row: { readonly worker_id?: unknown }, reason: string): DiagnosticDraft => {
  const workerId = typeof row.worker_id === "string" ? row.worker_id : undefined
  return {
    severity: "error",
    code: "corrupt_worker_row",
    message: `the stored record of worker ${workerId ?? "(unreadable id)"} could not be read and was skipped: ${reason}`,
    ...(workerId === undefined ? {} : { worker_id: workerId })
  }
}
