import { Chunk, Context, Effect, Either, Fiber, Layer, Option, ParseResult, Schema, Scope, Stream } from "effect"
import { AllocationRegistry } from "./AllocationRegistry.js"
import {
  type CancelResult,
  CreateWorker,
  type CreateResult,
  type DeleteResult,
  type Diagnostic,
  EventKind,
  type InputAccepted,
  type LastTurn,
  type RuntimeEvent,
  type RuntimeSummary,
  SendInput,
  type TranscriptEntry,
  type TranscriptEntryData,
  type TranscriptPage,
  type TurnOutcome,
  emptyUsage,
  type Usage,
  type UsageOverview,
  type Worker,
  type WorkerPage,
  type WorkerRecord,
  WorkerStatus
} from "./Domain.js"
import { type Engine, type EngineEvent, EngineError, Engines, type TurnContext } from "./Engine.js"
import {
  type CursorExpired,
  type CursorInvalid,
  InvalidInput,
  RuntimeUnavailable,
  type ScopeConflict,
  WorkerAlreadyExists,
  WorkerBusy,
  WorkerNotFound,
  WorkerStateConflict,
  WorkerStopped
} from "./Errors.js"
import { type EventDraft, EventLog } from "./EventLog.js"
import { makeEntryId, makeTurnId, makeWorkerId, RuntimeId, type TurnId, WorkerId } from "./Ids.js"
import * as Json from "./internal/json.js"
import * as Metrics from "./Metrics.js"
import { type CommitBatch, type StoreError, WorkerStore } from "./WorkerStore.js"

export const VERSION = "0.1.0"

export interface RuntimeConfigShape {
  readonly runtimeId: RuntimeId
  readonly displayName: string
  /** Recent events (deltas included) kept in memory for resume. */
  readonly eventBacklog: number
  /** Undelivered events one subscriber may hold before it gets `stream.lagged`. */
  readonly subscriberBuffer: number
  /** The most transcript entries an engine may read as history for one turn. */
  readonly historyLimit: number
}

export class RuntimeConfig extends Context.Tag("@yoi/worker-runtime/RuntimeConfig")<
  RuntimeConfig,
  RuntimeConfigShape
>() {}

export const defaultConfig = (runtimeId = "local"): RuntimeConfigShape => ({
  runtimeId: RuntimeId.make(runtimeId),
  displayName: runtimeId,
  eventBacklog: 10_000,
  subscriberBuffer: 1_024,
  historyLimit: 1_000
})

export const TRANSCRIPT_PAGE_MAX = 500
export const WORKER_PAGE_MAX = 500
const MAX_INPUT_CHARS = 1_000_000

export interface ListWorkersQuery {
  readonly status?: string | undefined
  readonly limit?: number | undefined
  readonly page_token?: string | undefined
}

export interface TranscriptQuery {
  readonly limit?: number | undefined
  readonly page_token?: string | undefined
}

export interface SubscribeQuery {
  readonly cursor?: string | undefined
  readonly worker_id?: string | undefined
  readonly kinds?: ReadonlyArray<string> | undefined
}

/**
 * The authority for Worker semantics. Everything else (the REST server, the Backend, tests) calls it and never
 * re-implements a rule: single-flight turns, the idle/running/stopped lifecycle, the transcript and usage.
 */
