import { HttpApiClient, HttpClient, HttpClientError, HttpClientRequest } from "@effect/platform"
import { RuntimeClient, RuntimeEvents, type EventFollower } from "@yoi/runtime-api"
import { type Domain, Ids } from "@yoi/worker-runtime"
import { Context, Duration, Effect, Layer, Option, Redacted, Stream } from "effect"
import { BrowserApi } from "./BackendApi.js"
import { type CliError, fromClientError, UsageError } from "./Errors.js"
import type { Target } from "./Settings.js"

/** A worker's address: `runtime_id/worker_id`. */
export interface WorkerRef {
  readonly runtime: string
  readonly worker: string
}

/** A runtime as `yoi runtimes` lists it: the Backend's view, or a runtime's own summary in the same shape. */
export interface RuntimeRow {
  readonly runtime_id: string
  readonly display_name: string
  readonly kind: string
  readonly status: string
  readonly status_reason?: string | undefined
  readonly counts?: Domain.StatusCounts | undefined
  readonly summary?: Domain.RuntimeSummary | undefined
}

export interface CreateOptions {
  readonly workerId: Option.Option<string>
  readonly name: string
  readonly profile: Option.Option<string>
}

export interface Page<A> {
  readonly items: ReadonlyArray<A>
  readonly next_page_token?: string | undefined
}

export interface TranscriptResult {
  readonly items: ReadonlyArray<Domain.TranscriptEntry>
  readonly cursor: string
  readonly next_page_token?: string | undefined
}

export interface FollowScope {
  readonly runtime?: string | undefined
  readonly worker?: WorkerRef | undefined
  readonly cursor?: string | undefined
  /** Reconnect attempts before giving up; default 20. */
  readonly maxRetries?: number | undefined
}

/** The commands of `yoi`, over the Backend's derived client or a runtime's, with errors already in CLI terms. */
export interface RemoteService {
  readonly target: Target
  readonly runtimes: Effect.Effect<ReadonlyArray<RuntimeRow>, CliError>
  readonly workers: (
    runtime: Option.Option<string>,
    status: Option.Option<string>
  ) => Effect.Effect<ReadonlyArray<Domain.Worker>, CliError>
  readonly create: (runtime: string, options: CreateOptions) => Effect.Effect<Domain.CreateResult, CliError>
  readonly get: (ref: WorkerRef) => Effect.Effect<Domain.Worker, CliError>
  /** Without `busy` (the default `reject`) an accepted input always starts a turn. */
  readonly input: (
    ref: WorkerRef,
    text: string,
    busy?: Domain.BusyPolicy
  ) => Effect.Effect<Domain.InputResult, CliError>
  readonly cancel: (ref: WorkerRef) => Effect.Effect<Domain.CancelResult, CliError>
  readonly stop: (ref: WorkerRef) => Effect.Effect<Domain.Worker, CliError>
  readonly restore: (ref: WorkerRef) => Effect.Effect<Domain.Worker, CliError>
  readonly delete: (ref: WorkerRef) => Effect.Effect<Domain.DeleteResult, CliError>
  readonly transcript: (
    ref: WorkerRef,
    options: { readonly all: boolean; readonly limit?: number | undefined }
  ) => Effect.Effect<TranscriptResult, CliError>
  readonly audit: (limit: Option.Option<number>) => Effect.Effect<Page<unknown>, CliError>
  /** Follows events (all, one runtime's or one worker's) with reconnect and resume. */
  readonly follow: (scope: FollowScope) => Effect.Effect<EventFollower, CliError>
}

export class Remote extends Context.Tag("@yoi/cli/Remote")<Remote, RemoteService>() {}

const withTimeout = (timeout: Duration.Duration) => (client: HttpClient.HttpClient): HttpClient.HttpClient =>
  HttpClient.transform(client, (effect, request) =>
    Effect.timeoutFail(effect, {
      duration: timeout,
      onTimeout: () =>
        new HttpClientError.RequestError({
          request,
          reason: "Transport",
          description: `no answer in ${Duration.format(timeout)}`
        })
    }))

const authed = (token: Option.Option<Redacted.Redacted>) => (client: HttpClient.HttpClient) =>
  Option.match(token, {
    onNone: () => client,
    onSome: (t) => HttpClient.mapRequest(client, HttpClientRequest.bearerToken(t))
  })

/** Pages through a listing until it ends. */
const allPages = <A, E>(
  page: (token: string | undefined) => Effect.Effect<Page<A>, E>
): Effect.Effect<ReadonlyArray<A>, E> =>
  Effect.gen(function*() {
    const out: Array<A> = []
    let token: string | undefined = undefined
    do {
      const next: Page<A> = yield* page(token)
      out.push(...next.items)
      token = next.next_page_token
    } while (token !== undefined)
    return out
  })

const STATUSES = ["idle", "running", "stopped"] as const

const listParams = (status: (typeof STATUSES)[number] | undefined, page_token: string | undefined) => ({
  ...(status === undefined ? {} : { status }),
  ...(page_token === undefined ? {} : { page_token })
})

