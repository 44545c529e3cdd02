import { HttpServer } from "@effect/platform"
import { Domain, EventLog, SseWire } from "@yoi/worker-runtime"
import { Effect, Either, Queue, Schema, type Scope } from "effect"
import * as Http from "node:http"

export const TOKEN = "test-token-0123456789"

/** Every event a test reads off the wire is decoded with the event union, as a client would. */
const decodeEvent = Schema.decodeUnknownSync(Schema.parseJson(Domain.RuntimeEvent))

/** A raw SSE connection over `node:http`, so a test can see exact bytes, stop reading, or cut the socket. */
export interface RawStream {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  /** Everything received so far, as text. */
  readonly text: () => string
  readonly items: () => ReadonlyArray<SseWire.SseItem>
  /** The events, without the position marks (`stream.live`, `stream.bookmark`). */
  readonly events: () => ReadonlyArray<Domain.RuntimeEvent>
  /** Every event, position marks included. */
  readonly all: () => ReadonlyArray<Domain.RuntimeEvent>
  readonly ended: () => boolean
  /** Waits (up to 20 s) until `predicate` holds; fails the test otherwise. */
  readonly waitFor: (predicate: () => boolean, what: string) => Effect.Effect<void>
  readonly pause: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
  /** Cuts the connection as a crashing client would. */
  readonly destroy: Effect.Effect<void>
}

/** A position mark: the end of a replay or a bookmark, not an event of the log. */
export const isMark = (event: Domain.RuntimeEvent) => event.kind === "stream.live" || event.kind === "stream.bookmark"

export const port = Effect.map(HttpServer.HttpServer, (server) =>
  server.address._tag === "TcpAddress" ? server.address.port : 0)

export const connect = (
  path: string,
  options: { readonly headers?: Record<string, string>; readonly token?: string | null; readonly port?: number } = {}
): Effect.Effect<RawStream, never, HttpServer.HttpServer | Scope.Scope> =>
  Effect.gen(function*() {
    const target = options.port ?? (yield* port)
    const signal = yield* Queue.sliding<void>(1)
    const headers: Record<string, string> = { accept: "text/event-stream", ...options.headers }
    if (options.token !== null) headers.authorization = `Bearer ${options.token ?? TOKEN}`
    const res = yield* Effect.acquireRelease(
      Effect.async<Http.IncomingMessage>((resume) => {
        const req = Http.get({ host: "127.0.0.1", port: target, path, headers, agent: false }, (res) => {
          resume(Effect.succeed(res))
        })
        req.on("error", (error) => resume(Effect.die(error)))
      }),
      (res) => Effect.sync(() => res.destroy())
    )
    let text = ""
    let ended = false
    const parser = new SseWire.SseParser()
    const items: Array<SseWire.SseItem> = []
    const events: Array<Domain.RuntimeEvent> = []
    const all: Array<Domain.RuntimeEvent> = []
    res.setEncoding("utf8")
    res.on("data", (chunk: string) => {
      text += chunk
      const parsed = Either.getOrThrow(parser.feed(chunk))
      for (const item of parsed) {
        items.push(item)
        // A `stream.error` frame's data is the error alone, not an envelope; it stays in `items`.
        if (item._tag === "Event" && item.event !== "stream.error" && res.statusCode === 200) {
          const event = decodeEvent(item.data)
          all.push(event)
          if (!isMark(event)) events.push(event)
        }
      }
      signal.unsafeOffer(undefined)
    })
    const finish = () => {
      ended = true
      signal.unsafeOffer(undefined)
    }
    res.on("end", finish)
    res.on("close", finish)
    res.on("error", finish)
    const waitFor = (predicate: () => boolean, what: string): Effect.Effect<void> =>
      Effect.gen(function*() {
        while (!predicate()) {
          if (ended && !predicate()) return yield* Effect.dieMessage(`the stream ended before ${what}`)
          yield* Queue.take(signal)
        }
      }).pipe(
        Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => `timed out waiting for ${what}` }),
        Effect.orDie
      )
    return {
      status: res.statusCode ?? 0,
      headers: res.headers,
      text: () => text,
      items: () => items,
      events: () => events,
      all: () => all,
      ended: () => ended,
      waitFor,
      pause: Effect.sync(() => void res.pause()),
      resume: Effect.sync(() => void res.resume()),
      destroy: Effect.sync(() => res.destroy())
    } satisfies RawStream
  })

/** Appends `count` events (in batches) straight to the log; each carries `bytes` of padding. */
export const appendEvents = (count: number, options: { readonly bytes?: number; readonly batch?: number } = {}) =>
  Effect.gen(function*() {
    const log = yield* EventLog.EventLog
    const pad = "x".repeat(options.bytes ?? 16)
    const batch = options.batch ?? 100
    for (let i = 0; i < count; i += batch) {
      const n = Math.min(batch, count - i)
      yield* log.append(
        Array.from({ length: n }, (_, j) => ({
          kind: "runtime.diagnostic" as const,
          data: { id: i + j, severity: "info" as const, code: "test_event", message: pad }
        }))
      )
    }
  })

/** The number an event of `appendEvents` carries (its `data.id`), or -1 for any other event. */
export const markOf = (event: Domain.RuntimeEvent): number =>
  event.kind === "runtime.diagnostic" ? event.data.id ?? -1 : -1

/** The seqs are exactly `from + 1 .. to`. */
export const contiguous = (events: ReadonlyArray<Domain.RuntimeEvent>, from: number, to: number) => {
  if (events.length !== to - from) return false
  return events.every((e, i) => e.seq === from + 1 + i)
}

/** Polls (live clock) until `check` holds, up to 20 s. */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, what: string) =>
  Effect.gen(function*() {
    while (!(yield* check)) yield* Effect.sleep("5 millis")
  }).pipe(
    Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => `timed out waiting for ${what}` }),
    Effect.orDie
  )
