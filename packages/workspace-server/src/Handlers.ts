import { HttpApiBuilder, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Metrics } from "@yoi/worker-runtime"
import { Chunk, Duration, Effect, Layer, Schedule, Stream } from "effect"
import { Audit } from "./Audit.js"
import { BackendToken, Caller, SESSION_COOKIE, SESSION_TTL_SECONDS, Sessions, tokenMatches } from "./Auth.js"
import { BrowserApi } from "./BrowserApi.js"
import { InvalidInput, PayloadTooLarge, Unauthorized } from "./Errors.js"
import { EventProxy, type Frame } from "./EventProxy.js"
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
}

const encoder = new TextEncoder()
const sseOpen = Metrics.family(Metrics.sseOpen, "server")("backend")
const sseOpened = Metrics.family(Metrics.sseOpened, "server")("backend")

const encodeFrame = (f: Frame): string => {
  switch (f._tag) {
    case "Event":
      return `id: ${f.id}\nevent: ${f.event}\ndata: ${JSON.stringify(f.data)}\n\n`
    case "Open":
      return f.id === undefined ? ": connected\n\n" : `: connected\nid: ${f.id}\n\n`
    case "Error":
      return `event: stream.error\ndata: ${JSON.stringify(f.data)}\n\n`
  }
}

const encodeFrames = (frames: Chunk.Chunk<Frame>): string => {
  let out = ""
  for (const f of frames) out += encodeFrame(f)
  return out
}

/**
 * Writes frames as SSE: the open frame first (Node sends headers only with the first write), each pulled chunk of
 * frames coalesced into one write, and a heartbeat comment while idle.
 */
export const sseResponse = (frames: Stream.Stream<Frame>, options: SseOptions) => {
  const heartbeat = Stream.fromSchedule(Schedule.spaced(options.heartbeat)).pipe(Stream.as(": heartbeat\n\n"))
  const body = frames.pipe(
    Stream.mapChunks((chunk) => Chunk.of(encodeFrames(chunk))),
    Stream.merge(heartbeat, { haltStrategy: "left" })
  )
  const counted = Stream.suspend(() => {
    sseOpened.unsafeUpdate(1, [])
    sseOpen.unsafeModify(1, [])
    return Stream.ensuring(body, Effect.sync(() => sseOpen.unsafeModify(-1, [])))
  })
  return HttpServerResponse.stream(
    Stream.map(counted, (text) => encoder.encode(text)),
    {
      contentType: "text/event-stream",
      headers: { "cache-control": "no-cache, no-store", "x-accel-buffering": "no" }
    }
  )
}

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

export const layerWorkers = (options: SseOptions) =>
  HttpApiBuilder.group(BrowserApi, "workers", (handlers) =>
    Effect.gen(function*() {
      const registry = yield* RuntimeRegistry
      const events = yield* EventProxy
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
        .handle("cancel", ({ path }) =>
          Effect.flatMap(Caller, (caller) =>
            Effect.map(registry.cancel(caller, path.runtime_id, path.worker_id), relayed)))
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
            const frames = yield* events.worker(caller, path.runtime_id, path.worker_id, cursor)
            return sseResponse(frames, options)
          }))
    }))

export const layerEvents = (options: SseOptions) =>
  HttpApiBuilder.group(BrowserApi, "events", (handlers) =>
    Effect.gen(function*() {
      const events = yield* EventProxy
      return handlers.handle("all", ({ headers, urlParams }) =>
        Effect.gen(function*() {
          const caller = yield* Caller
          const frames = yield* events.all(caller, cursorOf(headers, urlParams.cursor))
          return sseResponse(frames, options)
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
    return handlers.handle("page", ({ urlParams }) =>
      Effect.gen(function*() {
        const limit = yield* parseLimit(urlParams.limit)
        return yield* audit.page({
          limit,
          page_token: urlParams.page_token,
          runtime_id: urlParams.runtime_id,
          worker_id: urlParams.worker_id
        })
      }))
  }))

/** Where `/login` sends the browser once the cookie is set. */
export const AFTER_LOGIN = "/api/runtimes"

export const layerSession = HttpApiBuilder.group(BrowserApi, "session", (handlers) =>
  Effect.gen(function*() {
    const { token } = yield* BackendToken
    const sessions = yield* Sessions
    return handlers
      .handle("login", ({ urlParams }) =>
        Effect.gen(function*() {
          if (urlParams.token === undefined || !tokenMatches(token, urlParams.token)) {
            return yield* new Unauthorized({ message: "the login token is missing or wrong" })
          }
          const id = yield* sessions.create
          return yield* HttpServerResponse.redirect(AFTER_LOGIN, { status: 303 }).pipe(
            HttpServerResponse.setCookie(SESSION_COOKIE, id, {
              httpOnly: true,
              sameSite: "strict",
              path: "/",
              maxAge: Duration.seconds(SESSION_TTL_SECONDS)
            }),
            Effect.orDie
          )
        }))
      .handle("healthz", () => Effect.succeed({ status: "ok" as const }))
  }))

const workerGauge = Metrics.family(Metrics.workers, "runtime_id", "status")
const statusGauge = Metrics.family(Metrics.remoteStatus, "runtime_id", "status")

/** Sets the per-runtime gauges from what each handle knows without waiting (a remote's last probe), then renders. */
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
    layerRuntimes,
    layerWorkers(options),
    layerEvents(options),
    layerListings,
    layerAudit,
    layerSession,
    layerMetrics
  )
