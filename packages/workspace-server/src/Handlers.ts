import { HttpApiBuilder, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Sse } from "@yoi/runtime-server"
import { Metrics } from "@yoi/worker-runtime"
import { Duration, Effect, Layer, Stream } from "effect"
import type { ObservationEnd } from "@yoi/backend-api/Views"
import { Audit, type AuditService } from "./Audit.js"
import { BackendToken, Caller, type CallerShape, SESSION_COOKIE, SESSION_TTL_SECONDS, Sessions, tokenMatches } from "./Auth.js"
import { BrowserApi } from "@yoi/backend-api/BrowserApi"
import { InvalidInput, PayloadTooLarge, Unauthorized } from "@yoi/backend-api/Errors"
import { cursorOf as frameCursor, encode as encodeFrames, EventProxy, type Frame, type FrameStream } from "./EventProxy.js"
import * as Relay from "./internal/Relay.js"
import { RuntimeRegistry } from "./RuntimeRegistry.js"

/** The largest request body the Backend reads (an input may hold a million characters). */
export const MAX_BODY_BYTES = 8 * 1024 * 1024

const parseLimit = (value: string | undefined, field = "limit"): Effect.Effect<number | undefined, InvalidInput> => {
  if (value === undefined) return Effect.succeed(undefined)
  const n = /^[0-9]{1,7}$/.test(value) ? Number(value) : NaN
  return Number.isSafeInteger(n)
    ? Effect.succeed(n)
    : Effect.fail(new InvalidInput({ field, message: `${field} must be a positive integer` }))
}

/** Reads a JSON body with typed failures: too large is 413, anything unreadable a readable 400. */
const readJson = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<unknown, InvalidInput | PayloadTooLarge> => {
  const length = Number(request.headers["content-length"] ?? "0")
  if (Number.isFinite(length) && length > MAX_BODY_BYTES) {
    return Effect.fail(new PayloadTooLarge({
      limit_bytes: MAX_BODY_BYTES,
      message: `the request body is larger than ${MAX_BODY_BYTES} bytes`
    }))
  }
  const type = request.headers["content-type"]
  if (type !== undefined && !isJsonType(type)) {
    return Effect.fail(new InvalidInput({ message: "the request body must be JSON sent as Content-Type: application/json" }))
  }
  return request.json.pipe(
    Effect.mapError(() => new InvalidInput({ message: "the request body must be a JSON object" }))
  )
}

/** A form or text body is refused even when it parses as JSON: only `application/json` (any parameters) is read. */
const isJsonType = (contentType: string) => {
  const semi = contentType.indexOf(";")
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase() === "application/json"
}

export interface SseOptions {
  /** How often a comment line is written to keep proxies from closing an idle stream. */
  readonly heartbeat: Duration.DurationInput
  /** A stream whose reader stopped reading is dropped after this long without progress. */
  readonly stallTimeout?: Duration.DurationInput | undefined
}

/** What the observation audit records of a stream besides its counts: who opened which stream, from where. */
interface Observed {
  readonly audit: AuditService
  readonly caller: CallerShape
  readonly stream: "all" | "worker"
  readonly runtime_id?: string | undefined
  readonly worker_id?: string | undefined
  readonly cursor: string | undefined
}

/**
 * A browser event stream through the runtime's SSE writer: coalesced writes and one heartbeat timer for all. When
 * the stream closes (the request scope ends) one observation record is written: how long it was open, the events
 * it delivered, the last cursor and why it ended.
 */
const sseResponse = (control: Sse.Control, stream: FrameStream, observed: Observed) =>
  Effect.gen(function*() {
    const openedAt = new Date()
    let events = 0
    let lastCursor: string | undefined
    let end: { readonly reason: ObservationEnd; readonly errorTag?: string | undefined } | undefined
    const frames = stream.frames.pipe(
      // Counted a chunk at a time, synchronously: an effect per frame would cost more than writing the frame.
      Stream.mapChunks((chunk) => {
        for (const frame of chunk) {
          if (frame._tag === "Error") {
            end = { reason: "error", errorTag: frame.data._tag }
            continue
          }
          events++
          lastCursor = frame.id
          if (frame.event === "stream.lagged") end = { reason: "lagged" }
        }
        return chunk
      }),
      Stream.onEnd(Effect.sync(() => end ??= { reason: "ended" }))
    )
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() =>
        observed.audit.observe({
          actor: observed.caller.actor,
          request_id: observed.caller.requestId,
          stream: observed.stream,
          runtime_id: observed.runtime_id,
          worker_id: observed.worker_id,
          cursor: observed.cursor,
          start_cursor: stream.start,
          last_cursor: lastCursor,
          opened_at: openedAt,
          closed_at: new Date(),
          events,
          end_reason: end?.reason ?? "closed",
          error_tag: end?.errorTag
        })
      )
    )
    const options = { control, startCursor: stream.start, server: "backend" as const }
    const readable = yield* Sse.bodyWith(frames, encodeFrames, frameCursor, options, isLaggedFrame)
    return Sse.response(readable, { "cache-control": "no-cache, no-store" })
  })

