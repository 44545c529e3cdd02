import { JSONSchema, Schema } from "effect"
import { RuntimeId, TurnId, WorkerId } from "./Ids.js"

/** The version of the runtime and its wire contract. */
export const VERSION = "0.1.0"

export const Timestamp = Schema.String.annotations({ description: "ISO-8601 UTC timestamp" })

/**
 * Any JSON value (tool arguments and results, data of an event kind this version does not know). Its JSON Schema
 * lists the JSON types instead of `Schema.Unknown`'s `{"$id": "/schemas/unknown"}`, which would repeat one `$id`
 * in every document that holds two of them (ajv refuses to compile such a document).
 */
export const JsonValue = Schema.Unknown.annotations({
  description: "any JSON value",
  jsonSchema: {
    anyOf: [
      { type: "object" },
      { type: "array" },
      { type: "string" },
      { type: "number" },
      { type: "boolean" },
      { type: "null" }
    ]
  }
})

export const WorkerStatus = Schema.Literal("idle", "running", "stopped")
export type WorkerStatus = typeof WorkerStatus.Type

export const TurnOutcome = Schema.Literal("completed", "cancelled", "failed", "interrupted")
export type TurnOutcome = typeof TurnOutcome.Type

/** A reference to a secret that the runtime resolves itself; the secret value never travels. */
export const SecretRef = Schema.Union(
  Schema.Struct({ env: Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/)) }),
  Schema.Struct({ file: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(4096)) })
)
export type SecretRef = typeof SecretRef.Type

const Bounded = (max: number) => Schema.String.pipe(Schema.maxLength(max))

export const ProfileName = Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9_.-]{0,63}$/, {
  message: () => "a profile name is 1-64 characters of a-z, 0-9, '_', '.' and '-', starting with a letter or digit"
}))

/** Model requests per turn when a profile sets no `max_steps`; a request may lower it, never raise it. */
export const DEFAULT_MAX_STEPS = 16

/**
 * A full engine spec: what an engine profile in a runtime's configuration holds. `provider` selects the engine; the
 * other fields are read by the providers that understand them (`chunk_size`, `delay_ms` and `fail_after_chunks` by
 * `echo`, the rest by LLM engines). Never request data: endpoints and key references come from configuration only.
 */
export const EngineSpec = Schema.Struct({
  provider: Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9_.-]{0,63}$/, {
    message: () => "provider must be a lowercase provider name such as \"echo\" or \"openai-chat\""
  })),
  model: Schema.optional(Bounded(256)),
  base_url: Schema.optional(Bounded(2048)),
  api_key: Schema.optional(SecretRef),
  temperature: Schema.optional(Schema.Number.pipe(Schema.between(0, 2))),
  max_output_tokens: Schema.optional(Schema.Int.pipe(Schema.between(1, 1_000_000))),
  request_timeout_ms: Schema.optional(Schema.Int.pipe(Schema.between(1, 3_600_000))),
  max_steps: Schema.optional(Schema.Int.pipe(Schema.between(1, 1000))),
  context_budget_tokens: Schema.optional(Schema.Int.pipe(Schema.between(1, 10_000_000))),
  chunk_size: Schema.optional(Schema.Int.pipe(Schema.between(1, 1_000_000))),
  delay_ms: Schema.optional(Schema.Int.pipe(Schema.between(0, 60_000))),
  fail_after_chunks: Schema.optional(Schema.Int.pipe(Schema.between(0, 1_000_000)))
}).annotations({ identifier: "EngineProfile" })
export type EngineSpec = typeof EngineSpec.Type

/** The members an `engine` of a create request may have: a profile name and bounded, non-sensitive overrides. */
export const engineRequestFields = ["profile", "temperature", "max_output_tokens", "max_steps"] as const

/**
 * What a create request says about the engine: the name of one of the runtime's profiles (absent: its default) and
 * overrides that may only narrow what the profile allows. Endpoints, keys and providers are never request data.
 */
