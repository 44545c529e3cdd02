import { testPolicy } from "@yoi/worker-runtime/testing"
import { HttpClient, HttpClientRequest, HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { Auth as RuntimeAuth, RuntimeServer } from "@yoi/runtime-server"
import { layerMemory, Runtime, type RuntimeOptions, SseWire } from "@yoi/worker-runtime"
import { layerSqlite } from "@yoi/worker-runtime/sqlite"
import { Chunk, ConfigProvider, Context, Duration, Effect, Either, Layer, Redacted, type Scope, Stream } from "effect"
import * as NodeFs from "node:fs"
import * as NodeHttp from "node:http"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as Audit from "../src/Audit.js"
import { BackendToken } from "../src/Auth.js"
import * as Backend from "../src/Backend.js"
import { type BackendConfig, resolve } from "../src/Config.js"
import * as Policy from "../src/Policy.js"
import * as Runtimes from "../src/Runtimes.js"
import type * as Store from "../src/Store.js"

export const TOKEN = "backend-test-token-3f9d2a"

/** Every browser route, with a body where it takes one; `local` and `w_1` are replaced as needed. */
export const browserRoutes: ReadonlyArray<readonly ["GET" | "POST" | "DELETE", string, unknown?]> = [
  ["GET", "/api/runtimes"],
  ["GET", "/api/runtimes/local"],
  ["GET", "/api/runtimes/local/workers"],
  ["POST", "/api/runtimes/local/workers", { display_name: "Ada" }],
  ["GET", "/api/runtimes/local/workers/w_1"],
  ["POST", "/api/runtimes/local/workers/w_1/input", { text: "hi" }],
  ["POST", "/api/runtimes/local/workers/w_1/cancel"],
  ["POST", "/api/runtimes/local/workers/w_1/stop"],
  ["POST", "/api/runtimes/local/workers/w_1/restore"],
  ["DELETE", "/api/runtimes/local/workers/w_1"],
  ["GET", "/api/runtimes/local/workers/w_1/transcript"],
  ["GET", "/api/runtimes/local/workers/w_1/events"],
  ["GET", "/api/events"],
  ["GET", "/api/workers"],
  ["GET", "/api/hosts"],
  ["GET", "/api/audit"],
  ["GET", "/api/audit/streams"],
  ["GET", "/api/session"],
  ["DELETE", "/api/session"]
]

/** A runtime served by the real `yoi-runtime` server layer on a loopback port, with a known token. */
export const startRuntimeServer = (
  token: string,
  options: RuntimeOptions & { readonly sqlite?: string } = {},
  port = 0
): Effect.Effect<{ readonly url: string; readonly runtime: Runtime.RuntimeService }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      RuntimeServer.layer({
        host: "127.0.0.1",
        port,
        auth: RuntimeAuth.token(Redacted.make(token)),
        docs: false,
        graceMs: 200,
        events: { heartbeat: Duration.seconds(1) }
      }).pipe(Layer.provideMerge(
        options.sqlite === undefined
          ? layerMemory({ policy: testPolicy, ...options })
          : layerSqlite({ policy: testPolicy, ...options, filename: options.sqlite })
      ))
    ).pipe(Effect.orDie)
    const address = Context.get(context, HttpServer.HttpServer).address
    const bound = address._tag === "TcpAddress" ? address.port : 0
    return { url: `http://127.0.0.1:${bound}`, runtime: Context.get(context, Runtime.Runtime) }
  })

export interface FakeServer {
  readonly url: string
  readonly requests: () => ReadonlyArray<string>
}

/** A plain HTTP server answering every request with `respond` (a remote that misbehaves). */
export const startFakeServer = (
  respond: (req: NodeHttp.IncomingMessage, res: NodeHttp.ServerResponse) => void
): Effect.Effect<FakeServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: NodeHttp.Server; readonly url: string; readonly log: Array<string> }>((resume) => {
      const log: Array<string> = []
      const server = NodeHttp.createServer((req, res) => {
        log.push(`${req.method} ${req.url}`)
        respond(req, res)
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({ server, url: `http://127.0.0.1:${port}`, log }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ log, url }) => ({ url, requests: () => log.slice() })))

/** A loopback port nothing listens on (bound, then released). */
export const closedPort = Effect.async<number>((resume) => {
  const server = NodeHttp.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

export const tempDir = (prefix = "yoi-backend-test-") =>
  Effect.acquireRelease(
    Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), prefix))),
    (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
  )

