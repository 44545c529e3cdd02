import { HttpClient, HttpClientRequest } from "@effect/platform"
import { EventsGroup, RuntimeClient, RuntimeEvents } from "@yoi/runtime-api"
import { type Domain, Ids, Metrics, Runtime, SseWire } from "@yoi/worker-runtime"
import { Deferred, Duration, Effect, Either, Option, Redacted, Schedule, Schema, type Scope, Stream } from "effect"
import * as Errors from "@yoi/backend-api/Errors"
import * as Views from "@yoi/backend-api/Views"
import * as Hub from "./internal/Hub.js"
import * as Relay from "./internal/Relay.js"
import { mapRuntimeError } from "./internal/upstream.js"
import type { HandleDescription, RuntimeHandle, SubscribeQuery } from "./RuntimeHandle.js"

export interface RemoteOptions {
  readonly runtimeId: string
  readonly displayName?: string | undefined
  /**
   * Where the runtime answers. Several endpoints are hosts of one runtime (an owner and its standbys): the handle
   * follows the one that is ready and switches when it fails.
   */
  readonly endpoint: string | ReadonlyArray<string>
  readonly token: Redacted.Redacted<string>
  /** One command or query; past it the caller gets `UpstreamTimeout`. Default 10 s. */
  readonly timeout?: Duration.DurationInput | undefined
  /** How often `/readyz` is probed. Default 5 s. */
  readonly probeInterval?: Duration.DurationInput | undefined
  /** Recent events kept for browsers that resume. Default 10,000. */
  readonly backlog?: number | undefined
  /** Undelivered events one browser may hold before it gets `stream.lagged`. Default 1,024. */
  readonly subscriberBuffer?: number | undefined
  /** How often a browser's worker stream gets a `stream.bookmark` when its position moved. Default 30 s. */
  readonly bookmarkInterval?: Duration.DurationInput | undefined
  /** Reconnect delays of the upstream event subscription (exponential, jittered). Default 250 ms to 10 s. */
  readonly reconnect?: {
    readonly initialDelay?: Duration.DurationInput | undefined
    readonly maxDelay?: Duration.DurationInput | undefined
  } | undefined
}

interface Health {
  readonly status: Views.RuntimeHealth
  /** False until the first probe finished: requests are not failed fast on a status nobody measured. */
  readonly probed: boolean
  readonly lastSeenAt: string | undefined
  readonly reason: string | undefined
  readonly summary: Domain.RuntimeSummary | undefined
}

const proxyLatency = Metrics.family(Metrics.proxyLatency, "runtime_id", "outcome")

const isStatus = Schema.is(Schema.Literal("idle", "running", "stopped"))
const isWorkerId = Schema.is(Ids.WorkerId)

const ErrorBody = Schema.Struct({ _tag: Schema.String, message: Schema.String })
const decodeErrorBody = Schema.decodeUnknownOption(Schema.parseJson(ErrorBody))

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** What a runtime answered instead of a success, kept apart from the Backend's own transport failures. */
class Answered {
  readonly _tag = "Answered"
  constructor(readonly body: { readonly _tag: string }) {}
}

const isTagged = (body: unknown): body is { readonly _tag: string } =>
  typeof body === "object" && body !== null && typeof (body as { _tag?: unknown })._tag === "string"

/** How the answer of one route is checked, decoded when it is not exact, and rebased onto the runtime's id. */
interface RelayView<A> {
  readonly exact: (u: unknown) => boolean
  readonly ownedBy: (a: unknown, runtimeId: string) => boolean
  readonly decode: (u: unknown) => Either.Either<A, unknown>
  readonly rebase: (a: A, fix: <W extends Domain.Worker>(w: W) => W) => A
}

const relayView = <A, I>(
  schema: Schema.Schema<A, I>,
  workersOf: (a: A) => ReadonlyArray<Domain.Worker>,
  rebase: RelayView<A>["rebase"]
): RelayView<A> => ({
  exact: Schema.is(schema, { onExcessProperty: "error" }) as (u: unknown) => boolean,
  ownedBy: (a, runtimeId) => workersOf(a as A).every((w) => w.runtime_id === runtimeId),
  decode: Schema.decodeUnknownEither(schema),
  rebase
})