export const EngineRequest = Schema.Struct({
  profile: Schema.optional(ProfileName),
  temperature: Schema.optional(Schema.Number.pipe(Schema.between(0, 2))),
  max_output_tokens: Schema.optional(Schema.Int.pipe(Schema.between(1, 1_000_000))),
  max_steps: Schema.optional(Schema.Int.pipe(Schema.between(1, 1000)))
}).annotations({ identifier: "EngineRequest" })
export type EngineRequest = typeof EngineRequest.Type

/** The engine of a worker as clients see it: the profile it was created with and what that profile runs. */
export const EngineView = Schema.Struct({
  profile: Schema.String,
  provider: Schema.String,
  model: Schema.optional(Schema.String)
})
export type EngineView = typeof EngineView.Type

/** A profile as any client may see it: never an endpoint, a key reference or a path. */
export const ProfileView = Schema.Struct({
  name: Schema.String,
  provider: Schema.String,
  model: Schema.optional(Schema.String),
  /** Whether a turn could start now: its key (if it needs one) can be read. Checked when read. */
  ready: Schema.Boolean
})
export type ProfileView = typeof ProfileView.Type

export const Access = Schema.Literal("read", "write")
export type Access = typeof Access.Type

export const AbsolutePath = Schema.String.pipe(
  Schema.maxLength(4096),
  Schema.filter((p) => p.startsWith("/") && !p.includes("\0"), {
    message: () => "a scope path must be an absolute path without NUL bytes"
  })
)

export const AllowRule = Schema.Struct({ path: AbsolutePath, access: Access })
export type AllowRule = typeof AllowRule.Type
export const DenyRule = Schema.Struct({ path: AbsolutePath })
export type DenyRule = typeof DenyRule.Type

/** A filesystem scope: allowed subtrees (read or write) minus denied subtrees; optionally delegated by a parent. */
export const ScopeSpec = Schema.Struct({
  allow: Schema.Array(AllowRule).pipe(Schema.maxItems(256)),
  deny: Schema.optional(Schema.Array(DenyRule).pipe(Schema.maxItems(256))),
  delegated_from: Schema.optional(WorkerId)
})
export type ScopeSpec = typeof ScopeSpec.Type

export const Metadata = Schema.Record({ key: Bounded(128), value: Bounded(4096) }).pipe(
  Schema.filter((r) => Object.keys(r).length <= 64, { message: () => "metadata holds at most 64 keys" })
)

export const ToolName = Schema.String.pipe(Schema.pattern(/^[a-z][a-z0-9_]{0,63}$/))

export const CreateWorker = Schema.Struct({
  worker_id: Schema.optional(WorkerId),
  display_name: Schema.String.pipe(
    Schema.minLength(1, { message: () => "display_name must not be empty" }),
    Schema.maxLength(200, { message: () => "display_name must be at most 200 characters" })
  ),
  engine: Schema.optional(EngineRequest),
  system_prompt: Schema.optional(Bounded(200_000)),
  tools: Schema.optional(Schema.Array(ToolName).pipe(Schema.maxItems(64))),
  scope: Schema.optional(ScopeSpec),
  initial_input: Schema.optional(Bounded(1_000_000)),
  metadata: Schema.optional(Metadata)
})
export type CreateWorker = typeof CreateWorker.Type

/**
 * What an input does when a turn is already running: `reject` (the default) answers `WorkerBusy`, `enqueue` puts it
 * in the worker's bounded FIFO queue, `interrupt` cancels the running turn and starts this one in the same step.
 */
export const BusyPolicy = Schema.Literal("reject", "enqueue", "interrupt")
export type BusyPolicy = typeof BusyPolicy.Type

export const SendInput = Schema.Struct({
  text: Schema.String.pipe(
    Schema.minLength(1, { message: () => "text must not be empty" }),
    Schema.maxLength(1_000_000, { message: () => "text must be at most 1,000,000 characters" })
  ),
  busy: Schema.optional(BusyPolicy)
})
export type SendInput = typeof SendInput.Type

