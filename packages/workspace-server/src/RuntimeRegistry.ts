import { Domain, Runtime } from "@yoi/worker-runtime"
import { Cause, Context, Duration, Effect, Exit, Layer, Option } from "effect"
import { Audit, type AuditService } from "./Audit.js"
import type { CallerShape } from "./Auth.js"
import * as Errors from "@yoi/backend-api/Errors"
import { mapRuntimeError } from "./internal/upstream.js"
import { Policy, type PolicyService } from "./Policy.js"
import type { ListWorkersQuery, RuntimeHandle, TranscriptQuery } from "./RuntimeHandle.js"
import type * as Views from "@yoi/backend-api/Views"
import * as Workspace from "./Workspace.js"

/**
 * The Backend's registry of runtimes. It is not a runtime: it holds runtime handles (embedded, remote, legacy pods),
 * routes each operation by `runtime_id` + `worker_id`, and adds visibility and command policy, the audit trail and
 * error mapping. Every method takes the caller explicitly.
 */
export interface RuntimeRegistryService {
  readonly list: (caller: CallerShape) => Effect.Effect<Views.RuntimeList>
  readonly get: (caller: CallerShape, runtimeId: string) => Effect.Effect<Views.RuntimeView, Errors.RuntimeNotFound>
  /** The handle of a visible runtime. */
  readonly handle: (caller: CallerShape, runtimeId: string) => Effect.Effect<RuntimeHandle, Errors.RuntimeNotFound>
  /** Every visible handle, in registration order. */
  readonly handles: (caller: CallerShape) => ReadonlyArray<RuntimeHandle>
  readonly listWorkers: (
    caller: CallerShape,
    runtimeId: string,
    query: ListWorkersQuery
  ) => Effect.Effect<Views.WorkerPage, Errors.RouteError>
  readonly getWorker: (
    caller: CallerShape,
    runtimeId: string,
    workerId: string
  ) => Effect.Effect<Views.WorkerView, Errors.RouteError>
  readonly transcript: (
    caller: CallerShape,
    runtimeId: string,
    workerId: string,
    query: TranscriptQuery
  ) => Effect.Effect<Views.TranscriptPage, Errors.RouteError>
  /** `body` is read inside the command, so that an unreadable body is audited like any other failure. */
  readonly createWorker: (
    caller: CallerShape,
    runtimeId: string,
    body: Body
  ) => Effect.Effect<Views.CreateResult, Errors.RouteError | Errors.PayloadTooLarge>
  readonly sendInput: (
    caller: CallerShape,
    runtimeId: string,
    workerId: string,
    body: Body
  ) => Effect.Effect<Views.InputResult, Errors.RouteError | Errors.PayloadTooLarge>
  /** `turn_id` cancels that turn only; `wait_ms` waits at most that long for its end. */
  readonly cancel: (
    caller: CallerShape,
    runtimeId: string,
    workerId: string,
    options?: { readonly turn_id?: string | undefined; readonly wait_ms?: number | undefined }
  ) => Effect.Effect<Views.CancelResult, Errors.RouteError>
  readonly queue: (
    caller: CallerShape,
    runtimeId: string,
    workerId: string
  ) => Effect.Effect<Views.WorkerQueue, Errors.RouteError>
  /** One queued input, or every one without `inputId`; audited as `cancel`. */
  readonly cancelQueued: (
    caller: CallerShape,
    runtimeId: string,
    workerId: string,
    inputId?: string
  ) => Effect.Effect<Views.QueueCancelled, Errors.RouteError>
  readonly stop: (
    caller: CallerShape,
    runtimeId: string,
    workerId: string
  ) => Effect.Effect<Views.WorkerView, Errors.RouteError>
  readonly restore: (
    caller: CallerShape,
    runtimeId: string,
    workerId: string
  ) => Effect.Effect<Views.WorkerView, Errors.RouteError>
  readonly delete: (
    caller: CallerShape,
    runtimeId: string,
    workerId: string
  ) => Effect.Effect<Views.DeleteResult, Errors.RouteError>
  /** `GET /api/workers`: all workers of all visible runtimes, legacy pods included; a slow runtime is cut off. */
  readonly allWorkers: (caller: CallerShape) => Effect.Effect<Views.AllWorkers>
  /** `GET /api/hosts`: the older host listing, one host per visible runtime. */
  readonly hosts: (caller: CallerShape) => Effect.Effect<Views.HostList>
}

/** A request body, read on demand. */
export type Body = Effect.Effect<unknown, Errors.InvalidInput | Errors.PayloadTooLarge>

export class RuntimeRegistry extends Context.Tag("@yoi/workspace-server/RuntimeRegistry")<
  RuntimeRegistry,
  RuntimeRegistryService
