import { HttpClient, HttpClientRequest } from "@effect/platform"
import { EventsGroup, RuntimeClient, RuntimeEvents } from "@yoi/runtime-api"
import { type Domain, Ids, Runtime, SseWire } from "@yoi/worker-runtime"
import { Duration, Effect, Option, Redacted, Schedule, Schema, type Scope, Stream } from "effect"
import * as Errors from "@yoi/backend-api/Errors"
import * as Hub from "./internal/Hub.js"
import { mapRuntimeError } from "./internal/upstream.js"
import type { HandleDescription, RuntimeHandle, SubscribeQuery } from "./RuntimeHandle.js"
import type * as Views from "@yoi/backend-api/Views"

export interface RemoteOptions {
  readonly runtimeId: string
  readonly displayName?: string | undefined
  readonly endpoint: string
  readonly token: Redacted.Redacted<string>
  /** One command or query; past it the caller gets `UpstreamTimeout`. Default 10 s. */
  readonly timeout?: Duration.DurationInput | undefined
  /** How often `/readyz` is probed. Default 5 s. */
  readonly probeInterval?: Duration.DurationInput | undefined
  /** Recent events kept for browsers that resume. Default 10,000. */
  readonly backlog?: number | undefined
  /** Undelivered events one browser may hold before it gets `stream.lagged`. Default 1,024. */
  readonly subscriberBuffer?: number | undefined
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

const isStatus = Schema.is(Schema.Literal("idle", "running", "stopped"))
const isWorkerId = Schema.is(Ids.WorkerId)

const ErrorBody = Schema.Struct({ _tag: Schema.String, message: Schema.String })
const decodeErrorBody = Schema.decodeUnknownOption(Schema.parseJson(ErrorBody))

/**
 * A runtime in another process, reached with the client derived from `RuntimeApi` and the SSE client. The
 * endpoint and token live only here: every answer is rebuilt as the Backend's own typed error or view. `/readyz`
 * is probed in the background so that listing never waits on a remote; events come from one upstream subscription
 * (reconnecting with backoff and jitter, resuming from its cursor) that fans out to browsers through a hub.
 */
export const make = (
  options: RemoteOptions
): Effect.Effect<RuntimeHandle, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const { runtimeId, endpoint, token } = options
    const displayName = options.displayName ?? runtimeId
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(10))
    const timeoutMs = Duration.toMillis(timeout)
    const probeInterval = options.probeInterval ?? Duration.seconds(5)
    const baseUrl = endpoint.replace(/\/+$/, "")
    const secrets = [baseUrl, new URL(baseUrl).host, Redacted.value(token)]
    // The client's own per-attempt timeout is a backstop behind ours. No client-side retries: its retry wrapper
    // costs about half the read throughput even when nothing fails, and an unreachable runtime is found by the probe.
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
    const http = HttpClient.mapRequest(yield* HttpClient.HttpClient, HttpClientRequest.bearerToken(token))
    const subscriberBuffer = options.subscriberBuffer ?? 1_024
    const hub = yield* Hub.make({ runtimeId, backlog: options.backlog ?? 10_000, subscriberBuffer })

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
      workerId?: string
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
        return withTimeout(effect).pipe(Effect.mapError(mapError(workerId)))
      })

    const fixWorker = <W extends Domain.Worker>(w: W): W =>
      w.runtime_id === runtimeId
        ? w
        : { ...w, runtime_id: runtimeId as W["runtime_id"], display_ref: `${w.display_name}@${runtimeId}` }

    const fixEvent = (e: Domain.RuntimeEvent): Domain.RuntimeEvent =>
      e.runtime_id === runtimeId ? e : { ...e, runtime_id: runtimeId }

    // --- health ------------------------------------------------------------------------------------------------

    const markOffline = (reason: string) => {
      health = { ...health, status: "offline", probed: true, reason }
    }

    const probeTimeout = Duration.min(timeout, Duration.seconds(3))

    const probe = Effect.gen(function*() {
      const ready = yield* client.health.readyz().pipe(Effect.timeout(probeTimeout), Effect.either)
      const now = new Date().toISOString()
      if (ready._tag === "Left") {
        const tag = ready.left._tag
        if (tag === "RuntimeUnavailable") {
          health = { ...health, status: "degraded", probed: true, lastSeenAt: now, reason: "the runtime is not ready" }
        } else {
          markOffline(tag === "TimeoutException" ? "the runtime did not answer its readiness probe in time" : "the runtime cannot be reached")
        }
        return
      }
      if (ready.right.runtime_id !== runtimeId) {
        yield* Effect.logWarning(`runtime ${runtimeId}: the remote calls itself ${ready.right.runtime_id}`)
      }
      const summary = yield* client.runtime.summary().pipe(Effect.timeout(probeTimeout), Effect.either)
      if (summary._tag === "Left") {
        health = {
          ...health,
          status: "degraded",
          probed: true,
          lastSeenAt: now,
          reason: summary.left._tag === "Unauthorized"
            ? "the runtime refused the Backend's credentials"
            : "the runtime is ready but its summary could not be read"
        }
        return
      }
      health = {
        status: summary.right.status === "ready" ? "online" : "degraded",
        probed: true,
        lastSeenAt: now,
        reason: summary.right.status === "ready" ? undefined : "the runtime is draining",
        summary: { ...summary.right, runtime_id: runtimeId as Domain.RuntimeSummary["runtime_id"] }
      }
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
    const fetchHead = client.runtime.summary().pipe(
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
      const follower = events.follow({ cursor: Option.getOrUndefined(hub.head()) })
      yield* follower.events.pipe(
        Stream.runForEachChunk((chunk) =>
          Effect.suspend(() => {
            failures = 0
            return hub.publish(Array.from(chunk, fixEvent))
          })
        )
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
        const request = HttpClientRequest.get(baseUrl + EventsGroup.streamPath(workerId)).pipe(
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
        events.stream({ cursor, workerId }).pipe(
          Stream.map(fixEvent),
          Stream.mapError(mapError(workerId))
        ))

    const subscribe = (query: SubscribeQuery) =>
      Effect.gen(function*() {
        const workerId = query.workerId
        if (workerId !== undefined) yield* call(client.workers.get({ path: { worker_id: workerId } }), workerId)
        const cursor = query.cursor === "" ? undefined : query.cursor
        if (cursor === undefined) return yield* hub.subscribe({ workerId })
        if (cursor === "earliest") return yield* dedicated(cursor, workerId)
        const coverage = hub.covers(cursor)
        switch (coverage._tag) {
          case "Covered":
            return yield* hub.subscribe({ after: coverage.seq, workerId })
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
          : Effect.map(
            call(client.workers.list({
              urlParams: {
                ...(query.status === undefined ? {} : { status: query.status as Domain.WorkerStatus }),
                ...(query.workspace === undefined ? {} : { workspace: query.workspace }),
                ...(query.limit === undefined ? {} : { limit: query.limit }),
                ...(query.page_token === undefined ? {} : { page_token: query.page_token })
              }
            })),
            (page) => ({ ...page, items: page.items.map(fixWorker) })
          ),
      getWorker: (workerId) =>
        Effect.map(call(client.workers.get({ path: { worker_id: workerId } }), workerId), fixWorker),
      createWorker: (spec) =>
        Effect.map(call(client.workers.create({ payload: spec }), spec.worker_id), (r) => ({
          worker: fixWorker(r.worker),
          created: r.created
        })),
      sendInput: (workerId, input) =>
        Effect.map(
          call(client.workers.input({ path: { worker_id: workerId }, payload: input }), workerId),
          (r) => ({ ...r, worker: fixWorker(r.worker) })
        ),
      cancel: (workerId, options) =>
        Effect.map(
          call(
            client.workers.cancel({
              path: { worker_id: workerId },
              payload: options?.turn_id === undefined ? null : { turn_id: options.turn_id },
              urlParams: options?.wait_ms === undefined ? {} : { wait_ms: options.wait_ms }
            }),
            workerId
          ),
          (r) => ({ ...r, worker: fixWorker(r.worker) })
        ),
      queue: (workerId) => call(client.workers.queue({ path: { worker_id: workerId } }), workerId),
      cancelQueued: (workerId, inputId) =>
        Effect.map(
          call(
            inputId === undefined
              ? client.workers.clearQueue({ path: { worker_id: workerId } })
              : client.workers.cancelQueued({ path: { worker_id: workerId, input_id: inputId } }),
            workerId
          ),
          (r) => ({ ...r, worker: fixWorker(r.worker) })
        ),
      stop: (workerId) => Effect.map(call(client.workers.stop({ path: { worker_id: workerId } }), workerId), fixWorker),
      restore: (workerId) =>
        Effect.map(call(client.workers.restore({ path: { worker_id: workerId } }), workerId), fixWorker),
      delete: (workerId) => call(client.workers.delete({ path: { worker_id: workerId } }), workerId),
      transcript: (workerId, query) =>
        call(client.workers.transcript({
          path: { worker_id: workerId },
          urlParams: {
            ...(query.limit === undefined ? {} : { limit: query.limit }),
            ...(query.page_token === undefined ? {} : { page_token: query.page_token })
          }
        }), workerId),
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