export const Usage = Schema.Struct({
  input_tokens: Schema.Number,
  output_tokens: Schema.Number,
  cached_tokens: Schema.Number,
  turns: Schema.Number,
  last_activity_at: Schema.optional(Timestamp)
})
export type Usage = typeof Usage.Type

export const emptyUsage: Usage = { input_tokens: 0, output_tokens: 0, cached_tokens: 0, turns: 0 }

export const LastTurn = Schema.Struct({
  turn_id: TurnId,
  outcome: TurnOutcome,
  ended_at: Timestamp
})
export type LastTurn = typeof LastTurn.Type

/** A worker as clients see it. */
export const Worker = Schema.Struct({
  runtime_id: RuntimeId,
  worker_id: WorkerId,
  display_name: Schema.String,
  display_ref: Schema.String,
  status: WorkerStatus,
  engine: EngineView,
  tools: Schema.Array(Schema.String),
  scope: Schema.optional(ScopeSpec),
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  created_at: Timestamp,
  updated_at: Timestamp,
  current_turn_id: Schema.optional(TurnId),
  last_turn: Schema.optional(LastTurn),
  usage: Usage,
  transcript_length: Schema.Number,
  /** Inputs waiting in the worker's queue (`GET /v1/workers/:id/queue` lists them). */
  queue_length: Schema.optional(Schema.Number)
})
export type Worker = typeof Worker.Type

/** An input accepted with `busy: "enqueue"` while a turn was running, as stored until it starts or is cancelled. */
export const QueuedInput = Schema.Struct({
  input_id: Schema.String,
  worker_id: WorkerId,
  text: Schema.String,
  queued_at: Timestamp,
  /** Order within the worker's queue: increasing, not necessarily contiguous. */
  seq: Schema.Number
})
export type QueuedInput = typeof QueuedInput.Type

/** One waiting input as clients see it; `position` 1 starts next. */
export const QueueItem = Schema.Struct({
  input_id: Schema.String,
  position: Schema.Number,
  queued_at: Timestamp,
  text: Schema.String
})
export type QueueItem = typeof QueueItem.Type

export const WorkerQueue = Schema.Struct({
  worker_id: WorkerId,
  limit: Schema.Number,
  items: Schema.Array(QueueItem)
})
export type WorkerQueue = typeof WorkerQueue.Type

/** The answer to `DELETE /v1/workers/:id/queue[/:input_id]`: the inputs taken out of the queue. */
export const QueueCancelled = Schema.Struct({
  worker_id: WorkerId,
  cancelled: Schema.Array(Schema.String),
  worker: Worker
})
export type QueueCancelled = typeof QueueCancelled.Type

/**
 * The durable record of a worker: its full create spec (the config snapshot, secrets only as references), status,
 * current turn, usage and a revision that grows with every write.
 */
export const WorkerRecord = Schema.Struct({
  worker_id: WorkerId,
  spec: CreateWorker,
  status: WorkerStatus,
  created_at: Timestamp,
  updated_at: Timestamp,
  current_turn_id: Schema.UndefinedOr(TurnId),
  last_turn: Schema.UndefinedOr(LastTurn),
  usage: Usage,
  transcript_length: Schema.NonNegativeInt,
  revision: Schema.NonNegativeInt
}).annotations({ identifier: "WorkerRecord" })
export type WorkerRecord = typeof WorkerRecord.Type

export const ErrorInfo = Schema.Struct({
  _tag: Schema.String,
  message: Schema.String,
  code: Schema.optional(Schema.String)
})
export type ErrorInfo = typeof ErrorInfo.Type

