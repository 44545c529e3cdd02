import { type Chunk, Deferred, Effect, Either, Fiber, type Scope, Stream } from "effect"
import type {
  EngineSpec,
  InputAccepted,
  InputQueued,
  LastTurn,
  QueuedInput,
  TranscriptEntryData,
  TurnOutcome,
  Worker,
  WorkerRecord
} from "../Domain.js"
import { type EngineEvent, EngineError, type TurnContext } from "../Engine.js"
import { QueueFull, RuntimeUnavailable, WorkerBusy, WorkerStopped } from "../Errors.js"
import { type EventDraft, EventLog } from "../EventLog.js"
import { IdGenerator, makeInputId, type TurnId } from "../Ids.js"
import * as Metrics from "../Metrics.js"
import type { RuntimeConfigShape } from "../Runtime.js"
import { WorkerStore } from "../WorkerStore.js"
import type { Admission } from "./admission.js"
import { addUsage, appendedDrafts, type Committer, revise, unavailable } from "./commit.js"
import {
  type ActiveTurn,
  newEnded,
  rememberOutcome,
  type WorkerState,
  type WorkerTable
} from "./workerTable.js"

/**
 * The turn state machine: a turn starts (input committed, worker running, fiber forked), streams engine events
 * (deltas published in runs, tool calls and results committed as they come), and ends exactly once as completed,
 * failed, cancelled or interrupted, which commits the partial text, the usage and the worker's next status.
 */
export interface Turns {
  /** Starts a turn on an idle worker (for a queued input: taking it out of the queue in the same commit). */
  readonly startTurnLocked: (
    state: WorkerState,
    text: string,
    from?: QueuedInput
  ) => Effect.Effect<InputAccepted, WorkerStopped | WorkerBusy | RuntimeUnavailable>
  /**
   * Starts the head of the queue if the worker is idle, not stopped and the runtime not draining; holds the worker
   * lock. Never fails: a turn that cannot start leaves its input queued (and logged).
   */
  readonly startNextLocked: (state: WorkerState) => Effect.Effect<void>
  /** Appends an input to a busy worker's queue, or `QueueFull`; holds the worker lock. */
  readonly enqueueLocked: (
    state: WorkerState,
    text: string
  ) => Effect.Effect<InputQueued, QueueFull | RuntimeUnavailable>
  /**
   * Interrupts the running turn (if any) and records it as cancelled; holds the worker lock. Returns the turn
   * cancelled, if there was one.
   */
  readonly cancelLocked: (
    state: WorkerState,
    nextStatus: "idle" | "stopped",
    notice?: { readonly code: string; readonly message: string },
    reason?: string
  ) => Effect.Effect<TurnId | undefined, RuntimeUnavailable>
  /** Ends the active turn; holds the worker lock. */
  readonly finishLocked: (
    state: WorkerState,
    turn: ActiveTurn,
    outcome: TurnOutcome,
    options?: FinishOptions
  ) => Effect.Effect<unknown, RuntimeUnavailable>
}

export interface FinishOptions {
  readonly error?: { readonly _tag: string; readonly code?: string; readonly message: string } | undefined
  readonly reason?: string | undefined
  readonly notice?: { readonly code: string; readonly message: string } | undefined
  readonly nextStatus?: "idle" | "stopped" | undefined
}

export const newTurn = (turnId: TurnId): ActiveTurn => ({
  turnId,
  fiber: undefined,
  text: "",
  usage: { input_tokens: 0, output_tokens: 0, cached_tokens: 0 },
  ended: newEnded()
})