const parseStatus = (status: Option.Option<string>) =>
  Option.match(status, {
    onNone: () => Effect.succeed(undefined),
    onSome: (s) =>
      (STATUSES as ReadonlyArray<string>).includes(s)
        ? Effect.succeed(s as (typeof STATUSES)[number])
        : Effect.fail(new UsageError({ message: `--status must be one of ${STATUSES.join(", ")}, got ${JSON.stringify(s)}` }))
  })

/** The create body. `--profile` names an engine profile of the runtime (`{"engine": {"profile": P}}`). */
const createBody = (options: CreateOptions): Domain.CreateWorker => ({
  display_name: options.name,
  ...(Option.isSome(options.workerId) ? { worker_id: Ids.WorkerId.make(options.workerId.value) } : {}),
  ...(Option.isSome(options.profile) ? { engine: { profile: options.profile.value } } : {})
})

const backend = (target: Target, timeout: Duration.Duration) =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const client = yield* HttpApiClient.make(BrowserApi, {
      baseUrl: target.url,
      transformClient: (c) => c.pipe(authed(target.token), withTimeout(timeout))
    })
    const fail = fromClientError(`the Backend at ${target.url}`)
    const path = (ref: WorkerRef) => ({ runtime_id: ref.runtime, worker_id: ref.worker })
    const service: RemoteService = {
      target,
      runtimes: client.runtimes.list().pipe(Effect.map((r) => r.items), Effect.mapError(fail)),
      workers: (runtime, status) =>
        Effect.gen(function*() {
          const wanted = yield* parseStatus(status)
          const runtimeIds = Option.isSome(runtime)
            ? [runtime.value]
            : (yield* client.runtimes.list().pipe(Effect.mapError(fail))).items
              .filter((r) => r.status !== "offline")
              .map((r) => r.runtime_id)
          const lists = yield* Effect.forEach(runtimeIds, (runtime_id) =>
            allPages((page_token) =>
              client.workers.list({
                path: { runtime_id },
                urlParams: listParams(wanted, page_token)
              })
            ).pipe(Effect.mapError(fail)), { concurrency: 4 })
          return lists.flat()
        }),
      create: (runtime_id, options) =>
        client.workers.create({ path: { runtime_id }, payload: createBody(options) }).pipe(Effect.mapError(fail)),
      get: (ref) => client.workers.get({ path: path(ref) }).pipe(Effect.mapError(fail)),
      input: (ref, text, busy) =>
        client.workers.input({ path: path(ref), payload: busy === undefined ? { text } : { text, busy } }).pipe(
          Effect.map((r) => r as Domain.InputResult),
          Effect.mapError(fail)
        ),
      cancel: (ref) =>
        client.workers.cancel({ path: path(ref), payload: null, urlParams: {} }).pipe(
          Effect.map((r) => r as Domain.CancelResult),
          Effect.mapError(fail)
        ),
      stop: (ref) => client.workers.stop({ path: path(ref) }).pipe(Effect.mapError(fail)),
      restore: (ref) => client.workers.restore({ path: path(ref) }).pipe(Effect.mapError(fail)),
      delete: (ref) =>
        client.workers.delete({ path: path(ref) }).pipe(
          Effect.map((r) => r as Domain.DeleteResult),
          Effect.mapError(fail)
        ),
      transcript: (ref, options) =>
        transcriptPages(options, (page_token, limit) =>
          client.workers.transcript({
            path: path(ref),
            urlParams: { ...(page_token ? { page_token } : {}), ...(limit ? { limit: String(limit) } : {}) }
          }).pipe(Effect.mapError(fail))),
      audit: (limit) =>
        client.audit.page({ urlParams: Option.isSome(limit) ? { limit: String(limit.value) } : {} }).pipe(
          Effect.mapError(fail)
        ),
      follow: (scope) =>
        RuntimeEvents.make({
          baseUrl: target.url,
          token: Option.getOrUndefined(target.token),
          maxRetries: scope.maxRetries,
          path: () =>
            scope.worker === undefined
              ? "/api/events"
              : `/api/runtimes/${encodeURIComponent(scope.worker.runtime)}/workers/${
                encodeURIComponent(scope.worker.worker)
              }/events`
        }).pipe(
          Effect.map((events) => {
            const follower = events.follow({ cursor: scope.cursor, workerId: scope.worker?.worker })
            const runtime = scope.worker === undefined ? scope.runtime : undefined
            return runtime === undefined
              ? follower
              : { ...follower, events: Stream.filter(follower.events, (e) => e.runtime_id === runtime) }
          }),
          Effect.provideService(HttpClient.HttpClient, http)
        )
    }
    return service
  })

const transcriptPages = (
  options: { readonly all: boolean; readonly limit?: number | undefined },
  page: (token: string | undefined, limit: number | undefined) => Effect.Effect<TranscriptResult, CliError>
): Effect.Effect<TranscriptResult, CliError> =>
  Effect.gen(function*() {
    const first = yield* page(undefined, options.limit)
    let result = first
    const items = [...result.items]
    while (options.all && result.next_page_token !== undefined) {
      result = yield* page(result.next_page_token, options.limit)
      items.push(...result.items)
    }
    // The first page's cursor: streaming from it shows nothing twice and misses nothing committed since the listing.
    const more = result.next_page_token
    return { items, cursor: first.cursor, ...(more === undefined ? {} : { next_page_token: more }) }
  })