export interface BackendUnderTest {
  readonly client: HttpClient.HttpClient
  readonly url: string
}

export interface StartOptions {
  /** Values the config's `{"env": ...}` token references read. */
  readonly env?: Record<string, string> | undefined
  readonly heartbeat?: Duration.DurationInput | undefined
  readonly runtimes?: Runtimes.RuntimesOptions | undefined
  readonly listingTimeout?: Duration.DurationInput | undefined
  /** The Backend database (sessions and audit); default an in-memory audit and in-memory sessions. */
  readonly database?: Store.Database | undefined
}

/** Fast probes and reconnects, so that tests see health changes within a second. */
export const fastRemote: Runtimes.RuntimesOptions = {
  drainGrace: Duration.millis(200),
  remote: {
    probeInterval: Duration.millis(150),
    timeout: Duration.seconds(2),
    reconnect: { initialDelay: Duration.millis(50), maxDelay: Duration.millis(300) }
  }
}

/**
 * The whole Backend from a config document, on a loopback port, with the test token and an in-memory audit store.
 * The returned client is already pointed at the Backend.
 */
export const startBackend = (
  config: typeof BackendConfig.Encoded,
  options: StartOptions = {}
): Effect.Effect<BackendUnderTest, never, Scope.Scope> =>
  Effect.gen(function*() {
    // Tests that are not about the Companion or the embedded runtime's policy get neither a Companion nor a
    // policy of their own: the test echo profiles and scopes anywhere.
    const embedded = config.embedded === undefined || config.embedded === null
      ? config.embedded
      : { ...testPolicy, ...config.embedded }
    const resolved = yield* resolve(
      { ...config, embedded, companion: config.companion === undefined ? null : config.companion },
      "/nonexistent-data-dir"
    ).pipe(Effect.orDie)
    const handles = Runtimes.layer(resolved, options.runtimes ?? fastRemote).pipe(
      Layer.provide([NodeHttpClient.layerUndici, NodeContext.layer])
    )
    const store = options.database === undefined ? undefined : Backend.layerStore(options.database)
    const backend = Backend.layerServing(handles, {
      policy: Policy.layerConfig(resolved),
      audit: store ?? Audit.layerSqlite(":memory:"),
      sessions: store,
      server: { heartbeat: options.heartbeat ?? Duration.seconds(1), ...Backend.serverOptions(resolved) },
      registry: { listingTimeout: options.listingTimeout ?? Duration.seconds(3), workspaceId: resolved.workspaceId }
    }).pipe(
      Layer.provideMerge(NodeHttpServer.layerTest),
      Layer.provide(BackendToken.layer(TOKEN))
    )
    const provider = ConfigProvider.fromMap(new Map(Object.entries(options.env ?? {})))
    const context = yield* Layer.build(backend).pipe(Effect.withConfigProvider(provider), Effect.orDie)
    const address = Context.get(context, HttpServer.HttpServer).address
    const port = address._tag === "TcpAddress" ? address.port : 0
    return { client: Context.get(context, HttpClient.HttpClient), url: `http://127.0.0.1:${port}` }
  })

export interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly text: string
  readonly json: any
}

export interface RequestOptions {
  readonly body?: unknown
  /** Raw body text (sent as JSON content type), for malformed bodies. */
  readonly rawBody?: string | undefined
  /** The bearer token; `null` sends none. Default: the test token. */
  readonly token?: string | null | undefined
  readonly headers?: Record<string, string> | undefined
}