const views = {
  worker: relayView(Views.WorkerView, (w) => [w], (w, fix) => fix(w)),
  page: relayView(Views.WorkerPage, (p) => p.items, (p, fix) => ({ ...p, items: p.items.map(fix) })),
  created: relayView(Views.CreateResult, (r) => [r.worker], (r, fix) => ({ ...r, worker: fix(r.worker) })),
  accepted: relayView(Views.InputResult, (r) => [r.worker], (r, fix) => ({ ...r, worker: fix(r.worker) })),
  cancelled: relayView(Views.CancelResult, (r) => [r.worker], (r, fix) => ({ ...r, worker: fix(r.worker) })),
  deleted: relayView(Views.DeleteResult, () => [], (r) => r),
  queue: relayView(Views.WorkerQueue, () => [], (r) => r),
  queueCancelled: relayView(Views.QueueCancelled, (r) => [r.worker], (r, fix) => ({ ...r, worker: fix(r.worker) })),
  transcript: relayView(Views.TranscriptPage, () => [], (r) => r)
}

/**
 * A runtime in another process. Commands and reads are relayed over the provided `HttpClient` (undici: keep-alive
 * connections pooled per remote), probes go through the client derived from `RuntimeApi`, events through the SSE
 * client. The endpoint and token live only here: every error is rebuilt as the Backend's own, and a success is
 * either exactly the Backend's view (then passed on as is) or decoded and rebuilt as one. `/readyz`
 * is probed in the background so that listing never waits on a remote; events come from one upstream subscription
 * (reconnecting with backoff and jitter, resuming from its cursor) that fans out to browsers through a hub.
 */