export const make = (options: {
  readonly config: RuntimeConfigShape
  readonly runtimeScope: Scope.Scope
  readonly table: WorkerTable
  readonly committer: Committer
  readonly admission: Admission
  readonly toWorker: (r: WorkerRecord) => Worker
}): Effect.Effect<Turns, never, WorkerStore | EventLog> =>
  Effect.gen(function*() {
    const { admission, committer, config, runtimeScope, table, toWorker } = options
    const { commit, entry, now } = committer
    const { resolveEngine } = admission
    const store = yield* WorkerStore
    const log = yield* EventLog
    const ids = yield* IdGenerator
    const runtimeId = config.runtimeId

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
      options: FinishOptions = {}
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
          rememberOutcome(state, turn.turnId, outcome)
        }).pipe(Effect.tap(() => Deferred.succeed(turn.ended, outcome)))
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
          // The text joins the turn when its step runs, so a tool call later in the chunk commits only what
          // preceded it.
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
      text: string,
      inputIndex: number
    ): Effect.Effect<void> => {
      const record = state.record
      const resolved = resolveEngine(record.spec.engine)
      const spec: EngineSpec = Either.isRight(resolved) ? resolved.right.spec : { provider: "unavailable" }
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
      // The next queued input starts under the same hold of the lock, so no other input slips in between.
      const end = (outcome: TurnOutcome, error?: { _tag: string; code?: string; message: string }) =>
        state.lock.withPermits(1)(
          Effect.suspend(() =>
            state.turn === turn
              ? Effect.zipRight(
                finishLocked(state, turn, outcome, { error, reason: finish.reason }),
                startNextLocked(state)
              )
              : Effect.void
          )
        )
      const events: Stream.Stream<EngineEvent, EngineError> = Either.match(resolved, {
        onLeft: (error) => Stream.fail(error),
        onRight: ({ engine }) => engine.turn(context)
      })
      return events.pipe(
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
      notice?: { readonly code: string; readonly message: string },
      reason = "cancelled"
    ) =>
      Effect.uninterruptible(Effect.gen(function*() {
        const turn = state.turn
        if (turn === undefined) return undefined
        if (turn.fiber !== undefined) yield* Fiber.interrupt(turn.fiber)
        yield* finishLocked(state, turn, "cancelled", { reason, nextStatus, notice })
        return turn.turnId
      }))

    const startNextLocked = (state: WorkerState): Effect.Effect<void> =>
      Effect.suspend(() => {
        const head = state.queue[0]
        if (
          head === undefined || state.deleted || state.turn !== undefined || state.record.status !== "idle" ||
          table.draining
        ) return Effect.void
        return startTurnLocked(state, head.text, head).pipe(
          Effect.asVoid,
          Effect.catchAll((e) => Effect.logWarning(`queued input ${head.input_id} could not start`, e)),
          Effect.uninterruptible
        )
      })

    const enqueueLocked = (state: WorkerState, text: string) =>
      Effect.gen(function*() {
        const record = state.record
        if (state.queue.length >= config.queueLimit) return yield* QueueFull.of(record.worker_id, config.queueLimit)
        const at = now()
        const queued: QueuedInput = {
          input_id: (ids.inputId ?? makeInputId)(),
          worker_id: record.worker_id,
          text,
          queued_at: at,
          seq: (state.queue[state.queue.length - 1]?.seq ?? 0) + 1
        }
        const position = state.queue.length + 1
        yield* commit([{
          worker_id: record.worker_id,
          kind: "input.queued",
          data: { input_id: queued.input_id, position, queued_at: at }
        }], { queued: [queued] }, () => {
          state.queue = [...state.queue, queued]
        })
        const worker = toWorker(state.record)
        return { queued: true, input_id: queued.input_id, position, worker } satisfies InputQueued
      })

    const startTurnLocked = (state: WorkerState, text: string, from?: QueuedInput) =>
      Effect.gen(function*() {
        const record = state.record
        if (record.status === "stopped") return yield* WorkerStopped.of(record.worker_id, "sending input")
        if (record.status === "running" || state.turn !== undefined) {
          return yield* WorkerBusy.of(record.worker_id, record.current_turn_id ?? state.turn?.turnId ?? "unknown")
        }
        if (table.draining) return yield* new RuntimeUnavailable({ message: "the runtime is shutting down" })
        const turnId = ids.turnId()
        const at = now()
        const input = entry(record, 0, { _tag: "user_input", text }, at, turnId)
        const next = revise(record, {
          status: "running",
          current_turn_id: turnId,
          transcript_length: record.transcript_length + 1,
          usage: { ...record.usage, last_activity_at: at }
        }, at)
        const turn: ActiveTurn = newTurn(turnId)
        const dequeued: Array<EventDraft> = from === undefined ? [] : [{
          worker_id: record.worker_id,
          kind: "input.dequeued",
          data: { input_id: from.input_id, reason: "started", turn_id: turnId }
        }]
        yield* commit([
          ...dequeued,
          {
            worker_id: record.worker_id,
            turn_id: turnId,
            kind: "turn.started",
            data: from === undefined
              ? { input_index: input.index }
              : { input_index: input.index, input_id: from.input_id }
          },
          ...appendedDrafts([input]),
          { worker_id: record.worker_id, kind: "worker.status", data: { status: "running", previous: "idle" } }
        ], {
          workers: [next],
          transcript: [input],
          ...(from === undefined ? {} : { unqueued: [from.input_id] })
        }, () => {
          state.record = next
          state.turn = turn
          if (from !== undefined) state.queue = state.queue.filter((q) => q.input_id !== from.input_id)
        }).pipe(
          // A committed turn must get its fiber even if the caller is interrupted now, or the worker stays running.
          Effect.zipRight(
            Effect.forkIn(Effect.interruptible(runTurn(state, turn, text, input.index)), runtimeScope)
          ),
          Effect.map((fiber) => {
            turn.fiber = fiber
          }),
          Effect.uninterruptible
        )
        return { turn_id: turnId, worker: toWorker(next) } satisfies InputAccepted
      })

    return { startTurnLocked, startNextLocked, enqueueLocked, cancelLocked, finishLocked }
  })