export const call = (
  client: HttpClient.HttpClient,
  method: "GET" | "POST" | "DELETE",
  path: string,
  options: RequestOptions = {}
): Effect.Effect<Reply> =>
  Effect.gen(function*() {
    let request = HttpClientRequest.make(method)(path)
    const token = options.token === undefined ? TOKEN : options.token
    if (token !== null) request = HttpClientRequest.bearerToken(request, token)
    if (options.headers !== undefined) request = HttpClientRequest.setHeaders(request, options.headers)
    if (options.rawBody !== undefined) {
      request = HttpClientRequest.bodyText(request, options.rawBody, options.headers?.["content-type"] ?? "application/json")
    } else if (options.body !== undefined) {
      request = yield* HttpClientRequest.bodyJson(request, options.body).pipe(Effect.orDie)
    }
    const response = yield* client.execute(request).pipe(Effect.orDie)
    const text = yield* response.text.pipe(Effect.orDie)
    let json: unknown = undefined
    if (text.length > 0 && (response.headers["content-type"] ?? "").includes("json")) json = JSON.parse(text)
    return { status: response.status, headers: response.headers, text, json }
  }).pipe(Effect.scoped)

export interface SseFrame {
  readonly id: string | undefined
  readonly event: string
  readonly data: any
}

export interface SseConnection {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  /** Everything received so far, raw. */
  readonly raw: () => string
  readonly frames: () => ReadonlyArray<SseFrame>
  /** Polls until `done` holds (at most `timeout`), then returns the frames. */
  readonly waitFor: (
    done: (frames: ReadonlyArray<SseFrame>) => boolean,
    what: string,
    timeout?: Duration.DurationInput
  ) => Effect.Effect<ReadonlyArray<SseFrame>>
}

const parseFrames = (raw: string): Array<SseFrame> =>
  Either.getOrThrow(new SseWire.SseParser().feed(raw)).flatMap((item) =>
    item._tag === "Event" ? [{ id: item.id, event: item.event, data: JSON.parse(item.data) }] : []
  )

/** Opens an SSE stream and keeps reading it in the background for the life of the scope. */
export const connectSse = (
  client: HttpClient.HttpClient,
  path: string,
  options: { readonly token?: string | null; readonly headers?: Record<string, string> } = {}
): Effect.Effect<SseConnection, never, Scope.Scope> =>
  Effect.gen(function*() {
    let request = HttpClientRequest.get(path)
    const token = options.token === undefined ? TOKEN : options.token
    if (token !== null) request = HttpClientRequest.bearerToken(request, token)
    if (options.headers !== undefined) request = HttpClientRequest.setHeaders(request, options.headers)
    const response = yield* client.execute(request).pipe(Effect.orDie)
    let raw = ""
    yield* response.stream.pipe(
      Stream.decodeText(),
      Stream.runForEach((text) => Effect.sync(() => (raw += text))),
      Effect.ignore,
      Effect.forkScoped
    )
    const complete = () => raw.slice(0, raw.lastIndexOf("\n\n") + 2)
    const frames = () => parseFrames(complete())
    return {
      status: response.status,
      headers: response.headers,
      raw: () => raw,
      frames,
      waitFor: (done, what, timeout = Duration.seconds(10)) =>
        eventually(Effect.sync(frames), done, what, timeout).pipe(
          Effect.catchAllDefect(() => Effect.die(`timed out waiting for ${what}; received: ${raw.slice(-3000)}`))
        )
    }
  })

/** Polls an effect until its result satisfies `done`. */
export const eventually = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  done: (a: A) => boolean,
  what: string,
  timeout: Duration.DurationInput = Duration.seconds(10)
): Effect.Effect<A, E, R> => {
  const loop: Effect.Effect<A, E, R> = Effect.flatMap(effect, (a) =>
    done(a) ? Effect.succeed(a) : Effect.zipRight(Effect.sleep(Duration.millis(20)), Effect.suspend(() => loop)))
  return loop.pipe(
    Effect.timeoutFail({ duration: timeout, onTimeout: () => `timed out waiting for ${what}` }),
    Effect.catchIf((e): e is string => typeof e === "string", (message) => Effect.die(message))
  )
}

export const collect = <A, E>(stream: Stream.Stream<A, E>, n: number) =>
  Effect.map(Stream.runCollect(Stream.take(stream, n)), Chunk.toArray)
