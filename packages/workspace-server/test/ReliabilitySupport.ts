import { testPolicy } from "@yoi/worker-runtime/testing"
import { HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { HttpErrors } from "@yoi/runtime-server"
import * as Testing from "@yoi/runtime-server/testing"
import { SseWire } from "@yoi/worker-runtime"
import { ConfigProvider, Context, Duration, Effect, Either, Layer, type Scope } from "effect"
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
    const embedded = config.embedded === undefined || config.embedded === null
      ? config.embedded
      : { ...testPolicy, ...config.embedded }
    const resolved = yield* resolve(
      { ...config, embedded, companion: config.companion === undefined ? null : config.companion },
      "/nonexistent-data-dir"
    ).pipe(Effect.orDie)
    const backend = Backend.layer({
      config: resolved,
      database: { _tag: "Sqlite", filename: ":memory:" },
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

/** The Backend's error catalogue (docs/backend.md): the runtime's plus its own tags. */
export const catalogue: Testing.Catalogue = new Map([
  ...Testing.runtimeCatalogue,
  ["Forbidden", 403],
  ["RuntimeNotFound", 404],
  ["UpstreamTimeout", 504]
])

/** Why an answer is not a typed error of the Backend's catalogue (undefined when it is); see `Testing.untyped`. */
export const untyped = (reply: Testing.RawReply, options: Parameters<typeof Testing.untyped>[2] = {}) =>
  Testing.untyped(reply, catalogue, options)

export { type RawReply, send } from "@yoi/runtime-server/testing"

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
      const parser = new SseWire.SseParser()
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
          for (const item of Either.getOrThrow(parser.feed(chunk))) {
            if (item._tag === "Comment") continue
            if (item.id !== undefined) lastId = item.id
            if (item._tag === "Event") frames.push({ id: item.id, event: item.event, data: JSON.parse(item.data) })
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