export const make = (
  options: RemoteOptions
): Effect.Effect<RuntimeHandle, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const { runtimeId, token } = options
    const displayName = options.displayName ?? runtimeId
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(10))
    const timeoutMs = Duration.toMillis(timeout)
    const probeInterval = options.probeInterval ?? Duration.seconds(5)
    const baseUrls = (typeof options.endpoint === "string" ? [options.endpoint] : options.endpoint)
      .map((e) => e.replace(/\/+$/, ""))
    const secrets = [...baseUrls, ...baseUrls.map((u) => new URL(u).host), Redacted.value(token)]
    // One client per endpoint. The client's own per-attempt timeout is a backstop behind ours. No client-side
    // retries: its retry wrapper costs about half the read throughput even when nothing fails, and an unreachable
    // runtime is found by the probe.
    const hosts = yield* Effect.forEach(baseUrls, (baseUrl) =>
      Effect.gen(function*() {
        const client = yield* RuntimeClient.make({
          baseUrl,
          token,
          timeout: Duration.sum(timeout, Duration.seconds(1)),
          retries: 0
        })
        const events = yield* RuntimeEvents.make({
          baseUrl,
          token,
          maxRetries: Infinity,
          initialDelay: options.reconnect?.initialDelay,
          maxDelay: options.reconnect?.maxDelay
        })
        return { baseUrl, client, events }
      }))
    /** The endpoint followed now: commands, queries and the upstream subscription go there. */
    let active = 0
    const current = () => hosts[active]!
    /** Completed when the handle switches endpoints, so that the upstream subscription moves with it. */
    let switched = yield* Deferred.make<void>()
    const http = HttpClient.mapRequest(yield* HttpClient.HttpClient, HttpClientRequest.bearerToken(token))
    const proxyOk = proxyLatency(runtimeId, "ok")
    const proxyFailed = proxyLatency(runtimeId, "error")
    const subscriberBuffer = options.subscriberBuffer ?? 1_024
    const hub = yield* Hub.make({
      runtimeId,
      backlog: options.backlog ?? 10_000,
      subscriberBuffer,
      bookmarkInterval: options.bookmarkInterval ?? Duration.seconds(30)
    })

    let health: Health = {
      status: "offline",
      probed: false,
      lastSeenAt: undefined,
      reason: "not reached yet",
      summary: undefined
    }

    const unreachable = () =>
      new Errors.RuntimeUnavailable({ runtime_id: runtimeId, message: `runtime ${runtimeId} cannot be reached` })

    /** Maps whatever the client reports: typed runtime errors by tag, transport and protocol failures by kind. */
    const mapError = (workerId?: string) => (e: { readonly _tag: string }): Errors.HandleError => {
      switch (e._tag) {
        case "UpstreamTimeout":
          return e as Errors.UpstreamTimeout
        case "RequestError":
          markOffline("the runtime cannot be reached")
          return unreachable()
        case "ResponseError":
        case "ParseError":
        case "HttpApiDecodeError":
        case "InternalError":
          return new Errors.RuntimeUnavailable({
            runtime_id: runtimeId,
            message: `runtime ${runtimeId} answered in a form the Backend cannot use`
          })
        case "Unauthorized":
          return new Errors.RuntimeUnavailable({
            runtime_id: runtimeId,
            message: `runtime ${runtimeId} refused the Backend's credentials`
          })
        case "RouteNotFound":
          return new Errors.UnsupportedOperation({
            runtime_id: runtimeId,
            operation: "unknown",
            message: `runtime ${runtimeId} does not offer this operation`
          })
        default:
          return mapRuntimeError(runtimeId, e, { workerId, secrets })
      }
    }

    const withTimeout = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | Errors.UpstreamTimeout> =>
      Effect.timeoutFail(effect, {
        duration: timeout,
        onTimeout: () =>
          new Errors.UpstreamTimeout({
            runtime_id: runtimeId,
            timeout_ms: timeoutMs,
            message: `runtime ${runtimeId} did not answer within ${timeoutMs} ms`
          })
      })

    /**
     * A call to the runtime: fails fast while the last probe found it offline (and probes again at once). A worker id
     * is checked first: the derived client puts it into the URL path unescaped, where `..` or `/` would address
     * another route of the runtime than the one audited and authorized.
     */
    const call = <A, E extends { readonly _tag: string }>(
      effect: Effect.Effect<A, E>,
      workerId?: string,
      onError: (e: E | Errors.UpstreamTimeout) => Errors.HandleError = mapError(workerId)
    ): Effect.Effect<A, Errors.HandleError> =>
      Effect.suspend(() => {
        if (workerId !== undefined && !isWorkerId(workerId)) {
          return Effect.fail(new Errors.InvalidInput({
            field: "worker_id",
            message: `worker_id ${JSON.stringify(workerId.slice(0, 140))} is malformed`
          }))
        }
        if (health.probed && health.status === "offline") {
          return Effect.zipRight(kickProbe, Effect.fail(unreachable()))
        }
        const start = performance.now()
        return withTimeout(effect).pipe(
          Effect.mapError(onError),
          Effect.onExit((exit) =>
            Effect.sync(() =>
              (exit._tag === "Success" ? proxyOk : proxyFailed).unsafeUpdate((performance.now() - start) / 1000, [])
            )
          )
        )
      })

    const fixWorker = <W extends Domain.Worker>(w: W): W =>
      w.runtime_id === runtimeId
        ? w
        : { ...w, runtime_id: runtimeId as W["runtime_id"], display_ref: `${w.display_name}@${runtimeId}` }

    const fixEvent = (e: Domain.RuntimeEvent): Domain.RuntimeEvent =>
      e.runtime_id === runtimeId ? e : { ...e, runtime_id: runtimeId }

    // --- relayed calls -------------------------------------------------------------------------------------------

    /**
     * A failure of a relayed call: an error the runtime answered with is mapped by its body's `_tag`, which may never
     * pose as one of the Backend's own transport failures; those (and the timeout) are mapped as they are.
     */
    const mapRelayed = (workerId: string | undefined) => (e: { readonly _tag: string }): Errors.HandleError => {
      if (!(e instanceof Answered)) return mapError(workerId)(e)
      const body = e.body
      return body._tag === "UpstreamTimeout" || body._tag === "RequestError" || body._tag === "ResponseError"
        ? mapError(workerId)({ _tag: "ParseError" })
        : mapError(workerId)(body)
    }

    /**
     * One command or query relayed over the pooled keep-alive client, without the derived client's decode step: a
     * 2xx body that is exactly the Backend's view (checked, no excess property, this runtime's id) keeps its text
     * and is sent on unchanged (see `Relay`); a looser one is decoded and re-encoded as before; any other answer is
     * mapped by its `_tag` and scrubbed like every runtime error.
     */
    const relay = <A extends object>(
      view: RelayView<A>,
      request: HttpClientRequest.HttpClientRequest,
      workerId?: string
    ): Effect.Effect<A, Errors.HandleError> =>
      call(
        Effect.scoped(Effect.flatMap(http.execute(request), (response) =>
          Effect.flatMap(response.text, (text) => {
            const body = parseJson(text)
            if (response.status >= 200 && response.status < 300) {
              if (body !== undefined && view.exact(body) && view.ownedBy(body, runtimeId)) {
                return Effect.succeed(Relay.attach(body as A, text))
              }
              return Either.match(view.decode(body), {
                onLeft: () => Effect.fail(new Answered({ _tag: "ParseError" })),
                onRight: (decoded) => Effect.succeed(view.rebase(decoded, fixWorker))
              })
            }
            return Effect.fail(new Answered(isTagged(body) ? body : { _tag: "ParseError" }))
          }))),
        workerId,
        mapRelayed(workerId)
      )

    const workerPath = (workerId: string, suffix = "") =>
      `${current().baseUrl}/v1/workers/${encodeURIComponent(workerId)}${suffix}`
    const post = (url: string, body?: unknown) =>
      body === undefined
        ? HttpClientRequest.post(url)
        : HttpClientRequest.post(url).pipe(HttpClientRequest.bodyUnsafeJson(body))

    // --- health ------------------------------------------------------------------------------------------------

    const markOffline = (reason: string) => {
      health = { ...health, status: "offline", probed: true, reason }
    }

    const probeTimeout = Duration.min(timeout, Duration.seconds(3))

    /** One endpoint's health, as its `/readyz` and summary say. */
    const probeOne = (host: (typeof hosts)[number]): Effect.Effect<Health> =>
      Effect.gen(function*() {
        const ready = yield* host.client.health.readyz().pipe(Effect.timeout(probeTimeout), Effect.either)
        const now = new Date().toISOString()
        if (ready._tag === "Left") {
          const tag = ready.left._tag
          if (tag === "RuntimeUnavailable") {
            return {
              ...health,
              status: "degraded" as const,
              probed: true,
              lastSeenAt: now,
              reason: "the runtime is not ready"
            }
          }
          return {
            ...health,
            status: "offline" as const,
            probed: true,
            reason: tag === "TimeoutException"
              ? "the runtime did not answer its readiness probe in time"
              : "the runtime cannot be reached"
          }
        }
        if (ready.right.runtime_id !== runtimeId) {
          yield* Effect.logWarning(`runtime ${runtimeId}: the remote calls itself ${ready.right.runtime_id}`)
        }
        const summary = yield* host.client.runtime.summary().pipe(Effect.timeout(probeTimeout), Effect.either)
        if (summary._tag === "Left") {
          return {
            ...health,
            status: "degraded" as const,
            probed: true,
            lastSeenAt: now,
            reason: summary.left._tag === "Unauthorized"
              ? "the runtime refused the Backend's credentials"
              : "the runtime is ready but its summary could not be read"
          }
        }
        return {
          status: summary.right.status === "ready" ? "online" : "degraded",
          probed: true,
          lastSeenAt: now,
          reason: summary.right.status === "ready" ? undefined : "the runtime is draining",
          summary: { ...summary.right, runtime_id: runtimeId as Domain.RuntimeSummary["runtime_id"] }
        } satisfies Health
      })

    /**
     * Probes every endpoint and follows a ready one: the current one while it stays ready, else the first ready in
     * the configured order. With none ready the handle stays where it is and reports the current one's health.
     */
    const probe = Effect.gen(function*() {
      if (hosts.length === 1) {
        health = yield* probeOne(hosts[0]!)
        return
      }
      const results = yield* Effect.forEach(hosts, probeOne, { concurrency: "unbounded" })
      const ready = results.findIndex((h) => h.status === "online")
      const next = results[active]!.status === "online" || ready === -1 ? active : ready
      if (next !== active) {
        yield* Effect.logInfo(`runtime ${runtimeId}: following endpoint ${next + 1} of ${hosts.length} (ready)`)
        active = next
        const previous = switched
        switched = yield* Deferred.make<void>()
        yield* Deferred.succeed(previous, undefined)
      }
      health = results[active]!
    })

    const probeLock = yield* Effect.makeSemaphore(1)
    const runProbe = probeLock.withPermits(1)(probe)
    const scope = yield* Effect.scope
    const kickProbe = Effect.asVoid(Effect.forkIn(probeLock.withPermitsIfAvailable(1)(probe), scope))
    yield* Effect.forkScoped(Effect.repeat(runProbe, Schedule.spaced(probeInterval)))

    // --- events ------------------------------------------------------------------------------------------------

    const backoff = Schedule.exponential(options.reconnect?.initialDelay ?? Duration.millis(250)).pipe(
      Schedule.union(Schedule.spaced(options.reconnect?.maxDelay ?? Duration.seconds(10))),
      Schedule.jitteredWith({ min: 0.5, max: 1.5 })
    )

    /** The runtime's current head, to start (or restart) the upstream subscription with no gap. */
    const fetchHead = Effect.suspend(() => current().client.runtime.summary()).pipe(
      withTimeout,
      Effect.map((s) => s.cursor),
      Effect.retry(backoff)
    )

    /** One upstream subscription for the life of the Backend; it only ends to start over from a fresh head. */
    const initialDelay = Duration.toMillis(options.reconnect?.initialDelay ?? Duration.millis(250))
    const maxDelay = Duration.toMillis(options.reconnect?.maxDelay ?? Duration.seconds(10))
    let failures = 0

    /** One life of the upstream subscription; it ends only to start over (from a fresh head if continuity is lost). */
    const cycle = Effect.gen(function*() {
      if (Option.isNone(hub.head())) hub.start(yield* fetchHead)
      // Cursors are the runtime's, valid on each of its hosts: after a switch the subscription resumes on the new
      // endpoint from the last event the hub holds, with no gap and no duplicate.
      const moved = switched
      const follower = current().events.follow({ cursor: Option.getOrUndefined(hub.head()) })
      yield* follower.events.pipe(
        Stream.runForEachChunk((chunk) =>
          Effect.suspend(() => {
            failures = 0
            return hub.publish(Array.from(chunk, fixEvent))
          })
        ),
        Effect.raceFirst(Deferred.await(moved))
      )
    }).pipe(
      Effect.catchAll((e) => {
        failures += 1
        switch (e._tag) {
          case "CursorExpired":
          case "CursorInvalid":
            return Effect.zipRight(
              Effect.logWarning(`runtime ${runtimeId}: its event stream restarted (${e._tag}); browsers must resume`),
              hub.reset
            )
          case "Unauthorized":
            return Effect.logWarning(`runtime ${runtimeId}: the event stream refused the Backend's credentials`)
          default:
            return Effect.logDebug(`runtime ${runtimeId}: the event subscription ended (${e._tag})`)
        }
      }),
      // The SSE client already reconnects with backoff and jitter; this only spaces out whole restarts.
      Effect.zipRight(Effect.suspend(() => {
        const base = Math.min(maxDelay, initialDelay * 2 ** Math.min(failures, 16))
        return Effect.sleep(Duration.millis(base * (0.5 + Math.random())))
      }))
    )
    const upstream = Effect.forever(cycle)
    yield* Effect.forkScoped(upstream)

    /** Asks the runtime whether it accepts a cursor, without streaming: typed cursor errors before any SSE byte. */
    const checkCursor = (cursor: string, workerId: string | undefined) =>
      Effect.scoped(Effect.gen(function*() {
        const request = HttpClientRequest.get(current().baseUrl + EventsGroup.streamPath(workerId)).pipe(
          HttpClientRequest.setUrlParam("cursor", cursor),
          HttpClientRequest.accept(SseWire.CONTENT_TYPE)
        )
        const response = yield* http.execute(request)
        if (response.status === 200) return
        const body = yield* Effect.orElseSucceed(response.text, () => "")
        const error = Option.getOrElse(decodeErrorBody(body), () => ({ _tag: "ResponseError", message: "" }))
        return yield* Effect.fail(error)
      })).pipe(withTimeout, Effect.mapError(mapError(workerId)))

    /** A browser that resumes from before what the hub holds gets its own upstream subscription. */
    const dedicated = (cursor: string, workerId: string | undefined) =>
      Effect.map(checkCursor(cursor, workerId), () =>
        current().events.stream({ cursor, workerId, markers: true }).pipe(
          Stream.map(fixEvent),
          Stream.mapError(mapError(workerId))
        ))

    const subscribe = (query: SubscribeQuery) =>
      Effect.gen(function*() {
        const workerId = query.workerId
        if (workerId !== undefined) {
          yield* call(current().client.workers.get({ path: { worker_id: workerId } }), workerId)
        }
        const cursor = query.cursor === "" ? undefined : query.cursor
        if (cursor === undefined) return yield* hub.subscribe({ workerId })
        const live = query.live
        if (cursor === "earliest") return yield* dedicated(cursor, workerId)
        const coverage = hub.covers(cursor)
        switch (coverage._tag) {
          case "Covered":
            return yield* hub.subscribe({ after: coverage.seq, workerId, live })
          case "Malformed":
            return yield* new Errors.CursorInvalid({
              runtime_id: runtimeId,
              message: `the cursor for runtime ${runtimeId} is not a cursor issued by a Yoi runtime`
            })
          case "Upstream":
            return yield* dedicated(cursor, workerId)
        }
      })

    // --- commands and queries ----------------------------------------------------------------------------------

    const describe = Effect.sync((): HandleDescription => ({
      runtime_id: runtimeId,
      display_name: displayName,
      kind: "remote",
      compatibility: false,
      status: health.status,
      ...(health.lastSeenAt === undefined ? {} : { last_seen_at: health.lastSeenAt }),
      ...(health.reason === undefined ? {} : { status_reason: health.reason }),
      ...(health.summary === undefined ? {} : { counts: health.summary.counts, summary: health.summary })
    }))

    const handle: RuntimeHandle = {
      runtimeId,
      kind: "remote",
      displayName,
      describe,
      listWorkers: (query) =>
        query.status !== undefined && !isStatus(query.status)
          ? Effect.fail(new Errors.InvalidInput({ field: "status", message: "status must be one of idle, running, stopped" }))
          : relay(
            views.page,
            HttpClientRequest.get(`${current().baseUrl}/v1/workers`).pipe(HttpClientRequest.setUrlParams({
              ...(query.status === undefined ? {} : { status: query.status }),
              ...(query.workspace === undefined ? {} : { workspace: query.workspace }),
              ...(query.limit === undefined ? {} : { limit: String(query.limit) }),
              ...(query.page_token === undefined ? {} : { page_token: query.page_token })
            }))
          ),
      getWorker: (workerId) => relay(views.worker, HttpClientRequest.get(workerPath(workerId)), workerId),
      createWorker: (spec) => relay(views.created, post(`${current().baseUrl}/v1/workers`, spec), spec.worker_id),
      sendInput: (workerId, input) => relay(views.accepted, post(workerPath(workerId, "/input"), input), workerId),
      cancel: (workerId, options) =>
        relay(
          views.cancelled,
          post(
            workerPath(workerId, "/cancel"),
            options?.turn_id === undefined ? undefined : { turn_id: options.turn_id }
          ).pipe(
            HttpClientRequest.setUrlParams(options?.wait_ms === undefined ? {} : { wait_ms: String(options.wait_ms) })
          ),
          workerId
        ),
      queue: (workerId) => relay(views.queue, HttpClientRequest.get(workerPath(workerId, "/queue")), workerId),
      cancelQueued: (workerId, inputId) =>
        relay(
          views.queueCancelled,
          HttpClientRequest.del(
            workerPath(workerId, inputId === undefined ? "/queue" : `/queue/${encodeURIComponent(inputId)}`)
          ),
          workerId
        ),
      stop: (workerId) => relay(views.worker, post(workerPath(workerId, "/stop")), workerId),
      restore: (workerId) => relay(views.worker, post(workerPath(workerId, "/restore")), workerId),
      delete: (workerId) => relay(views.deleted, HttpClientRequest.del(workerPath(workerId)), workerId),
      transcript: (workerId, query) =>
        relay(
          views.transcript,
          HttpClientRequest.get(workerPath(workerId, "/transcript")).pipe(HttpClientRequest.setUrlParams({
            ...(query.limit === undefined ? {} : { limit: String(query.limit) }),
            ...(query.page_token === undefined ? {} : { page_token: query.page_token })
          })),
          workerId
        ),
      subscribe,
      headCursor: Effect.sync(() => hub.head())
    }
    return handle
  })

/** Limits that match a runtime's own defaults, so that a browser sees the same lag rule through the Backend. */
export const defaults = {
  backlog: Runtime.defaultConfig().eventBacklog,
  subscriberBuffer: Runtime.defaultConfig().subscriberBuffer
}