export const TranscriptEntryData = Schema.Union(
  Schema.TaggedStruct("user_input", { text: Schema.String }),
  Schema.TaggedStruct("assistant_message", { text: Schema.String, partial: Schema.optional(Schema.Boolean) }),
  Schema.TaggedStruct("tool_call", { call_id: Schema.String, name: Schema.String, arguments: JsonValue }),
  Schema.TaggedStruct("tool_result", {
    call_id: Schema.String,
    name: Schema.String,
    result: JsonValue,
    is_error: Schema.Boolean
  }),
  Schema.TaggedStruct("notice", {
    code: Schema.String,
    message: Schema.String,
    error: Schema.optional(ErrorInfo)
  })
)
export type TranscriptEntryData = typeof TranscriptEntryData.Type

/** One committed transcript entry; `index` counts from 0 per worker and never changes. */
export const TranscriptEntry = Schema.Struct({
  worker_id: WorkerId,
  index: Schema.Number,
  entry_id: Schema.String,
  turn_id: Schema.optional(TurnId),
  at: Timestamp,
  data: TranscriptEntryData
})
export type TranscriptEntry = typeof TranscriptEntry.Type

export const EventKind = Schema.Literal(
  "worker.created",
  "worker.status",
  "worker.deleted",
  "turn.started",
  "turn.delta",
  "turn.tool_call",
  "turn.tool_result",
  "turn.usage",
  "turn.retry",
  "turn.completed",
  "turn.cancelled",
  "turn.failed",
  "turn.interrupted",
  "transcript.appended",
  "input.queued",
  "input.dequeued",
  "runtime.diagnostic",
  "stream.lagged",
  "stream.error",
  "stream.live",
  "stream.bookmark"
)
export type EventKind = typeof EventKind.Type

/** Kinds that are previews of committed events: never persisted, not replayed after a restart. */
export const ephemeralKinds: ReadonlySet<string> = new Set<EventKind>(["turn.delta", "turn.retry"])

/** The tokens of one engine step (`turn.usage`) or of one turn (the `usage` of a turn's end). */
export const TurnUsage = Schema.Struct({
  input_tokens: Schema.Number,
  output_tokens: Schema.Number,
  cached_tokens: Schema.Number
})
export type TurnUsage = typeof TurnUsage.Type

/** How a turn ended: the data of `turn.completed`, `turn.cancelled`, `turn.failed` and `turn.interrupted`. */
export const TurnEnded = Schema.Struct({
  outcome: TurnOutcome,
  usage: TurnUsage,
  reason: Schema.optional(Schema.String),
  error: Schema.optional(ErrorInfo)
})
export type TurnEnded = typeof TurnEnded.Type

export const Severity = Schema.Literal("info", "warning", "error")

/** A problem found by recovery or the store, as recorded in `GET /v1/runtime/diagnostics` (`id` when it was). */
export const DiagnosticData = Schema.Struct({
  id: Schema.optional(Schema.Number),
  severity: Severity,
  code: Schema.String,
  message: Schema.String,
  worker_id: Schema.optional(Schema.String)
})
export type DiagnosticData = typeof DiagnosticData.Type

/** The last event of a stream whose subscriber fell behind; resume from `resume_cursor`. */
export const StreamLaggedData = Schema.Struct({ resume_cursor: Schema.String, message: Schema.String })
export type StreamLaggedData = typeof StreamLaggedData.Type

/**
 * Sent once on a stream opened with a cursor (or `earliest`), after the replay: what came before was history, what
 * comes after is live. Its cursor is the log's head when the stream opened; `replayed` counts the events before it.
 */
export const StreamLiveData = Schema.Struct({ replayed: Schema.Number })
export type StreamLiveData = typeof StreamLiveData.Type

/**
 * A fresh resume position for a filtered stream (not stored in the log): every matching event up to it was
 * delivered, so resuming from it yields exactly the matching events after it.
 */
export const StreamBookmarkData = Schema.Struct({ resume_cursor: Schema.String })
export type StreamBookmarkData = typeof StreamBookmarkData.Type