const runtime = (target: Target, timeout: Duration.Duration) =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const client = yield* RuntimeClient.make({
      baseUrl: target.url,
      token: Option.getOrUndefined(target.token),
      timeout,
      retries: 1
    })
    const fail = fromClientError(`the runtime at ${target.url}`)
    const summary = yield* Effect.cached(client.runtime.summary().pipe(Effect.mapError(fail)))
    /** This runtime answers for one runtime id; another id is a mistake worth saying. */
    const check = (runtimeId: string) =>
      Effect.flatMap(summary, (s) =>
        s.runtime_id === runtimeId
          ? Effect.void
          : Effect.fail(new UsageError({ message: `the runtime at ${target.url} is ${s.runtime_id}, not ${runtimeId}` })))
    const path = (ref: WorkerRef) => Effect.as(check(ref.runtime), { worker_id: ref.worker })
    const service: RemoteService = {
      target,
      runtimes: Effect.map(summary, (s): ReadonlyArray<RuntimeRow> => [{
        runtime_id: s.runtime_id,
        display_name: s.display_name,
        kind: "direct",
        status: s.status === "ready" ? "online" : "degraded",
        counts: s.counts,
        summary: s
      }]),
      workers: (runtimeId, status) =>
        Effect.gen(function*() {
          if (Option.isSome(runtimeId)) yield* check(runtimeId.value)
          const wanted = yield* parseStatus(status)
          return yield* allPages((page_token) =>
            client.workers.list({
              urlParams: listParams(wanted, page_token)
            })
          ).pipe(Effect.mapError(fail))
        }),
      create: (runtimeId, options) =>
        Effect.zipRight(
          check(runtimeId),
          client.workers.create({ payload: createBody(options) }).pipe(Effect.mapError(fail))
        ),
      get: (ref) => Effect.flatMap(path(ref), (p) => client.workers.get({ path: p }).pipe(Effect.mapError(fail))),
      input: (ref, text, busy) =>
        Effect.flatMap(path(ref), (p) =>
          client.workers.input({ path: p, payload: busy === undefined ? { text } : { text, busy } }).pipe(
            Effect.mapError(fail)
          )),
      cancel: (ref) =>
        Effect.flatMap(path(ref), (p) =>
          client.workers.cancel({ path: p, payload: null, urlParams: {} }).pipe(Effect.mapError(fail))),
      stop: (ref) => Effect.flatMap(path(ref), (p) => client.workers.stop({ path: p }).pipe(Effect.mapError(fail))),
      restore: (ref) =>
        Effect.flatMap(path(ref), (p) => client.workers.restore({ path: p }).pipe(Effect.mapError(fail))),
      delete: (ref) => Effect.flatMap(path(ref), (p) => client.workers.delete({ path: p }).pipe(Effect.mapError(fail))),
      transcript: (ref, options) =>
        Effect.flatMap(path(ref), (p) =>
          transcriptPages(options, (page_token, limit) =>
            client.workers.transcript({
              path: p,
              urlParams: { ...(page_token ? { page_token } : {}), ...(limit ? { limit } : {}) }
            }).pipe(Effect.mapError(fail)))),
      audit: () =>
        Effect.fail(new UsageError({ message: "the audit trail is the Backend's: yoi audit needs --url, not --runtime-url" })),
      follow: (scope) =>
        Effect.gen(function*() {
          if (scope.runtime !== undefined) yield* check(scope.runtime)
          if (scope.worker !== undefined) yield* check(scope.worker.runtime)
          const events = yield* RuntimeEvents.make({
            baseUrl: target.url,
            token: Option.getOrUndefined(target.token),
            maxRetries: scope.maxRetries
          }).pipe(Effect.provideService(HttpClient.HttpClient, http))
          return events.follow({ cursor: scope.cursor, workerId: scope.worker?.worker })
        })
    }
    return service
  })

/** The remote for a target; every call gives up after `timeout` without an answer. */
export const layer = (
  target: Target,
  timeout: Duration.Duration = Duration.seconds(30)
): Layer.Layer<Remote, never, HttpClient.HttpClient> =>
  Layer.effect(Remote, target._tag === "Backend" ? backend(target, timeout) : runtime(target, timeout))

/** `runtime/worker`: the pair that addresses a worker everywhere. */
export const parseRef = (text: string): Effect.Effect<WorkerRef, UsageError> => {
  const slash = text.indexOf("/")
  return slash > 0 && slash < text.length - 1 && text.indexOf("/", slash + 1) === -1
    ? Effect.succeed({ runtime: text.slice(0, slash), worker: text.slice(slash + 1) })
    : Effect.fail(new UsageError({ message: `expected RUNTIME/WORKER (for example local/companion), got ${JSON.stringify(text)}` }))
}