const isLaggedFrame = (frame: Frame) => frame._tag === "Event" && frame.event === "stream.lagged"

/**
 * A remote runtime's answer that is exactly the Backend's view (see `Relay`) goes out as the runtime's own bytes.
 * `HttpApiBuilder` sends a handler's `HttpServerResponse` as it is instead of encoding it, so the value's declared
 * type is kept for every other case, which is encoded by the endpoint's schema as usual.
 */
const relayed = <A>(value: A): A => {
  const text = Relay.textOf(value)
  return text === undefined ? value : HttpServerResponse.text(text, { contentType: "application/json" }) as unknown as A
}

/** For raw handlers: the relayed text, or the value as JSON. */
const respond = (value: object, status: number) => {
  const text = Relay.textOf(value)
  return text === undefined
    ? Effect.orDie(HttpServerResponse.json(value, { status }))
    : Effect.succeed(HttpServerResponse.text(text, { status, contentType: "application/json" }))
}

const cursorOf = (headers: { readonly "last-event-id"?: string | undefined }, urlCursor: string | undefined) =>
  headers["last-event-id"] ?? urlCursor

export const layerRuntimes = HttpApiBuilder.group(BrowserApi, "runtimes", (handlers) =>
  Effect.gen(function*() {
    const registry = yield* RuntimeRegistry
    return handlers
      .handle("list", () => Effect.flatMap(Caller, registry.list))
      .handle("get", ({ path }) => Effect.flatMap(Caller, (caller) => registry.get(caller, path.runtime_id)))
  }))

export const layerWorkers = HttpApiBuilder.group(BrowserApi, "workers", (handlers) =>
  Effect.gen(function*() {
    const registry = yield* RuntimeRegistry
    const events = yield* EventProxy
    const control = yield* Sse.SseControl
    const audit = yield* Audit
    return handlers
      .handle("list", ({ path, urlParams }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          const limit = yield* parseLimit(urlParams.limit)
          return relayed(
            yield* registry.listWorkers(caller, path.runtime_id, {
              status: urlParams.status,
              limit,
              page_token: urlParams.page_token
            })
          )
        }))
      .handleRaw("create", ({ path, request }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          const result = yield* registry.createWorker(caller, path.runtime_id, readJson(request))
          return yield* respond(result, result.created ? 201 : 200)
        }))
      .handle("get", ({ path }) =>
        Effect.flatMap(Caller, (caller) =>
          Effect.map(registry.getWorker(caller, path.runtime_id, path.worker_id), relayed)))
      .handleRaw("input", ({ path, request }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          const accepted = yield* registry.sendInput(caller, path.runtime_id, path.worker_id, readJson(request))
          return yield* respond(accepted, 202)
        }))
      .handle("cancel", ({ path, payload, urlParams }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          const waitMs = urlParams.wait_ms
          if (waitMs !== undefined && !/^\d{1,5}$/.test(waitMs)) {
            return yield* new InvalidInput({ field: "wait_ms", message: "wait_ms must be an integer from 0 to 60000" })
          }
          return relayed(
            yield* registry.cancel(caller, path.runtime_id, path.worker_id, {
              turn_id: payload?.turn_id,
              wait_ms: waitMs === undefined ? undefined : Number(waitMs)
            })
          )
        }))
      .handle("queue", ({ path }) =>
        Effect.flatMap(Caller, (caller) =>
          Effect.map(registry.queue(caller, path.runtime_id, path.worker_id), relayed)))
      .handle("clearQueue", ({ path }) =>
        Effect.flatMap(Caller, (caller) =>
          Effect.map(registry.cancelQueued(caller, path.runtime_id, path.worker_id), relayed)))
      .handle("cancelQueued", ({ path }) =>
        Effect.flatMap(Caller, (caller) =>
          Effect.map(registry.cancelQueued(caller, path.runtime_id, path.worker_id, path.input_id), relayed)))
      .handle("stop", ({ path }) =>
        Effect.flatMap(Caller, (caller) =>
          Effect.map(registry.stop(caller, path.runtime_id, path.worker_id), relayed)))
      .handle("restore", ({ path }) =>
        Effect.flatMap(Caller, (caller) =>
          Effect.map(registry.restore(caller, path.runtime_id, path.worker_id), relayed)))
      .handle("delete", ({ path }) =>
        Effect.flatMap(Caller, (caller) =>
          Effect.map(registry.delete(caller, path.runtime_id, path.worker_id), relayed)))
      .handle("transcript", ({ path, urlParams }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          const limit = yield* parseLimit(urlParams.limit)
          return relayed(
            yield* registry.transcript(caller, path.runtime_id, path.worker_id, {
              limit,
              page_token: urlParams.page_token
            })
          )
        }))
      .handle("events", ({ headers, path, urlParams }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          const cursor = cursorOf(headers, urlParams.cursor)
          const stream = yield* events.worker(caller, path.runtime_id, path.worker_id, cursor)
          return yield* sseResponse(control, stream, {
            audit,
            caller,
            stream: "worker",
            runtime_id: path.runtime_id,
            worker_id: path.worker_id,
            cursor
          })
        }))
  }))