/** The last frame of a stream that failed after it started. On the wire this frame's `data` is this object alone. */
export const StreamErrorData = Schema.Struct({
  _tag: Schema.String,
  message: Schema.String,
  resume_cursor: Schema.optional(Schema.String)
})
export type StreamErrorData = typeof StreamErrorData.Type

/** An input entered the worker's queue at `position` (1 starts next). */
export const InputQueuedData = Schema.Struct({ input_id: Schema.String, position: Schema.Number, queued_at: Timestamp })

/** Why an input left the queue: its turn started, it was cancelled, or its worker was deleted. */
export const DequeueReason = Schema.Literal("started", "cancelled", "worker_deleted")

/** An input left the worker's queue; `turn_id` is the turn it started (reason `started`). */
export const InputDequeuedData = Schema.Struct({
  input_id: Schema.String,
  reason: DequeueReason,
  turn_id: Schema.optional(Schema.String)
})

/** The `data` schema of each event kind. docs/events.md lists the same kinds and fields (a test compares them). */
export const EventData = {
  "worker.created": Schema.Struct({ worker: Worker }),
  "worker.status": Schema.Struct({ status: WorkerStatus, previous: WorkerStatus }),
  "worker.deleted": Schema.Struct({ worker_id: Schema.String }),
  "turn.started": Schema.Struct({ input_index: Schema.Number, input_id: Schema.optional(Schema.String) }),
  "turn.delta": Schema.Struct({ text: Schema.String }),
  "turn.tool_call": Schema.Struct({ call_id: Schema.String, name: Schema.String, arguments: JsonValue }),
  "turn.tool_result": Schema.Struct({
    call_id: Schema.String,
    name: Schema.String,
    result: JsonValue,
    is_error: Schema.Boolean
  }),
  "turn.usage": TurnUsage,
  "turn.retry": Schema.Struct({ attempt: Schema.Number, delay_ms: Schema.Number, reason: Schema.String }),
  "turn.completed": TurnEnded,
  "turn.cancelled": TurnEnded,
  "turn.failed": TurnEnded,
  "turn.interrupted": TurnEnded,
  "transcript.appended": Schema.Struct({ entry: TranscriptEntry }),
  "input.queued": InputQueuedData,
  "input.dequeued": InputDequeuedData,
  "runtime.diagnostic": DiagnosticData,
  "stream.lagged": StreamLaggedData,
  "stream.error": StreamErrorData,
  "stream.live": StreamLiveData,
  "stream.bookmark": StreamBookmarkData
} as const satisfies { readonly [K in EventKind]: Schema.Schema<any, any, never> }

/**
 * The envelope fields every event carries besides `kind`, `at` and `data`. `cursor` is opaque; `seq` grows by one
 * per event of a runtime.
 */
const envelope = {
  cursor: Schema.String,
  seq: Schema.Number,
  runtime_id: Schema.String,
  worker_id: Schema.optional(Schema.String),
  turn_id: Schema.optional(Schema.String)
}

const event = <K extends EventKind>(kind: K) =>
  Schema.Struct({
    ...envelope,
    kind: Schema.Literal(kind),
    at: Timestamp,
    data: EventData[kind] as (typeof EventData)[K]
  })

const knownKinds: ReadonlySet<string> = new Set(EventKind.literals)

/** On the wire: a kind this version of the contract does not know (sent by a newer runtime). */
const OtherKind = Schema.String.pipe(
  Schema.filter((kind) => !knownKinds.has(kind), { message: () => "a known event kind must carry its own data" })
).annotations({
  jsonSchema: { type: "string", not: { enum: EventKind.literals } },
  description: "an event kind this version of the contract does not know"
})

/**
 * An event of a kind this version does not know: the envelope and `data` are kept, `kind` reads `"other"` and the
 * kind that was sent is in `other_kind` (encoding puts it back). A literal `kind` keeps narrowing on `kind` exact:
 * a member whose `kind` were any string would make every narrowed `data` `unknown`.
 */
