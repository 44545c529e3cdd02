import { Effect } from "effect"
import {
  type Diagnostic,
  emptyUsage,
  type RuntimeSummary,
  type TranscriptPage,
  type Usage,
  type UsageOverview,
  type Worker,
  type WorkerPage,
  type WorkerRecord
} from "../Domain.js"
import { Engines } from "../Engine.js"
import { InvalidInput, type RuntimeUnavailable, type WorkerNotFound } from "../Errors.js"
import { EventLog } from "../EventLog.js"
import * as Profiles from "../Profiles.js"
import type { ListWorkersQuery, RuntimeConfigShape, TranscriptQuery } from "../Runtime.js"
import { WorkerStore } from "../WorkerStore.js"
import type { Admission } from "./admission.js"
import { unavailable } from "./commit.js"
import {
  checkLimit,
  decodeToken,
  encodeToken,
  isStatus,
  MAX_INPUT_CHARS,
  TRANSCRIPT_PAGE_MAX,
  WORKER_PAGE_MAX
} from "./inputChecks.js"
import type { WorkerTable } from "./workerTable.js"

/** What the runtime answers about its workers: a worker as clients see it, pages, totals, the summary. */
export interface ReadModels {
  readonly toWorker: (r: WorkerRecord) => Worker
  readonly listWorkers: (query?: ListWorkersQuery | null) => Effect.Effect<WorkerPage, InvalidInput>
  readonly getWorker: (workerId: string) => Effect.Effect<Worker, WorkerNotFound | InvalidInput>
  readonly transcript: (
    workerId: string,
    query?: TranscriptQuery | null
  ) => Effect.Effect<TranscriptPage, WorkerNotFound | InvalidInput | RuntimeUnavailable>
  readonly summary: Effect.Effect<RuntimeSummary>
  readonly usage: (options?: { readonly limit?: number | undefined }) => Effect.Effect<UsageOverview, InvalidInput>
  readonly diagnostics: (
    options?: { readonly limit?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<Diagnostic>, InvalidInput | RuntimeUnavailable>
}

export const make = (options: {
  readonly config: RuntimeConfigShape
  readonly version: string
  readonly startedAt: string
  readonly table: WorkerTable
  readonly admission: Admission
}): Effect.Effect<ReadModels, never, WorkerStore | EventLog | Engines> =>
  Effect.gen(function*() {
    const { admission, config, startedAt, table } = options
    const { lookup, workers } = table
    const { defaultProfile, engineView, profileViews, scopeRoots } = admission
    const store = yield* WorkerStore
    const log = yield* EventLog
    const engines = yield* Engines
    const runtimeId = config.runtimeId

    const toWorker = (r: WorkerRecord): Worker => {
      const w: { -readonly [K in keyof Worker]: Worker[K] } = {
        runtime_id: runtimeId,
        worker_id: r.worker_id,
        display_name: r.spec.display_name,
        display_ref: `${r.spec.display_name}@${runtimeId}`,
        status: r.status,
        engine: engineView(r.spec.engine),
        tools: r.spec.tools ?? [],
        created_at: r.created_at,
        updated_at: r.updated_at,
        usage: r.usage,
        transcript_length: r.transcript_length,
        queue_length: workers.get(r.worker_id)?.queue.length ?? 0
      }
      if (r.spec.scope !== undefined) w.scope = r.spec.scope
      if (r.spec.metadata !== undefined) w.metadata = r.spec.metadata
      if (r.current_turn_id !== undefined) w.current_turn_id = r.current_turn_id
      if (r.last_turn !== undefined) w.last_turn = r.last_turn
      return w
    }

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
        if (query.workspace !== undefined && state.record.spec.metadata?.["yoi.workspace"] !== query.workspace) continue
        if (items.length === limit) {
          next = encodeToken("w", items[items.length - 1]!.worker_id)
          break
        }
        items.push(toWorker(state.record))
      }
      return next === undefined ? { items } : { items, next_page_token: next }
    })

    const getWorker = (workerId: string) => Effect.map(lookup(workerId), (s) => toWorker(s.record))

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

    const summary = Effect.gen(function*() {
      const profileList = yield* profileViews
      const { counts: c, usage } = counts()
      return {
        runtime_id: runtimeId,
        display_name: config.displayName,
        version: options.version,
        status: table.draining ? "draining" : "ready",
        started_at: startedAt,
        capabilities: {
          kind: config.kind,
          engines: engines.providers,
          profiles: profileList,
          default_profile: defaultProfile,
          tools: config.tools,
          scopes: Profiles.widestAccess(scopeRoots),
          shell: false,
          git: false,
          worktree: false,
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
      } satisfies RuntimeSummary
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

    return { toWorker, listWorkers, getWorker, transcript, summary, usage, diagnostics }
  })