export const layerEvents = HttpApiBuilder.group(BrowserApi, "events", (handlers) =>
  Effect.gen(function*() {
    const events = yield* EventProxy
    const control = yield* Sse.SseControl
    const audit = yield* Audit
    return handlers.handle("all", ({ headers, urlParams }) =>
      Effect.gen(function*() {
        const caller = yield* Caller
        const cursor = cursorOf(headers, urlParams.cursor)
        return yield* sseResponse(control, yield* events.all(caller, cursor), { audit, caller, stream: "all", cursor })
      }))
  }))

export const layerListings = HttpApiBuilder.group(BrowserApi, "listings", (handlers) =>
  Effect.gen(function*() {
    const registry = yield* RuntimeRegistry
    return handlers
      .handle("workers", () => Effect.flatMap(Caller, registry.allWorkers))
      .handle("hosts", () => Effect.flatMap(Caller, registry.hosts))
  }))

export const layerAudit = HttpApiBuilder.group(BrowserApi, "audit", (handlers) =>
  Effect.gen(function*() {
    const audit = yield* Audit
    return handlers
      .handle("page", ({ urlParams }) =>
        Effect.gen(function*() {
          const limit = yield* parseLimit(urlParams.limit)
          return yield* audit.page({
            limit,
            page_token: urlParams.page_token,
            runtime_id: urlParams.runtime_id,
            worker_id: urlParams.worker_id,
            action: urlParams.action
          })
        }))
      .handle("streams", ({ urlParams }) =>
        Effect.gen(function*() {
          const limit = yield* parseLimit(urlParams.limit)
          return yield* audit.observations({
            limit,
            page_token: urlParams.page_token,
            runtime_id: urlParams.runtime_id,
            worker_id: urlParams.worker_id,
            actor: urlParams.actor
          })
        }))
  }))

/** Where `/login` sends the browser once the cookie is set: the console. */
export const AFTER_LOGIN = "/"
/** Where `/login` sends a browser whose token is wrong: the console's sign-in form, which says so. */
export const LOGIN_FAILED = "/signin?failed=1"

const setSession = (id: string) => (response: HttpServerResponse.HttpServerResponse) =>
  HttpServerResponse.setCookie(response, SESSION_COOKIE, id, {
    httpOnly: true,
    sameSite: "strict",
    path: "/",
    maxAge: Duration.seconds(SESSION_TTL_SECONDS)
  }).pipe(Effect.orDie)

const wantsHtml = Effect.map(
  HttpServerRequest.HttpServerRequest,
  (request) => (request.headers.accept ?? "").includes("text/html")
)