export const OtherEvent = Schema.transform(
  Schema.Struct({ ...envelope, kind: OtherKind, at: Timestamp, data: JsonValue }),
  Schema.Struct({
    ...envelope,
    kind: Schema.Literal("other"),
    other_kind: Schema.String,
    at: Timestamp,
    data: JsonValue
  }),
  {
    strict: true,
    decode: ({ kind, ...rest }) => ({ ...rest, kind: "other" as const, other_kind: kind }),
    encode: ({ kind: _, other_kind, ...rest }) => ({ ...rest, kind: other_kind })
  }
)
export type OtherEvent = typeof OtherEvent.Type

/**
 * The event envelope, one member per kind, each with its own `data`; narrowing on `kind` types `data`. An unknown
 * future kind decodes as `OtherEvent`, so an older client keeps working with a newer runtime.
 */
export const RuntimeEvent = Schema.Union(
  event("worker.created"),
  event("worker.status"),
  event("worker.deleted"),
  event("turn.started"),
  event("turn.delta"),
  event("turn.tool_call"),
  event("turn.tool_result"),
  event("turn.usage"),
  event("turn.retry"),
  event("turn.completed"),
  event("turn.cancelled"),
  event("turn.failed"),
  event("turn.interrupted"),
  event("transcript.appended"),
  event("input.queued"),
  event("input.dequeued"),
  event("runtime.diagnostic"),
  event("stream.lagged"),
  event("stream.error"),
  event("stream.live"),
  event("stream.bookmark"),
  OtherEvent
).annotations({
  identifier: "RuntimeEvent",
  title: "RuntimeEvent",
  description: "One event of the runtime's observation stream (the `data:` line of an SSE frame); see docs/events.md"
})
export type RuntimeEvent = typeof RuntimeEvent.Type

/** An event of a known kind. */
export type KnownEvent = Exclude<RuntimeEvent, OtherEvent>

/** The event of one kind, with its typed `data`. */
export type EventOf<K extends EventKind> = Extract<RuntimeEvent, { readonly kind: K }>

/** The last event of a turn: `turn.completed`, `turn.cancelled`, `turn.failed` or `turn.interrupted`. */
export type TurnEndEvent = EventOf<"turn.completed" | "turn.cancelled" | "turn.failed" | "turn.interrupted">

export const isTurnEnd = (event: RuntimeEvent): event is TurnEndEvent =>
  event.kind === "turn.completed" || event.kind === "turn.cancelled" || event.kind === "turn.failed" ||
  event.kind === "turn.interrupted"

let jsonSchema: JSONSchema.JsonSchema7Root | undefined

/**
 * The JSON Schema (draft-07) of the event union, for tools outside Effect; `/openapi.json` holds the same schema as
 * `components.schemas.RuntimeEvent`. Built on first use, not at import.
 */
export const runtimeEventJsonSchema = (): JSONSchema.JsonSchema7Root => (jsonSchema ??= JSONSchema.make(RuntimeEvent))

/** The widest filesystem access a runtime grants to worker scopes; `none` when it has no scope roots. */
export const ScopeAccess = Schema.Literal("none", "read", "write")
export type ScopeAccess = typeof ScopeAccess.Type

/** What a runtime can do, so a caller can pick one by capability. Names no endpoint, key reference or path. */
export const Capabilities = Schema.Struct({
  /** `embedded` in another process (the Backend), `process` when served as `yoi-runtime`. */
  kind: Schema.Literal("embedded", "process"),
  /** Engine providers this runtime can run. */
  engines: Schema.Array(Schema.String),
  profiles: Schema.Array(ProfileView),
  default_profile: Schema.String,
  /** Tools a worker may be granted here. */
  tools: Schema.Array(Schema.String),
  scopes: ScopeAccess,
  shell: Schema.Boolean,
  git: Schema.Boolean,
  worktree: Schema.Boolean,
  durable: Schema.Boolean,
  event_replay: Schema.Boolean,
  allocations: Schema.Boolean
})
export type Capabilities = typeof Capabilities.Type