export interface RuntimeService {
  readonly runtimeId: RuntimeId
  readonly summary: Effect.Effect<RuntimeSummary>
  readonly listWorkers: (query?: ListWorkersQuery) => Effect.Effect<WorkerPage, InvalidInput>
  readonly getWorker: (workerId: string) => Effect.Effect<Worker, WorkerNotFound | InvalidInput>
  readonly createWorker: (
    spec: CreateWorker
  ) => Effect.Effect<CreateResult, InvalidInput | WorkerAlreadyExists | ScopeConflict | RuntimeUnavailable>
  readonly sendInput: (
    workerId: string,
    input: SendInput
  ) => Effect.Effect<InputAccepted, WorkerNotFound | WorkerBusy | WorkerStopped | InvalidInput | RuntimeUnavailable>
  readonly cancel: (workerId: string) => Effect.Effect<CancelResult, WorkerNotFound | InvalidInput | RuntimeUnavailable>
  readonly stop: (workerId: string) => Effect.Effect<Worker, WorkerNotFound | InvalidInput | RuntimeUnavailable>
  readonly restore: (workerId: string) => Effect.Effect<Worker, WorkerNotFound | InvalidInput | RuntimeUnavailable>
  readonly delete: (
    workerId: string
  ) => Effect.Effect<DeleteResult, WorkerNotFound | WorkerStateConflict | InvalidInput | RuntimeUnavailable>
  readonly transcript: (
    workerId: string,
    query?: TranscriptQuery
  ) => Effect.Effect<TranscriptPage, WorkerNotFound | InvalidInput | RuntimeUnavailable>
  readonly usage: (options?: { readonly limit?: number | undefined }) => Effect.Effect<UsageOverview, InvalidInput>
  readonly diagnostics: (
    options?: { readonly limit?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<Diagnostic>, InvalidInput | RuntimeUnavailable>
  /** Cursor and worker problems fail before anything streams; see `EventLog.subscribe`. */
  readonly subscribe: (
    query?: SubscribeQuery
  ) => Effect.Effect<
    Stream.Stream<RuntimeEvent, RuntimeUnavailable>,
    CursorInvalid | CursorExpired | WorkerNotFound | InvalidInput | RuntimeUnavailable,
    Scope.Scope
  >
  /** The cursor of the newest event. */
  readonly headCursor: Effect.Effect<string>
  /**
   * Graceful shutdown: refuse new input, let running turns finish for up to `graceMs`, then cancel the rest
   * (recorded as cancelled with a `runtime_shutdown` notice).
   */
  readonly drain: (graceMs: number) => Effect.Effect<void>
  readonly isDraining: Effect.Effect<boolean>
}

export class Runtime extends Context.Tag("@yoi/worker-runtime/Runtime")<Runtime, RuntimeService>() {}

interface ActiveTurn {
  readonly turnId: TurnId
  fiber: Fiber.RuntimeFiber<void> | undefined
  /** Assistant text streamed since the last committed entry. */
  text: string
  usage: { input_tokens: number; output_tokens: number; cached_tokens: number }
}

interface WorkerState {
  record: WorkerRecord
  readonly lock: Effect.Semaphore
  turn: ActiveTurn | undefined
  deleted: boolean
}

const now = () => new Date().toISOString()

const unavailable = (e: StoreError) => new RuntimeUnavailable({ message: `the store failed: ${e.message}` })

const formatParseError = (error: ParseResult.ParseError): InvalidInput => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  const field = first === undefined || first.path.length === 0 ? undefined : first.path.join(".")
  const message = issues.slice(0, 3).map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ` : "") + i.message)
    .join("; ")
  return new InvalidInput({ message: message || "invalid input", ...(field === undefined ? {} : { field }) })
}

/** Input nested deeper than this is refused before decoding: formatting a failure on it would overflow the stack. */
export const MAX_INPUT_DEPTH = 64

const deeperThan = (input: unknown, max: number): boolean => {
  const stack: Array<readonly [unknown, number]> = [[input, 0]]
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!
    if (value === null || typeof value !== "object") continue
    if (depth >= max) return true
    for (const child of Array.isArray(value) ? value : Object.values(value)) stack.push([child, depth + 1])
  }
  return false
}

const tooDeep = new InvalidInput({ message: `the input nests deeper than ${MAX_INPUT_DEPTH} levels` })

/** Decodes unknown input with a schema, failing with a readable `InvalidInput`. */
export const decodeInput = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })
  return (input: unknown): Effect.Effect<A, InvalidInput> =>
    deeperThan(input, MAX_INPUT_DEPTH)
      ? Effect.fail(tooDeep)
      : Either.match(decode(input), { onLeft: (e) => Effect.fail(formatParseError(e)), onRight: Effect.succeed })
}

const decodeCreate = decodeInput(CreateWorker)
const decodeSendInput = decodeInput(SendInput)
const isWorkerId = Schema.is(WorkerId)
const isStatus = Schema.is(WorkerStatus)
const isKind = Schema.is(EventKind)

const encodeToken = (prefix: string, value: string) => Buffer.from(`${prefix}:${value}`).toString("base64url")
const decodeToken = (prefix: string, token: string): string | undefined => {
  if (!/^[A-Za-z0-9_-]{1,700}$/.test(token)) return undefined
  const text = Buffer.from(token, "base64url").toString("utf8")
  return text.startsWith(`${prefix}:`) ? text.slice(prefix.length + 1) : undefined
}

const checkLimit = (value: number | undefined, fallback: number, max: number, field = "limit") =>
  value === undefined
    ? Effect.succeed(fallback)
    : Number.isInteger(value) && value >= 1 && value <= max
      ? Effect.succeed(value)
      : Effect.fail(new InvalidInput({ field, message: `${field} must be an integer from 1 to ${max}` }))

const addUsage = (a: Usage, b: ActiveTurn["usage"], at: string, turns: number): Usage => ({
  input_tokens: a.input_tokens + b.input_tokens,
  output_tokens: a.output_tokens + b.output_tokens,
  cached_tokens: a.cached_tokens + b.cached_tokens,
  turns: a.turns + turns,
  last_activity_at: at
})

export const make: Effect.Effect<
  RuntimeService,
  StoreError,
  RuntimeConfig | WorkerStore | EventLog | AllocationRegistry | Engines | Scope.Scope
> = Effect.gen(function*() {
  const config = yield* RuntimeConfig
  const store = yield* WorkerStore
  const log = yield* EventLog
  const allocations = yield* AllocationRegistry
  const engines = yield* Engines
  const runtimeScope = yield* Effect.scope
  const runtimeId = config.runtimeId
  const startedAt = now()
  const workers = new Map<string, WorkerState>()
  const registryLock = yield* Effect.makeSemaphore(1)
  let draining = false

  const view = (r: WorkerRecord): Worker => {
    const w: { -readonly [K in keyof Worker]: Worker[K] } = {
      runtime_id: runtimeId,
      worker_id: r.worker_id,
      display_name: r.spec.display_name,
      display_ref: `${r.spec.display_name}@${runtimeId}`,
      status: r.status,
      engine: r.spec.engine?.model === undefined
        ? { provider: r.spec.engine?.provider ?? "echo" }
        : { provider: r.spec.engine.provider, model: r.spec.engine.model },
      tools: r.spec.tools ?? [],
      created_at: r.created_at,
      updated_at: r.updated_at,
      usage: r.usage,
      transcript_length: r.transcript_length
    }
    if (r.spec.scope !== undefined) w.scope = r.spec.scope
    if (r.spec.metadata !== undefined) w.metadata = r.spec.metadata
    if (r.current_turn_id !== undefined) w.current_turn_id = r.current_turn_id
    if (r.last_turn !== undefined) w.last_turn = r.last_turn
    return w
  }

  const revise = (r: WorkerRecord, patch: Partial<WorkerRecord>, at: string): WorkerRecord => ({
    ...r,
    ...patch,
    updated_at: at,
    revision: r.revision + 1
  })

  const entry = (
    r: WorkerRecord,
    offset: number,
    data: TranscriptEntryData,
    at: string,
    turnId?: TurnId
  ): TranscriptEntry => ({
    worker_id: r.worker_id,
    index: r.transcript_length + offset,
    entry_id: makeEntryId(),
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

  const appendedDrafts = (entries: ReadonlyArray<TranscriptEntry>): Array<EventDraft> =>
    entries.map((e) => ({
      worker_id: e.worker_id,
      turn_id: e.turn_id,
      kind: "transcript.appended" as const,
      data: { entry: e }
    }))

  const lookup = (workerId: string): Effect.Effect<WorkerState, WorkerNotFound | InvalidInput> => {
    if (!isWorkerId(workerId)) {
      return Effect.fail(new InvalidInput({ field: "worker_id", message: `worker_id ${JSON.stringify(String(workerId).slice(0, 140))} is malformed` }))
    }
    const state = workers.get(workerId)
    return state === undefined || state.deleted ? Effect.fail(WorkerNotFound.of(workerId)) : Effect.succeed(state)
  }

  /** Runs `f` holding the worker's lock, re-checking that the worker still exists. */
  const withWorker = <A, E>(
    workerId: string,
    f: (state: WorkerState) => Effect.Effect<A, E>
  ): Effect.Effect<A, E | WorkerNotFound | InvalidInput> =>
    Effect.flatMap(lookup(workerId), (state) =>
      state.lock.withPermits(1)(
        Effect.suspend((): Effect.Effect<A, E | WorkerNotFound> =>
          state.deleted ? Effect.fail(WorkerNotFound.of(workerId)) : f(state)
        )
      ))

  // --- turns ---------------------------------------------------------------------------------------------------

  /** Commits the streamed text as an assistant message and the given entries; holds the worker lock. */
  const commitProgress = (
    state: WorkerState,
    turn: ActiveTurn,
    more: ReadonlyArray<TranscriptEntryData>,
    extra: ReadonlyArray<EventDraft>
  ) =>
    Effect.suspend(() => {
      const at = now()
      const datas: Array<TranscriptEntryData> = []
      if (turn.text.length > 0) datas.push({ _tag: "assistant_message", text: turn.text })
      datas.push(...more)
      const entries = datas.map((d, i) => entry(state.record, i, d, at, turn.turnId))
      const record = revise(state.record, { transcript_length: state.record.transcript_length + entries.length }, at)
      return commit([...appendedDrafts(entries), ...extra], { workers: [record], transcript: entries }, () => {
        state.record = record
        turn.text = ""
      })
    })

  /** Ends the active turn; holds the worker lock. */
  const finishLocked = (
    state: WorkerState,
    turn: ActiveTurn,
    outcome: TurnOutcome,
    options: {
      readonly error?: { readonly _tag: string; readonly code?: string; readonly message: string } | undefined
      readonly reason?: string | undefined
      readonly notice?: { readonly code: string; readonly message: string } | undefined
      readonly nextStatus?: "idle" | "stopped" | undefined
    } = {}
  ) =>
    Effect.suspend(() => {
      const at = now()
      const datas: Array<TranscriptEntryData> = []
      if (turn.text.length > 0) {
        datas.push({
          _tag: "assistant_message",
          text: turn.text,
          ...(outcome === "completed" ? {} : { partial: true })
        })
      }
      if (options.error !== undefined) {
        datas.push({
          _tag: "notice",
          code: "turn_failed",
          message: `turn failed: ${options.error.message}`,
          error: options.error
        })
      }
      if (options.notice !== undefined) datas.push({ _tag: "notice", ...options.notice })
      const entries = datas.map((d, i) => entry(state.record, i, d, at, turn.turnId))
      const status = options.nextStatus ?? "idle"
      const lastTurn: LastTurn = { turn_id: turn.turnId, outcome, ended_at: at }
      const record = revise(state.record, {
        status,
        current_turn_id: undefined,
        last_turn: lastTurn,
        usage: addUsage(state.record.usage, turn.usage, at, 1),
        transcript_length: state.record.transcript_length + entries.length
      }, at)
      const kind = outcome === "completed" ? "turn.completed" as const
        : outcome === "failed" ? "turn.failed" as const
          : outcome === "cancelled" ? "turn.cancelled" as const
            : "turn.interrupted" as const
      const drafts: Array<EventDraft> = [
        ...appendedDrafts(entries),
        {
          worker_id: record.worker_id,
          turn_id: turn.turnId,
          kind,
          data: {
            outcome,
            usage: turn.usage,
            ...(options.reason === undefined ? {} : { reason: options.reason }),
            ...(options.error === undefined ? {} : { error: options.error })
          }
        },
        { worker_id: record.worker_id, kind: "worker.status", data: { status, previous: "running" } }
      ]
      return commit(drafts, { workers: [record], transcript: entries }, () => {
        state.record = record
        state.turn = undefined
      })
    })

  const onEngineEvent = (
    state: WorkerState,
    turn: ActiveTurn,
    /** Text deltas never come here: `onEngineChunk` publishes each run of them as one append. */
    event: Exclude<EngineEvent, { readonly _tag: "TextDelta" }>,
    finish: { reason: string }
  ): Effect.Effect<unknown, RuntimeUnavailable> => {
    const workerId = state.record.worker_id
    switch (event._tag) {
      case "ToolCall": {
        const data = { call_id: event.call_id, name: event.name, arguments: event.arguments }
        return state.lock.withPermits(1)(commitProgress(state, turn, [{ _tag: "tool_call", ...data }], [
          { worker_id: workerId, turn_id: turn.turnId, kind: "turn.tool_call", data }
        ]))
      }
      case "ToolResult": {
        const data = { call_id: event.call_id, name: event.name, result: event.result, is_error: event.is_error }
        return state.lock.withPermits(1)(commitProgress(state, turn, [{ _tag: "tool_result", ...data }], [
          { worker_id: workerId, turn_id: turn.turnId, kind: "turn.tool_result", data }
        ]))
      }
      case "Usage": {
        turn.usage.input_tokens += event.input_tokens
        turn.usage.output_tokens += event.output_tokens
        turn.usage.cached_tokens += event.cached_tokens ?? 0
        return log.append([{
          worker_id: workerId,
          turn_id: turn.turnId,
          kind: "turn.usage",
          data: {
            input_tokens: event.input_tokens,
            output_tokens: event.output_tokens,
            cached_tokens: event.cached_tokens ?? 0
          }
        }], (events) => Effect.mapError(store.commit({ events }), unavailable))
      }
      case "Retry":
        return log.append([{
          worker_id: workerId,
          turn_id: turn.turnId,
          kind: "turn.retry",
          data: { attempt: event.attempt, delay_ms: event.delay_ms, reason: event.reason }
        }])
      case "Finish": {
        finish.reason = event.reason
        return Effect.succeed([])
      }
    }
  }

  /** Handles one chunk of engine events, publishing each run of consecutive text deltas as one append. */
  const onEngineChunk = (
    state: WorkerState,
    turn: ActiveTurn,
    chunk: Chunk.Chunk<EngineEvent>,
    finish: { reason: string }
  ): Effect.Effect<unknown, RuntimeUnavailable> =>
    Effect.suspend(() => {
      const steps: Array<Effect.Effect<unknown, RuntimeUnavailable>> = []
      let deltas: Array<EventDraft> = []
      let text = ""
      const flush = () => {
        if (deltas.length === 0) return
        const drafts = deltas
        const added = text
        // The text joins the turn when its step runs, so a tool call later in the chunk commits only what preceded it.
        steps.push(Effect.suspend(() => {
          turn.text += added
          return log.append(drafts)
        }))
        deltas = []
        text = ""
      }
      for (const event of chunk) {
        if (event._tag === "TextDelta") {
          text += event.text
          deltas.push({
            worker_id: state.record.worker_id,
            turn_id: turn.turnId,
            kind: "turn.delta",
            data: { text: event.text }
          })
        } else {
          flush()
          steps.push(onEngineEvent(state, turn, event, finish))
        }
      }
      flush()
      return steps.length === 1 ? steps[0]! : Effect.forEach(steps, (step) => step, { discard: true })
    })

  const runTurn = (
    state: WorkerState,
    turn: ActiveTurn,
    engine: Engine,
    text: string,
    inputIndex: number
  ): Effect.Effect<void> => {
    const record = state.record
    const spec = record.spec.engine ?? { provider: "echo" }
    const context: TurnContext = {
      runtimeId,
      workerId: record.worker_id,
      turnId: turn.turnId,
      spec,
      systemPrompt: record.spec.system_prompt,
      tools: record.spec.tools ?? [],
      input: text,
      history: (requested) => {
        const limit = Math.max(0, Math.min(requested, config.historyLimit, inputIndex))
        // A store that cannot give the history fails the turn rather than sending the model a blank slate.
        return Effect.orDie(store.transcript(record.worker_id, inputIndex - limit, limit))
      }
    }
    const finish = { reason: "stop" }
    const end = (outcome: TurnOutcome, error?: { _tag: string; code?: string; message: string }) =>
      state.lock.withPermits(1)(
        Effect.suspend(() =>
          state.turn === turn ? finishLocked(state, turn, outcome, { error, reason: finish.reason }) : Effect.void
        )
      )
    return engine.turn(context).pipe(
      Stream.runForEachChunk((chunk) => onEngineChunk(state, turn, chunk, finish)),
      Metrics.trackTurn(spec.provider, turn.usage),
      // A crashing engine ends the turn as failed instead of leaving the worker running forever.
      Effect.catchAllDefect((defect) =>
        Effect.zipRight(
          Effect.logError("the engine died", defect),
          Effect.fail(new EngineError({ code: "engine_defect", message: "the engine failed unexpectedly", cause: defect }))
        )),
      Effect.matchEffect({
        onSuccess: () => end("completed"),
        onFailure: (e) =>
          end("failed", e instanceof EngineError
            ? { _tag: "EngineError", code: e.code, message: e.message }
            : { _tag: e._tag, message: e.message })
      }),
      Effect.catchAllCause((cause) => Effect.logError("turn could not be recorded", cause)),
      Effect.annotateLogs({ worker_id: record.worker_id, turn_id: turn.turnId }),
      Effect.withSpan("Runtime.turn", {
        attributes: { worker_id: record.worker_id, turn_id: turn.turnId, provider: spec.provider }
      })
    )
  }

  /**
   * Interrupts the running turn (if any) and records it as cancelled; holds the worker lock. Uninterruptible: a
   * caller interrupted after the turn's fiber was stopped would leave the worker running with no turn behind it.
   */
  const cancelLocked = (
    state: WorkerState,
    nextStatus: "idle" | "stopped",
    notice?: { readonly code: string; readonly message: string }
  ) =>
    Effect.uninterruptible(Effect.gen(function*() {
      const turn = state.turn
      if (turn === undefined) return undefined
      if (turn.fiber !== undefined) yield* Fiber.interrupt(turn.fiber)
      yield* finishLocked(state, turn, "cancelled", { reason: "cancelled", nextStatus, notice })
      return turn.turnId
    }))

  const startTurnLocked = (state: WorkerState, text: string) =>
    Effect.gen(function*() {
      const record = state.record
      if (record.status === "stopped") return yield* WorkerStopped.of(record.worker_id, "sending input")
      if (record.status === "running" || state.turn !== undefined) {
        return yield* WorkerBusy.of(record.worker_id, record.current_turn_id ?? state.turn?.turnId ?? "unknown")
      }
      if (draining) return yield* new RuntimeUnavailable({ message: "the runtime is shutting down" })
      const provider = record.spec.engine?.provider ?? "echo"
      const engine = engines.get(provider)
      if (Option.isNone(engine)) {
        return yield* new RuntimeUnavailable({
          message: `engine provider ${provider} is not available in this runtime; restart it with that engine`
        })
      }
      const turnId = makeTurnId()
      const at = now()
      const input = entry(record, 0, { _tag: "user_input", text }, at, turnId)
      const next = revise(record, {
        status: "running",
        current_turn_id: turnId,
        transcript_length: record.transcript_length + 1,
        usage: { ...record.usage, last_activity_at: at }
      }, at)
      const turn: ActiveTurn = {
        turnId,
        fiber: undefined,
        text: "",
        usage: { input_tokens: 0, output_tokens: 0, cached_tokens: 0 }
      }
      yield* commit([
        { worker_id: record.worker_id, turn_id: turnId, kind: "turn.started", data: { input_index: input.index } },
        ...appendedDrafts([input]),
        { worker_id: record.worker_id, kind: "worker.status", data: { status: "running", previous: "idle" } }
      ], { workers: [next], transcript: [input] }, () => {
        state.record = next
        state.turn = turn
      }).pipe(
        // A committed turn must get its fiber even if the caller is interrupted now, or the worker stays running.
        Effect.zipRight(
          Effect.forkIn(Effect.interruptible(runTurn(state, turn, engine.value, text, input.index)), runtimeScope)
        ),
        Effect.map((fiber) => {
          turn.fiber = fiber
        }),
        Effect.uninterruptible
      )
      return { turn_id: turnId, worker: view(next) } satisfies InputAccepted
    })

  // --- commands ------------------------------------------------------------------------------------------------

  const sendInput = Effect.fn("Runtime.sendInput")(function*(workerId: string, input: SendInput) {
    const { text } = yield* decodeSendInput(input)
    const state = yield* lookup(workerId)
    // Fast path: a busy worker answers at once instead of queueing behind the turn's lock.
    if (state.turn !== undefined && state.record.current_turn_id !== undefined) {
      return yield* WorkerBusy.of(state.record.worker_id, state.record.current_turn_id)
    }
    return yield* withWorker(workerId, (s) => startTurnLocked(s, text))
  })

  const specKey = (spec: CreateWorker) => Json.canonical({ ...spec, worker_id: undefined })

  const createWorker = Effect.fn("Runtime.createWorker")(function*(raw: CreateWorker) {
    const spec = yield* decodeCreate(raw)
    if (draining) return yield* new RuntimeUnavailable({ message: "the runtime is shutting down" })
    const provider = spec.engine?.provider ?? "echo"
    const engine = engines.get(provider)
    if (Option.isNone(engine)) {
      return yield* new InvalidInput({
        field: "engine.provider",
        message: `unknown engine provider ${JSON.stringify(provider)}; this runtime offers ${engines.providers.join(", ")}`
      })
    }
    if (spec.engine !== undefined) yield* engine.value.validate(spec.engine)
    const unknownTools = (spec.tools ?? []).filter((t) => !engine.value.tools.includes(t))
    if (unknownTools.length > 0) {
      return yield* new InvalidInput({
        field: "tools",
        message: `the ${provider} engine does not offer ${unknownTools.join(", ")}` +
          (engine.value.tools.length > 0 ? ` (it offers ${engine.value.tools.join(", ")})` : " (it offers no tools)")
      })
    }
    return yield* registryLock.withPermits(1)(Effect.gen(function*() {
      const workerId = spec.worker_id ?? makeWorkerId()
      const existing = workers.get(workerId)
      if (existing !== undefined && !existing.deleted) {
        if (specKey(existing.record.spec) === specKey(spec)) {
          return { worker: view(existing.record), created: false } satisfies CreateResult
        }
        return yield* WorkerAlreadyExists.of(workerId)
      }
      // Allocation, record and initial turn in one uninterruptible step under the new worker's lock: an interrupted
      // caller cannot leak the allocation, and no other command can reach the worker before its initial turn.
      return yield* Effect.uninterruptible(Effect.gen(function*() {
        if (spec.scope !== undefined) yield* allocations.allocate(workerId, spec.scope)
        const at = now()
        const record: WorkerRecord = {
          worker_id: workerId,
          spec: { ...spec, worker_id: workerId },
          status: "idle",
          created_at: at,
          updated_at: at,
          current_turn_id: undefined,
          last_turn: undefined,
          usage: emptyUsage,
          transcript_length: 0,
          revision: 1
        }
        const state: WorkerState = { record, lock: Effect.unsafeMakeSemaphore(1), turn: undefined, deleted: false }
        return yield* state.lock.withPermits(1)(Effect.gen(function*() {
          yield* commit(
            [{ worker_id: workerId, kind: "worker.created", data: { worker: view(record) } }],
            { workers: [record] },
            () => workers.set(workerId, state)
          ).pipe(
            Effect.tapError(() =>
              spec.scope === undefined ? Effect.void : Effect.ignore(allocations.release(workerId))
            )
          )
          if (spec.initial_input === undefined) return { worker: view(record), created: true } satisfies CreateResult
          const accepted = yield* startTurnLocked(state, spec.initial_input).pipe(
            Effect.catchTags({ WorkerBusy: (e) => Effect.die(e), WorkerStopped: (e) => Effect.die(e) })
          )
          return { worker: accepted.worker, created: true } satisfies CreateResult
        }))
      }))
    }))
  })

  const cancel = Effect.fn("Runtime.cancel")(function*(workerId: string) {
    return yield* withWorker(workerId, (state) =>
      Effect.map(cancelLocked(state, "idle"), (turnId): CancelResult =>
        turnId === undefined
          ? { cancelled: false, worker: view(state.record) }
          : { cancelled: true, turn_id: turnId, worker: view(state.record) }))
  })

  const stop = Effect.fn("Runtime.stop")(function*(workerId: string) {
    return yield* withWorker(workerId, (state) =>
      Effect.gen(function*() {
        if (state.record.status === "stopped") return view(state.record)
        if (state.turn !== undefined) {
          yield* cancelLocked(state, "stopped")
          return view(state.record)
        }
        const at = now()
        const record = revise(state.record, { status: "stopped" }, at)
        yield* commit([{
          worker_id: workerId,
          kind: "worker.status",
          data: { status: "stopped", previous: state.record.status }
        }], { workers: [record] }, () => {
          state.record = record
        })
        return view(record)
      }))
  })

  const restore = Effect.fn("Runtime.restore")(function*(workerId: string) {
    return yield* withWorker(workerId, (state) =>
      Effect.gen(function*() {
        if (state.record.status !== "stopped") return view(state.record)
        const record = revise(state.record, { status: "idle" }, now())
        yield* commit([{ worker_id: workerId, kind: "worker.status", data: { status: "idle", previous: "stopped" } }], {
          workers: [record]
        }, () => {
          state.record = record
        })
        return view(record)
      }))
  })

  const deleteWorker = Effect.fn("Runtime.delete")(function*(workerId: string) {
    return yield* registryLock.withPermits(1)(withWorker(workerId, (state) =>
      Effect.gen(function*() {
        if (state.record.status !== "stopped") {
          return yield* new WorkerStateConflict({
            worker_id: workerId,
            status: state.record.status,
            message: `worker ${workerId} is ${state.record.status}; stop it before deleting it`
          })
        }
        // Uninterruptible, so a caller interrupted once the delete is committed cannot leak the allocation.
        yield* Effect.uninterruptible(Effect.zipRight(
          commit([{ worker_id: workerId, kind: "worker.deleted", data: { worker_id: workerId } }], {
            deleted: [state.record.worker_id]
          }, () => {
            state.deleted = true
            workers.delete(workerId)
          }),
          state.record.spec.scope === undefined ? Effect.void : allocations.release(workerId).pipe(
            Effect.catchAll((e) => Effect.logWarning("allocation release failed", e))
          )
        ))
        return { worker_id: state.record.worker_id, deleted: true } satisfies DeleteResult
      })))
  })

  // --- queries -------------------------------------------------------------------------------------------------

  const listWorkers = Effect.fn("Runtime.listWorkers")(function*(query?: ListWorkersQuery | null) {
    query = query ?? {}
    const limit = yield* checkLimit(query.limit, 50, WORKER_PAGE_MAX)
    if (query.status !== undefined && !isStatus(query.status)) {
      return yield* new InvalidInput({ field: "status", message: "status must be one of idle, running, stopped" })
    }
    let after: string | undefined
    if (query.page_token !== undefined) {
      after = decodeToken("w", query.page_token)
      if (after === undefined) return yield* new InvalidInput({ field: "page_token", message: "page_token is invalid" })
    }
    const ids = Array.from(workers.keys()).sort()
    const items: Array<Worker> = []
    let next: string | undefined
    for (const id of ids) {
      if (after !== undefined && id <= after) continue
      const state = workers.get(id)!
      if (query.status !== undefined && state.record.status !== query.status) continue
      if (items.length === limit) {
        next = encodeToken("w", items[items.length - 1]!.worker_id)
        break
      }
      items.push(view(state.record))
    }
    return next === undefined ? { items } : { items, next_page_token: next }
  })

  const getWorker = (workerId: string) => Effect.map(lookup(workerId), (s) => view(s.record))

  const transcript = Effect.fn("Runtime.transcript")(function*(workerId: string, query?: TranscriptQuery | null) {
    query = query ?? {}
    const limit = yield* checkLimit(query.limit, 100, TRANSCRIPT_PAGE_MAX)
    let from = 0
    if (query.page_token !== undefined) {
      const decoded = decodeToken("t", query.page_token)
      const index = decoded === undefined ? NaN : Number(decoded)
      if (!Number.isSafeInteger(index) || index < 0) {
        return yield* new InvalidInput({ field: "page_token", message: "page_token is invalid" })
      }
      from = index
    }
    const state = yield* lookup(workerId)
    return yield* log.consistent(Effect.gen(function*() {
      const items = yield* Effect.mapError(store.transcript(state.record.worker_id, from, limit), unavailable)
      const nextIndex = from + items.length
      const page: TranscriptPage = { items, cursor: log.headCursor() }
      return nextIndex < state.record.transcript_length
        ? { ...page, next_page_token: encodeToken("t", String(nextIndex)) }
        : page
    }))
  })

  const counts = () => {
    const c = { idle: 0, running: 0, stopped: 0, total: 0 }
    let usage: Usage = emptyUsage
    for (const state of workers.values()) {
      c[state.record.status] += 1
      c.total += 1
      const u = state.record.usage
      usage = {
        input_tokens: usage.input_tokens + u.input_tokens,
        output_tokens: usage.output_tokens + u.output_tokens,
        cached_tokens: usage.cached_tokens + u.cached_tokens,
        turns: usage.turns + u.turns,
        ...(u.last_activity_at === undefined ||
            (usage.last_activity_at !== undefined && usage.last_activity_at >= u.last_activity_at)
          ? (usage.last_activity_at === undefined ? {} : { last_activity_at: usage.last_activity_at })
          : { last_activity_at: u.last_activity_at })
      }
    }
    return { counts: c, usage }
  }

  const summary = Effect.sync((): RuntimeSummary => {
    const { counts: c, usage } = counts()
    return {
      runtime_id: runtimeId,
      display_name: config.displayName,
      version: VERSION,
      status: draining ? "draining" : "ready",
      started_at: startedAt,
      capabilities: {
        engines: engines.providers,
        tools: engines.tools,
        durable: store.durable,
        event_replay: true,
        allocations: true
      },
      counts: c,
      usage,
      store: store.kind,
      limits: {
        transcript_page_max: TRANSCRIPT_PAGE_MAX,
        worker_page_max: WORKER_PAGE_MAX,
        event_backlog: config.eventBacklog,
        subscriber_buffer: config.subscriberBuffer,
        max_input_chars: MAX_INPUT_CHARS
      },
      cursor: log.headCursor()
    }
  })

  const usage = Effect.fn("Runtime.usage")(function*(options: { readonly limit?: number | undefined } = {}) {
    const limit = yield* checkLimit(options.limit, 50, WORKER_PAGE_MAX)
    const total = (u: Usage) => u.input_tokens + u.output_tokens
    const top = Array.from(workers.values())
      .map((s) => s.record)
      .sort((a, b) => total(b.usage) - total(a.usage) || (a.worker_id < b.worker_id ? -1 : 1))
      .slice(0, limit)
      .map((r) => ({ worker_id: r.worker_id, display_name: r.spec.display_name, usage: r.usage }))
    return { runtime_id: runtimeId, totals: counts().usage, workers: top } satisfies UsageOverview
  })

  const diagnostics = Effect.fn("Runtime.diagnostics")(function*(
    options: { readonly limit?: number | undefined } = {}
  ) {
    const limit = yield* checkLimit(options.limit, 100, 1000)
    return yield* Effect.mapError(store.diagnostics(limit), unavailable)
  })

  const subscribe = (query?: SubscribeQuery | null) =>
    Effect.gen(function*() {
      query = query ?? {}
      if (query.worker_id !== undefined) yield* lookup(query.worker_id)
      const unknownKind = (query.kinds ?? []).find((k) => !isKind(k))
      if (unknownKind !== undefined) {
        return yield* new InvalidInput({ field: "kinds", message: `unknown event kind ${JSON.stringify(unknownKind)}` })
      }
      return yield* log.subscribe({ cursor: query.cursor, workerId: query.worker_id, kinds: query.kinds })
    })

  const drain = (graceMs: number) =>
    Effect.gen(function*() {
      draining = true
      const fibers = Array.from(workers.values()).flatMap((s) => (s.turn?.fiber === undefined ? [] : [s.turn.fiber]))
      // Interruptible, so the grace period also ends the wait when drain runs inside a finalizer.
      yield* Effect.interruptible(Fiber.awaitAll(fibers)).pipe(Effect.timeout(graceMs), Effect.ignore)
      // Every worker, under its lock: a turn whose start was being committed when drain began is running by then.
      yield* Effect.forEach(Array.from(workers.values()), (state) =>
        state.lock.withPermits(1)(cancelLocked(state, "idle", {
          code: "runtime_shutdown",
          message: "the runtime shut down before the turn finished"
        })).pipe(Effect.catchAll((e) => Effect.logWarning("could not record a cancelled turn at shutdown", e))),
      { discard: true })
    })

  // --- recovery ------------------------------------------------------------------------------------------------

  const records = yield* store.loadWorkers
  const interrupted: Array<WorkerState> = []
  for (const record of records) {
    const state: WorkerState = { record, lock: Effect.unsafeMakeSemaphore(1), turn: undefined, deleted: false }
    workers.set(record.worker_id, state)
    if (record.status === "running") interrupted.push(state)
    if (record.spec.scope !== undefined) {
      const held = yield* allocations.get(record.worker_id).pipe(Effect.orElseSucceed(() => Option.none()))
      if (Option.isNone(held)) {
        yield* allocations.allocate(record.worker_id, record.spec.scope).pipe(
          Effect.catchAll((e) =>
            store.addDiagnostic({
              severity: "warning",
              code: "allocation_not_restored",
              message: `the scope of worker ${record.worker_id} could not be re-allocated: ${e.message}`,
              worker_id: record.worker_id
            }))
        )
      }
    }
  }
  for (const state of interrupted) {
    const turnId = state.record.current_turn_id ?? makeTurnId()
    const turn: ActiveTurn = {
      turnId,
      fiber: undefined,
      text: "",
      usage: { input_tokens: 0, output_tokens: 0, cached_tokens: 0 }
    }
    state.turn = turn
    yield* finishLocked(state, turn, "interrupted", {
      reason: "interrupted",
      notice: {
        code: "turn_interrupted",
        message: "the runtime stopped while this turn was running; the turn was not completed"
      }
    }).pipe(Effect.catchAll((e) => Effect.logError("could not record an interrupted turn", e)))
  }

  return {
    runtimeId,
    summary,
    listWorkers,
    getWorker,
    createWorker,
    sendInput,
    cancel,
    stop,
    restore,
    delete: deleteWorker,
    transcript,
    usage,
    diagnostics,
    subscribe,
    headCursor: Effect.sync(() => log.headCursor()),
    drain,
    isDraining: Effect.sync(() => draining)
  } satisfies RuntimeService
})

/** The Runtime over whatever store, allocation registry and engines are provided. */
export const layer: Layer.Layer<
  Runtime,
  StoreError,
  RuntimeConfig | WorkerStore | EventLog | AllocationRegistry | Engines
> = Layer.scoped(Runtime, make)
