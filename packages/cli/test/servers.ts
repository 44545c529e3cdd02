import { testPolicy } from "@yoi/worker-runtime/testing"
import { HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { Auth as RuntimeAuth, RuntimeServer } from "@yoi/runtime-server"
import { layerMemory } from "@yoi/worker-runtime"
import { Audit, Auth, Backend, Config, Policy, Runtimes } from "@yoi/workspace-server"
import { ConfigProvider, Context, Duration, Effect, Either, Layer, Redacted } from "effect"
import * as Esbuild from "esbuild"
import { type ChildProcess, spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeNet from "node:net"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"

export const BACKEND_TOKEN = "cli-test-backend-token-6b1f0e"
export const RUNTIME_TOKEN = "cli-test-runtime-token-93c2aa"
/** The `yoi` bin as shipped (the bundle `npm run build` makes, on plain node). */
export const BIN = NodePath.join(import.meta.dirname, "..", "bin", "yoi.mjs")

/**
 * The sources (the `source` export condition), bundled into one file as the bin's build does: the tests run the code
 * as it stands, never a stale build. One test also runs the shipped bin.
 */
const bundle = Effect.promise(async () => {
  const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "yoi-cli-bundle-"))
  const outfile = NodePath.join(dir, "yoi.mjs")
  await Esbuild.build({
    entryPoints: [NodePath.join(import.meta.dirname, "..", "src", "main.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    conditions: ["source"],
    outfile,
    banner: { js: "import { createRequire as __yoiRequire } from \"node:module\"; const require = __yoiRequire(import.meta.url);" },
    logLevel: "warning"
  })
  return { dir, outfile }
})

/** A real Backend (embedded runtime `local`, remote runtime `edge`) and the real `edge` runtime, on port 0. */
export interface Servers {
  readonly backendUrl: string
  readonly runtimeUrl: string
  /** A directory for this suite's config files (`XDG_CONFIG_HOME`). */
  readonly home: string
  /** The `yoi` program to run. */
  readonly bin: string
}

export class TestServers extends Context.Tag("@yoi/cli/test/TestServers")<TestServers, Servers>() {}

const addressOf = (context: Context.Context<HttpServer.HttpServer>) => {
  const address = Context.get(context, HttpServer.HttpServer).address
  return `http://127.0.0.1:${address._tag === "TcpAddress" ? address.port : 0}`
}

export const layer: Layer.Layer<TestServers> = Layer.scoped(
  TestServers,
  Effect.gen(function*() {
    const runtime = yield* Layer.build(
      RuntimeServer.layer({
        host: "127.0.0.1",
        port: 0,
        auth: RuntimeAuth.token(Redacted.make(RUNTIME_TOKEN)),
        docs: false,
        graceMs: 200,
        events: { heartbeat: Duration.seconds(1) }
      }).pipe(Layer.provideMerge(layerMemory({ runtimeId: "edge", policy: testPolicy })))
    ).pipe(Effect.orDie)
    const runtimeUrl = addressOf(runtime)

    const resolved = Either.getOrThrow(Config.resolve({
      embedded: { runtime_id: "local", store: "memory", ...testPolicy },
      companion: null,
      remotes: [{ runtime_id: "edge", display_name: "Edge box", endpoint: runtimeUrl, token: { env: "EDGE_TOKEN" } }]
    }, "/nonexistent-data-dir"))
    const handles = Runtimes.layer(resolved, {
      drainGrace: Duration.millis(200),
      remote: {
        probeInterval: Duration.millis(200),
        timeout: Duration.seconds(5),
        reconnect: { initialDelay: Duration.millis(50), maxDelay: Duration.millis(300) }
      }
    }).pipe(Layer.provide([NodeHttpClient.layerUndici, NodeContext.layer]))
    const backend = Backend.layerServing(handles, {
      policy: Policy.layerConfig(resolved),
      audit: Audit.layerSqlite(":memory:"),
      server: { heartbeat: Duration.seconds(1) }
    }).pipe(
      Layer.provideMerge(NodeHttpServer.layerTest),
      Layer.provide(Auth.BackendToken.layer(BACKEND_TOKEN))
    )
    const provider = ConfigProvider.fromMap(new Map([["EDGE_TOKEN", RUNTIME_TOKEN]]))
    const context = yield* Layer.build(backend).pipe(Effect.withConfigProvider(provider), Effect.orDie)
    const home = yield* Effect.acquireRelease(
      Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "yoi-cli-test-"))),
      (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
    )
    const bundled = yield* Effect.acquireRelease(
      bundle,
      ({ dir }) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
    )
    return { backendUrl: addressOf(context), runtimeUrl, home, bin: bundled.outfile }
  })
)

/** A JSON request to a server, for setting up what the CLI then reads. */
export const api = (url: string, token: string, method: string, path: string, body?: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    return { status: response.status, json: await response.json() as any }
  })

export interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface Running {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exit: Effect.Effect<Run>
}

/** `yoi` as a real process, with only the environment given (no inherited YOI_* variables). */
export const start = (
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  stdin?: string,
  bin?: string
) =>
  Effect.acquireRelease(
    Effect.map(Effect.serviceOption(TestServers), (servers): Running => {
      const program = bin ?? (servers._tag === "Some" ? servers.value.bin : BIN)
      const child = spawn(process.execPath, [program, ...args], {
        env: { PATH: process.env.PATH ?? "", HOME: env.XDG_CONFIG_HOME ?? NodeOs.tmpdir(), ...env },
        stdio: ["pipe", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
      if (stdin !== undefined) child.stdin!.end(stdin)
      else child.stdin!.end()
      const exited = new Promise<Run>((resolve) =>
        child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
      )
      return { child, stdout: () => stdout, stderr: () => stderr, exit: Effect.promise(() => exited) }
    }),
    (running) => Effect.sync(() => running.child.exitCode === null && running.child.kill("SIGKILL"))
  )

/** Runs `yoi` to its end. */
export const yoi = (args: ReadonlyArray<string>, env: Record<string, string>, stdin?: string, bin?: string) =>
  Effect.scoped(Effect.flatMap(start(args, env, stdin, bin), (r) => r.exit))

/** Polls until `done` holds, for at most `seconds`. */
export const eventually = <A>(
  read: Effect.Effect<A>,
  done: (a: A) => boolean,
  what: string,
  seconds = 30
): Effect.Effect<A> => {
  const loop: Effect.Effect<A> = Effect.flatMap(read, (a) =>
    done(a) ? Effect.succeed(a) : Effect.zipRight(Effect.sleep("50 millis"), Effect.suspend(() => loop)))
  return loop.pipe(
    Effect.timeoutFail({ duration: Duration.seconds(seconds), onTimeout: () => `timed out waiting for ${what}` }),
    Effect.orDie
  )
}

/** A loopback port nothing listens on. */
export const closedPort = Effect.async<number>((resume) => {
  const server = NodeNet.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})