export const layerSession = HttpApiBuilder.group(BrowserApi, "session", (handlers) =>
  Effect.gen(function*() {
    const { token } = yield* BackendToken
    const sessions = yield* Sessions
    return handlers
      .handle("login", ({ urlParams }) =>
        Effect.gen(function*() {
          if (urlParams.token === undefined || !tokenMatches(token, urlParams.token)) {
            // A person who opened a stale link sees the sign-in form saying so; a script gets the typed error.
            if (yield* wantsHtml) return HttpServerResponse.redirect(LOGIN_FAILED, { status: 303 })
            return yield* new Unauthorized({ message: "the login token is missing or wrong" })
          }
          const id = yield* sessions.create
          return yield* setSession(id)(HttpServerResponse.redirect(AFTER_LOGIN, { status: 303 }))
        }))
      .handle("healthz", () => Effect.succeed({ status: "ok" as const }))
  }))

/** A sign-in from the console's form: same origin only (the cookie is SameSite=Strict, and so is this). */
export const layerSignIn = HttpApiBuilder.group(BrowserApi, "signin", (handlers) =>
  Effect.gen(function*() {
    const { token } = yield* BackendToken
    const sessions = yield* Sessions
    return handlers.handle("signIn", ({ payload }) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const origin = request.headers.origin
        if (origin !== undefined && (!URL.canParse(origin) || new URL(origin).host !== request.headers.host)) {
          return yield* new Unauthorized({ message: "sign in from this Backend's own page" })
        }
        // JSON only: an HTML form on another site can post urlencoded or multipart bodies without a preflight.
        const contentType = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
        if (contentType !== "application/json") {
          return yield* new InvalidInput({ field: "content-type", message: "sign in with a JSON body" })
        }
        if (!tokenMatches(token, payload.token.trim())) {
          return yield* new Unauthorized({ message: "that is not this Backend's token" })
        }
        const id = yield* sessions.create
        return yield* setSession(id)(HttpServerResponse.empty({ status: 204 }))
      }))
  }))

/** Who is signed in, and sign-out: the session ends and the cookie is cleared. */
export const layerAccount = HttpApiBuilder.group(BrowserApi, "account", (handlers) =>
  Effect.gen(function*() {
    const sessions = yield* Sessions
    return handlers
      .handle("session", () => Effect.map(Caller, (caller) => ({ actor: caller.actor, signed_in: true as const })))
      .handle("signOut", () =>
        Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          const id = request.cookies[SESSION_COOKIE]
          if (id !== undefined) yield* sessions.remove(id)
          return yield* HttpServerResponse.empty({ status: 204 }).pipe(
            HttpServerResponse.expireCookie(SESSION_COOKIE, { path: "/", httpOnly: true, sameSite: "strict" }),
            Effect.orDie
          )
        }))
  }))

const workerGauge = Metrics.family(Metrics.workers, "runtime_id", "status")
const statusGauge = Metrics.family(Metrics.remoteStatus, "runtime_id", "status")

/**
 * Sets the per-runtime gauges from what each handle knows without waiting (a remote's last probe, the embedded
 * runtime's counts), then renders every metric of the process: the embedded runtime's are in the same registry.
 */
export const layerMetrics = HttpApiBuilder.group(BrowserApi, "metrics", (handlers) =>
  Effect.gen(function*() {
    const registry = yield* RuntimeRegistry
    const record = Effect.flatMap(Caller, (caller) =>
      Effect.forEach(registry.handles(caller), (handle) =>
        Effect.map(handle.describe, (view) => {
          for (const status of ["online", "degraded", "offline"] as const) {
            statusGauge(view.runtime_id, status).unsafeUpdate(view.status === status ? 1 : 0, [])
          }
          if (view.counts !== undefined) {
            for (const status of ["idle", "running", "stopped"] as const) {
              workerGauge(view.runtime_id, status).unsafeUpdate(view.counts[status], [])
            }
          }
        }), { discard: true }))
    return handlers.handle("scrape", () => Effect.zipRight(record, Metrics.prometheus))
  }))

/** Every group's handlers; needs the registry, the event proxy, audit, the Backend token and sessions. */
export const layer = (options: SseOptions) =>
  Layer.mergeAll(
    layerMetrics,
    layerRuntimes,
    layerWorkers,
    layerEvents,
    layerListings,
    layerAudit,
    layerSession,
    layerSignIn,
    layerAccount
  ).pipe(Layer.provide(Sse.SseControl.layer(options.heartbeat, options.stallTimeout)))