>() {}

/** The set of runtime handles the registry routes to; built from config (see `Runtimes.ts`) or given by tests. */
export class RuntimeHandles extends Context.Tag("@yoi/workspace-server/RuntimeHandles")<
  RuntimeHandles,
  ReadonlyArray<RuntimeHandle>
>() {}

export interface RegistryOptions {
  /** How long `GET /api/workers` waits for one runtime before naming it unavailable. */
  readonly listingTimeout?: Duration.DurationInput | undefined
  /** At most this many workers per runtime in `GET /api/workers`. */
  readonly listingMax?: number | undefined
  /** Stamped on every worker this Backend creates (`Workspace.WORKSPACE_KEY`). Default `default`. */
  readonly workspaceId?: string | undefined
}

const decodeCreate = Runtime.decodeCreate
const decodeSendInput = Runtime.decodeInput(Domain.SendInput)

const problem = (runtimeId: string, e: { readonly _tag: string; readonly message: string }): Views.RuntimeProblem => ({
  runtime_id: runtimeId,
  _tag: e._tag,
  message: e.message
})

export const make = (
  handleList: ReadonlyArray<RuntimeHandle>,
  policy: PolicyService,
  audit: AuditService,
  options: RegistryOptions = {}
): RuntimeRegistryService => {
  const byId = new Map(handleList.map((h) => [h.runtimeId, h] as const))
  const listingTimeout = options.listingTimeout ?? Duration.seconds(5)
  const listingMax = options.listingMax ?? 5_000
  const workspaceId = options.workspaceId ?? "default"

  const handle = (caller: CallerShape, runtimeId: string) => {
    const found = byId.get(runtimeId)
    return found === undefined || !policy.visible(caller, runtimeId)
      ? Effect.fail(Errors.RuntimeNotFound.of(runtimeId))
      : Effect.succeed(found)
  }

  const handles = (caller: CallerShape) => handleList.filter((h) => policy.visible(caller, h.runtimeId))

  const view = (h: RuntimeHandle): Effect.Effect<Views.RuntimeView> =>
    Effect.map(h.describe, (d) => ({ ...d, read_only: h.kind === "legacy" || policy.readOnly(h.runtimeId) }))

  const onHandle = <A>(
    caller: CallerShape,
    runtimeId: string,
    f: (h: RuntimeHandle) => Effect.Effect<A, Errors.HandleError>
  ): Effect.Effect<A, Errors.RouteError> => Effect.flatMap(handle(caller, runtimeId), f)

  /**
   * Runs a command: route, policy, then the handle; writes one audit record whatever the outcome, and answers only
   * once that record is committed (an interrupted command is still recorded).
   */
  const command = <A, E extends { readonly _tag: string } = never>(
    caller: CallerShape,
    runtimeId: string,
    action: Views.AuditAction,
    workerId: string | undefined,
    f: (h: RuntimeHandle) => Effect.Effect<A, Errors.HandleError | E>,
    resultWorkerId: (a: A) => string | undefined = () => workerId,
    failedWorkerId: () => string | undefined = () => workerId
  ): Effect.Effect<A, Errors.RouteError | E> =>
    Effect.flatMap(handle(caller, runtimeId), (h) =>
      Effect.zipRight(policy.authorize(caller, runtimeId, action), f(h))).pipe(
      Effect.onExit((exit) => {
        const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
        const errorTag = Exit.isSuccess(exit)
          ? undefined
          : error?._tag ?? (Cause.isInterruptedOnly(exit.cause) ? "Interrupted" : "InternalError")
        return audit.record({
          actor: caller.actor,
          runtime_id: runtimeId,
          worker_id: Exit.isSuccess(exit) ? resultWorkerId(exit.value) : failedWorkerId(),
          action,
          outcome: Exit.isSuccess(exit) ? "ok" : errorTag === "Forbidden" ? "denied" : "failed",
          error_tag: errorTag,
          request_id: caller.requestId
        })
      })
    )

  const decoded = <A>(effect: Effect.Effect<A, { readonly _tag: string }>, runtimeId: string) =>
    Effect.mapError(effect, (e) => mapRuntimeError(runtimeId, e))

  const allWorkersOf = (h: RuntimeHandle): Effect.Effect<ReadonlyArray<Views.WorkerView>, Errors.HandleError> =>
    Effect.gen(function*() {
      const items: Array<Views.WorkerView> = []
      let token: string | undefined
      do {
        const page: Views.WorkerPage = yield* h.listWorkers({ limit: 500, page_token: token })
        items.push(...page.items)
        token = page.next_page_token
      } while (token !== undefined && items.length < listingMax)
      return items.slice(0, listingMax)
    })

  return {
    list: (caller) =>
      Effect.map(Effect.forEach(handles(caller), view, { concurrency: "unbounded" }), (items) => ({ items })),
    get: (caller, runtimeId) => Effect.flatMap(handle(caller, runtimeId), view),
    handle,
    handles,
    listWorkers: (caller, runtimeId, query) => onHandle(caller, runtimeId, (h) => h.listWorkers(query)),
    getWorker: (caller, runtimeId, workerId) => onHandle(caller, runtimeId, (h) => h.getWorker(workerId)),
    transcript: (caller, runtimeId, workerId, query) =>
      onHandle(caller, runtimeId, (h) => h.transcript(workerId, query)),
    createWorker: (caller, runtimeId, body) => {
      let requested: string | undefined
      return command(
        caller,
        runtimeId,
        "create",
        undefined,
        (h) =>
          body.pipe(
            Effect.tap((raw) => {
              const id = typeof raw === "object" && raw !== null ? (raw as { worker_id?: unknown }).worker_id : undefined
              if (typeof id === "string") requested = id.slice(0, 200)
            }),
            Effect.flatMap((raw) => decoded(decodeCreate(raw), runtimeId)),
            Effect.tap((spec) => Workspace.checkMetadata(spec.metadata)),
            Effect.tap((spec) => policy.authorizeCreate(caller, runtimeId, spec)),
            Effect.flatMap((spec) => h.createWorker(Workspace.stamp(spec, workspaceId)))
          ),
        (result) => result.worker.worker_id,
        () => requested
      )
    },
    sendInput: (caller, runtimeId, workerId, body) =>
      command(caller, runtimeId, "input", workerId, (h) =>
        body.pipe(
          Effect.flatMap((raw) => decoded(decodeSendInput(raw), runtimeId)),
          Effect.flatMap((input) => h.sendInput(workerId, input))
        )),
    cancel: (caller, runtimeId, workerId, options) =>
      command(caller, runtimeId, "cancel", workerId, (h) => h.cancel(workerId, options)),
    queue: (caller, runtimeId, workerId) => onHandle(caller, runtimeId, (h) => h.queue(workerId)),
    cancelQueued: (caller, runtimeId, workerId, inputId) =>
      command(caller, runtimeId, "cancel", workerId, (h) => h.cancelQueued(workerId, inputId)),
    stop: (caller, runtimeId, workerId) => command(caller, runtimeId, "stop", workerId, (h) => h.stop(workerId)),
    restore: (caller, runtimeId, workerId) =>
      command(caller, runtimeId, "restore", workerId, (h) => h.restore(workerId)),
    delete: (caller, runtimeId, workerId) => command(caller, runtimeId, "delete", workerId, (h) => h.delete(workerId)),
    allWorkers: (caller) =>
      Effect.gen(function*() {
        const results = yield* Effect.forEach(handles(caller), (h) =>
          allWorkersOf(h).pipe(
            Effect.timeoutFail({
              duration: listingTimeout,
              onTimeout: () =>
                new Errors.UpstreamTimeout({
                  runtime_id: h.runtimeId,
                  timeout_ms: Duration.toMillis(listingTimeout),
                  message: `runtime ${h.runtimeId} did not list its workers in time`
                })
            }),
            Effect.either
          ), { concurrency: "unbounded" })
        const items: Array<Views.WorkerView> = []
        const unavailable: Array<Views.RuntimeProblem> = []
        results.forEach((result, i) => {
          if (result._tag === "Right") items.push(...result.right)
          else unavailable.push(problem(handles(caller)[i]!.runtimeId, result.left))
        })
        return { items, unavailable }
      }),
    hosts: (caller) =>
      Effect.map(Effect.forEach(handles(caller), view, { concurrency: "unbounded" }), (views) => ({
        items: views.map((v): Views.HostView => ({
          host_id: v.runtime_id,
          runtime_id: v.runtime_id,
          display_name: v.display_name,
          kind: v.kind,
          compatibility: v.compatibility,
          status: v.status,
          ...(v.last_seen_at === undefined ? {} : { last_seen_at: v.last_seen_at }),
          ...(v.counts === undefined ? {} : { worker_count: v.counts.total })
        }))
      }))
  }
}

export const layer = (
  options: RegistryOptions = {}
): Layer.Layer<RuntimeRegistry, never, RuntimeHandles | Policy | Audit> =>
  Layer.effect(
    RuntimeRegistry,
    Effect.gen(function*() {
      return make(yield* RuntimeHandles, yield* Policy, yield* Audit, options)
    })
  )