export const Limits = Schema.Struct({
  transcript_page_max: Schema.Number,
  worker_page_max: Schema.Number,
  event_backlog: Schema.Number,
  subscriber_buffer: Schema.Number,
  max_input_chars: Schema.Number
})
export type Limits = typeof Limits.Type

export const StatusCounts = Schema.Struct({
  idle: Schema.Number,
  running: Schema.Number,
  stopped: Schema.Number,
  total: Schema.Number
})
export type StatusCounts = typeof StatusCounts.Type

export const RuntimeSummary = Schema.Struct({
  runtime_id: RuntimeId,
  display_name: Schema.String,
  version: Schema.String,
  status: Schema.Literal("ready", "draining"),
  started_at: Timestamp,
  capabilities: Capabilities,
  counts: StatusCounts,
  usage: Usage,
  store: Schema.Literal("memory", "sqlite", "postgres"),
  limits: Limits,
  cursor: Schema.String
})
export type RuntimeSummary = typeof RuntimeSummary.Type

export const WorkerUsage = Schema.Struct({
  worker_id: WorkerId,
  display_name: Schema.String,
  usage: Usage
})

export const UsageOverview = Schema.Struct({
  runtime_id: RuntimeId,
  totals: Usage,
  workers: Schema.Array(WorkerUsage)
})
export type UsageOverview = typeof UsageOverview.Type

export const Diagnostic = Schema.Struct({
  id: Schema.Number,
  at: Timestamp,
  severity: Severity,
  code: Schema.String,
  message: Schema.String,
  worker_id: Schema.optional(Schema.String)
})
export type Diagnostic = typeof Diagnostic.Type

export const Page = <A, I, R>(item: Schema.Schema<A, I, R>) =>
  Schema.Struct({ items: Schema.Array(item), next_page_token: Schema.optional(Schema.String) })

export const WorkerPage = Page(Worker)
export type WorkerPage = typeof WorkerPage.Type

export const TranscriptPage = Schema.Struct({
  items: Schema.Array(TranscriptEntry),
  next_page_token: Schema.optional(Schema.String),
  cursor: Schema.String
})
export type TranscriptPage = typeof TranscriptPage.Type

export const CreateResult = Schema.Struct({ worker: Worker, created: Schema.Boolean })
export type CreateResult = typeof CreateResult.Type

/** An input whose turn started at once. */
export const InputAccepted = Schema.Struct({ turn_id: TurnId, worker: Worker })
export type InputAccepted = typeof InputAccepted.Type

/** An input put in the worker's queue (`busy: "enqueue"` while a turn was running). */
export const InputQueued = Schema.Struct({
  queued: Schema.Literal(true),
  input_id: Schema.String,
  position: Schema.Number,
  worker: Worker
})
export type InputQueued = typeof InputQueued.Type

/** The answer to an input: its turn started, or (`enqueue` only) it was queued. */
export const InputResult = Schema.Union(InputAccepted, InputQueued)
export type InputResult = typeof InputResult.Type

/** Optional body of `POST /v1/workers/:id/cancel`: cancel this turn only, never a later one. */
export const CancelRequest = Schema.Struct({ turn_id: Schema.optional(Schema.String.pipe(Schema.maxLength(256))) })
export type CancelRequest = typeof CancelRequest.Type

/** `cancelled: false` with an `outcome` when the named turn had already ended: what happened to it. */
export const CancelResult = Schema.Struct({
  cancelled: Schema.Boolean,
  turn_id: Schema.optional(TurnId),
  outcome: Schema.optional(TurnOutcome),
  worker: Worker
})
export type CancelResult = typeof CancelResult.Type

export const DeleteResult = Schema.Struct({ worker_id: WorkerId, deleted: Schema.Boolean })
export type DeleteResult = typeof DeleteResult.Type
