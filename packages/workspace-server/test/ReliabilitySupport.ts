import { HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { HttpErrors } from "@yoi/runtime-server"
import { ConfigProvider, Context, Duration, Effect, Layer, type Scope } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"
import { BackendToken } from "../src/Auth.js"
import * as Backend from "../src/Backend.js"
import { type BackendConfig, resolve } from "../src/Config.js"
import { TOKEN } from "./support.js"

/**
 * The whole Backend as `yoi-backend` serves it (its own `node:http` server, whose protocol-level refusals are typed),
 * on a loopback port, with an in-memory audit store and fast probes.
 */
export const startServedBackend = (
  config: typeof BackendConfig.Encoded,
  options: {
    readonly env?: Record<string, string>
    readonly timeout?: Duration.DurationInput
    readonly heartbeat?: Duration.DurationInput
  } = {}
): Effect.Effect<number, never, Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* resolve(config, "/nonexistent-data-dir").pipe(Effect.orDie)
    const backend = Backend.layer({
      config: resolved,
      auditDatabase: ":memory:",
      server: { heartbeat: options.heartbeat ?? Duration.seconds(1) },
      runtimes: {
        drainGrace: Duration.millis(200),
        remote: {
          probeInterval: Duration.millis(100),
          timeout: options.timeout ?? Duration.seconds(2),
          reconnect: { initialDelay: Duration.millis(50), maxDelay: Duration.millis(300) }
        }
      }
    }).pipe(
      Layer.provideMerge(NodeHttpServer.layer(HttpErrors.createServer, { host: "127.0.0.1", port: 0 })),
      Layer.provide([NodeContext.layer, NodeHttpClient.layerUndici, BackendToken.layer(TOKEN)]),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(options.env ?? {})))))
    )
    const context = yield* Layer.build(backend).pipe(Effect.orDie)
    const address = Context.get(context, HttpServer.HttpServer).address
    return address._tag === "TcpAddress" ? address.port : 0
  })

export interface RawReply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly timedOut: boolean
}

/** A request written byte for byte on a raw socket; an event stream counts as answered once its first bytes are in. */
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

/** The Backend's error catalogue (docs/backend.md): each `_tag` and its one status. */
export const catalogue: ReadonlyMap<string, number> = new Map([
  ["InvalidInput", 400],
  ["CursorInvalid", 400],
  ["Unauthorized", 401],
  ["Forbidden", 403],
  ["RuntimeNotFound", 404],
  ["WorkerNotFound", 404],
  ["RouteNotFound", 404],
  ["RequestTimeout", 408],
  ["WorkerBusy", 409],
  ["WorkerStopped", 409],
  ["WorkerAlreadyExists", 409],
  ["WorkerStateConflict", 409],
  ["ScopeConflict", 409],
  ["CursorExpired", 410],
  ["PayloadTooLarge", 413],
  ["RequestHeadersTooLarge", 431],
  ["InternalError", 500],
  ["UnsupportedOperation", 501],
  ["RuntimeUnavailable", 503],
  ["UpstreamTimeout", 504]
])

/**
 * Why an answer is not a typed error of the catalogue with its status (undefined when it is). By default only 4xx
 * are acceptable; `success` also accepts 2xx and `unavailable` the typed 503/504 of a remote that is down.
 */
export const untyped = (
  reply: RawReply,
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

/**
 * A TCP proxy between the Backend and a remote runtime that injects faults: stall (hold every byte, both ways, on
 * open and new connections), cut every open connection, and follow the runtime to a new port. Bytes always leave in
 * the order they came.
 */
export class FaultProxy {
  private stalled = false
  private readonly pairs = new Set<{
    readonly client: Net.Socket
    readonly upstream: Net.Socket
    readonly held: Array<readonly [Net.Socket, Buffer]>
  }>()

  private constructor(private upstreamPort: number, readonly server: Net.Server, readonly port: number) {}

  static readonly start = (upstreamPort: number): Effect.Effect<FaultProxy, never, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.async<FaultProxy>((resume) => {
        const holder: { proxy?: FaultProxy } = {}
        const server = Net.createServer((socket) => holder.proxy?.accept(socket))
        server.listen(0, "127.0.0.1", () => {
          holder.proxy = new FaultProxy(upstreamPort, server, (server.address() as Net.AddressInfo).port)
          resume(Effect.succeed(holder.proxy))
        })
      }),
      (proxy) =>
        Effect.async<void>((resume) => {
          proxy.cut()
          proxy.server.close(() => resume(Effect.void))
        })
    )

  get url() {
    return `http://127.0.0.1:${this.port}`
  }

  private accept(client: Net.Socket) {
    const upstream = Net.connect(this.upstreamPort, "127.0.0.1")
    const pair = { client, upstream, held: [] as Array<readonly [Net.Socket, Buffer]> }
    this.pairs.add(pair)
    const close = () => {
      this.pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    const forward = (to: Net.Socket) => (chunk: Buffer) => {
      if (this.stalled || pair.held.length > 0) pair.held.push([to, chunk])
      else to.write(chunk)
    }
    client.on("data", forward(upstream))
    upstream.on("data", forward(client))
    for (const socket of [client, upstream]) {
      socket.on("error", close)
      socket.on("close", close)
    }
  }

  stall() {
    this.stalled = true
  }

  pass() {
    this.stalled = false
    for (const pair of this.pairs) {
      for (const [to, chunk] of pair.held.splice(0)) to.write(chunk)
    }
  }

  cut() {
    for (const pair of this.pairs) {
      pair.client.resetAndDestroy()
      pair.upstream.destroy()
    }
    this.pairs.clear()
  }

  retarget(port: number) {
    this.upstreamPort = port
  }
}

export interface Frame {
  readonly id: string | undefined
  readonly event: string | undefined
  readonly data: any
}

/**
 * An event stream read over plain `node:http` for the life of the scope, keeping every frame; like a browser's
 * `EventSource`, it reconnects with `Last-Event-ID` whenever the stream ends.
 */
export const follow = (
  port: number,
  path: string
): Effect.Effect<{ readonly frames: Array<Frame>; readonly reconnects: () => number }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const frames: Array<Frame> = []
    let reconnects = 0
    let lastId: string | undefined
    let current: Http.ClientRequest | undefined
    let stopped = false
    const connect = () => {
      let buffer = ""
      const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }
      if (lastId !== undefined) headers["last-event-id"] = lastId
      const again = () => {
        if (stopped) return
        reconnects += 1
        setTimeout(connect, 100)
      }
      current = Http.get({ host: "127.0.0.1", port, path, headers, agent: false }, (response) => {
        response.setEncoding("utf8")
        response.on("data", (chunk: string) => {
          buffer += chunk
          for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n")) {
            const block = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            const id = /^id: (.*)$/m.exec(block)?.[1]
            const data = /^data: (.*)$/m.exec(block)?.[1]
            if (id !== undefined) lastId = id
            const event = /^event: (.*)$/m.exec(block)?.[1]
            if (data !== undefined) frames.push({ id, event, data: JSON.parse(data) })
          }
        })
        response.on("end", again)
      })
      current.on("error", again)
    }
    yield* Effect.acquireRelease(Effect.sync(connect), () =>
      Effect.sync(() => {
        stopped = true
        current?.destroy()
      }))
    return { frames, reconnects: () => reconnects }
  })
