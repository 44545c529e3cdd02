/**
 * Test support for servers built on this package (`@yoi/runtime-server/testing`): a raw-socket HTTP client that can
 * send what no HTTP client would, the runtime's error catalogue as data, and the check that an answer is a typed
 * error of a catalogue. Shared by the runtime's and the Backend's reliability tests.
 */
import { HttpServer } from "@effect/platform"
import { Domain, SseWire } from "@yoi/worker-runtime"
import { testPolicy } from "@yoi/worker-runtime/testing"
import { Effect, Either, Queue, Schema, type Scope } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Path from "node:path"

/**
 * Writes a `--config` file with every test echo profile (`@yoi/worker-runtime/testing`) and scopes anywhere into
 * `dir`, and returns its path: engine settings are runtime configuration, so tests name profiles.
 */
export const writeTestConfig = (dir: string, extra: Record<string, unknown> = {}): string => {
  const file = Path.join(dir, "runtime-config.json")
  Fs.writeFileSync(file, JSON.stringify({ ...testPolicy, ...extra }))
  return file
}

/** Every `_tag` a server may answer with, and its one status. */
export type Catalogue = ReadonlyMap<string, number>

/** The runtime's error catalogue (docs/errors.md). */
export const runtimeCatalogue: Catalogue = new Map([
  ["InvalidInput", 400],
  ["CursorInvalid", 400],
  ["Unauthorized", 401],
  ["WorkerNotFound", 404],
  ["RouteNotFound", 404],
  ["RequestTimeout", 408],
  ["WorkerBusy", 409],
  ["WorkerStopped", 409],
  ["WorkerAlreadyExists", 409],
  ["WorkerStateConflict", 409],
  ["ScopeConflict", 409],
  ["ScopeNotPermitted", 403],
  ["CursorExpired", 410],
  ["PayloadTooLarge", 413],
  ["RequestHeadersTooLarge", 431],
  ["InternalError", 500],
  ["UnsupportedOperation", 501],
  ["RuntimeUnavailable", 503]
])

/** One answer read off a raw socket; `status` 0 when the connection ended without one, `timedOut` on a hang. */
export interface RawReply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly timedOut: boolean
}

/**
 * A request written byte for byte on a raw socket (`connection: close` unless `raw` is given): broken escapes, lying
 * lengths, oversized headers, a CONNECT. An event stream counts as answered once its headers and first bytes are in.
 */
export const send = (
  port: number,
  request: {
    readonly method?: string
    readonly path?: string
    readonly headers?: ReadonlyArray<readonly [string, string]>
    readonly body?: string
    readonly raw?: string
  }
): Effect.Effect<RawReply> =>
  Effect.async<RawReply>((resume) => {
    const headers = [["host", `127.0.0.1:${port}`], ["connection", "close"], ...(request.headers ?? [])]
    if (request.body !== undefined && !headers.some(([k]) => k === "content-length" || k === "transfer-encoding")) {
      headers.push(["content-length", String(Buffer.byteLength(request.body))])
    }
    const head = request.raw ??
      `${request.method ?? "GET"} ${request.path ?? "/"} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n`
    const socket = Net.connect(port, "127.0.0.1")
    let data = Buffer.alloc(0)
    let done = false
    const finish = (timedOut: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      const split = data.indexOf("\r\n\r\n")
      const lines = data.subarray(0, split === -1 ? data.length : split).toString("latin1").split("\r\n")
      const parsed: Record<string, string> = {}
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":")
        if (colon > 0) parsed[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
      }
      const raw = split === -1 ? Buffer.alloc(0) : data.subarray(split + 4)
      resume(Effect.succeed({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? "")?.[1] ?? 0),
        headers: parsed,
        body: (parsed["transfer-encoding"] === "chunked" ? dechunk(raw) : raw).toString("utf8"),
        timedOut
      }))
    }
    const complete = () => {
      const split = data.indexOf("\r\n\r\n")
      if (split === -1) return false
      const head = data.subarray(0, split).toString("latin1")
      const rest = data.subarray(split + 4)
      if (/content-type: text\/event-stream/i.test(head)) return rest.length > 0
      if (/transfer-encoding: chunked/i.test(head)) return rest.includes("0\r\n\r\n")
      const length = /content-length: (\d+)/i.exec(head)
      return length !== null && rest.length >= Number(length[1])
    }
    const timer = setTimeout(() => finish(true), 10_000)
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk])
      if (complete()) finish(false)
    })
    socket.on("error", () => finish(false))
    socket.on("close", () => finish(false))
    socket.on("connect", () => {
      socket.write(head, "latin1")
      if (request.body !== undefined) socket.write(request.body)
    })
  })

const dechunk = (raw: Buffer): Buffer => {
  const parts: Array<Buffer> = []
  let at = 0
  for (;;) {
    const eol = raw.indexOf("\r\n", at)
    const size = eol === -1 ? 0 : parseInt(raw.subarray(at, eol).toString("latin1"), 16)
    if (!(size > 0)) return Buffer.concat(parts)
    parts.push(raw.subarray(eol + 2, eol + 2 + size))
    at = eol + 2 + size + 2
  }
}

/**
 * Why an answer is not a typed error of the catalogue with its status (undefined when it is). By default only 4xx
 * are acceptable; `success` also accepts 2xx and `unavailable` the typed 503/504 of a remote that is down.
 */
export const untyped = (
  reply: RawReply,
  catalogue: Catalogue,
  options: { readonly success?: boolean; readonly unavailable?: boolean } = {}
): string | undefined => {
  if (reply.timedOut) return "no answer (a hang)"
  if (reply.status === 0) return "the connection ended without an answer"
  if (reply.status < 300 && options.success === true) return undefined
  const allowed = reply.status >= 400 && (reply.status < 500 || (options.unavailable === true && reply.status > 502))
  if (!allowed) return `answered ${reply.status}: ${reply.body.slice(0, 200)}`
  const body = /^\s*\{/.test(reply.body) ? JSON.parse(reply.body) as { _tag?: unknown; message?: unknown } : undefined
  if (body === undefined || typeof body._tag !== "string") return `${reply.status} without a typed body: ${reply.body.slice(0, 200)}`
  if (catalogue.get(body._tag) !== reply.status) return `${body._tag} with status ${reply.status}`
  return typeof body.message === "string" && body.message.length > 0 ? undefined : `${body._tag} without a message`
}

/** The bearer token `connect` sends unless told otherwise. */
export const SSE_TEST_TOKEN = "test-token-0123456789"

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

/** The port of the `HttpServer` in context (0 without one). */
export const port = Effect.map(Effect.serviceOption(HttpServer.HttpServer), (server) =>
  server._tag === "Some" && server.value.address._tag === "TcpAddress" ? server.value.address.port : 0)

export const connect = (
  path: string,
  options: { readonly headers?: Record<string, string>; readonly token?: string | null; readonly port?: number } = {}
): Effect.Effect<RawStream, never, Scope.Scope> =>
  Effect.gen(function*() {
    const target = options.port ?? (yield* port)
    const signal = yield* Queue.sliding<void>(1)
    const headers: Record<string, string> = { accept: "text/event-stream", ...options.headers }
    if (options.token !== null) headers.authorization = `Bearer ${options.token ?? SSE_TEST_TOKEN}`
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
