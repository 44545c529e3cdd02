/**
 * GET /v1/runtime and GET /v1/workers/{id}: requests per second and p50/p99 latency of the yoi-runtime server,
 * side by side in the same run with (a) a bare `node:http` server and (b) a bare Effect `HttpRouter` answering the
 * same JSON. Each server runs in its own child process; autocannon (50 connections) drives it from this one.
 *
 * It also reports the server's CPU time per request, read from the server process itself: on a shared machine
 * requests per second move with the neighbours' load, CPU per request much less. Rounds interleave the servers.
 *
 * The yoi-runtime serves without a tracing span per request by default (nothing exports them); the bare Effect
 * router keeps the platform default (spans on), and "spans on" shows yoi-runtime like for like.
 *
 *   npx tsx scripts/bench/http.ts [--duration 3] [--rounds 3] [--connections 50]
 */
import { testPolicy } from "@yoi/worker-runtime/testing"
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Auth, RuntimeServer } from "@yoi/runtime-server"
import { Ids, layerMemory, Runtime } from "@yoi/worker-runtime"
import { Console, Effect, Layer, Redacted } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:http"
import { createRequire } from "node:module"
import { parseArgs } from "node:util"

interface Histogram { readonly average: number; readonly p50: number; readonly p99: number }
interface Result {
  readonly requests: Histogram & { readonly total: number }
  readonly latency: Histogram
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
}
type Autocannon = (options: {
  readonly url: string
  readonly connections: number
  readonly duration: number
  readonly headers?: Record<string, string>
}) => Promise<Result>

const TOKEN = "bench-token-0123456789abcdef"
const WORKER_ID = "w-bench-2"
const targets = ["node", "effect", "yoi", "yoi-traced"] as const
type Target = typeof targets[number]

/** A runtime with a few workers, one of which has a finished turn; its summary and worker are the bench bodies. */
const fixture = Layer.effectDiscard(Effect.gen(function*() {
  const runtime = yield* Runtime.Runtime
  for (let i = 0; i < 5; i++) {
    yield* runtime.createWorker({ worker_id: Ids.WorkerId.make(`w-bench-${i}`), display_name: `bench ${i}` })
  }
  yield* runtime.sendInput(WORKER_ID, { text: "hello" })
  yield* Effect.sleep("100 millis")
}))

const runtimeLayer = Layer.provideMerge(fixture, layerMemory({ policy: testPolicy, runtimeId: "bench" }))

const bodies = Effect.gen(function*() {
  const runtime = yield* Runtime.Runtime
  return { summary: yield* runtime.summary, worker: yield* runtime.getWorker(WORKER_ID) }
})

const ready = Layer.effectDiscard(HttpServer.addressWith((address) =>
  Console.log(`ready ${address._tag === "TcpAddress" ? address.port : 0}`)))

const serveNode = Effect.gen(function*() {
  const { summary, worker } = yield* bodies
  const server = createServer((req, res) => {
    const body = req.url === "/v1/runtime" ? summary : req.url === `/v1/workers/${WORKER_ID}` ? worker : undefined
    if (body === undefined) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body))
  })
  yield* Effect.async<void>((resume) => {
    server.listen(0, "127.0.0.1", () => resume(Effect.void))
  })
  const address = server.address()
  yield* Console.log(`ready ${typeof address === "object" && address !== null ? address.port : 0}`)
  return yield* Effect.never
}).pipe(Effect.provide(runtimeLayer))

const serveEffect = Layer.unwrapEffect(Effect.map(bodies, ({ summary, worker }) =>
  HttpRouter.empty.pipe(
    HttpRouter.get("/v1/runtime", HttpServerResponse.json(summary)),
    HttpRouter.get("/v1/workers/:worker_id", HttpServerResponse.json(worker)),
    HttpServer.serve()
  ))).pipe(
  Layer.merge(ready),
  Layer.provide(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
  Layer.provide(runtimeLayer)
)

const serveYoi = (tracing: boolean) =>
  ready.pipe(
    Layer.provide(RuntimeServer.layer({ host: "127.0.0.1", port: 0, auth: Auth.token(Redacted.make(TOKEN)), tracing })),
    Layer.provide(runtimeLayer)
  )

const serve = (target: Target) =>
  target === "node"
    ? serveNode
    : target === "effect"
      ? Layer.launch(serveEffect)
      : Layer.launch(serveYoi(target === "yoi-traced"))

interface Server {
  readonly child: ChildProcess
  readonly port: number
  /** CPU time (user + system, microseconds) the server process has used so far. */
  readonly cpu: () => Promise<number>
}

const start = (target: Target) =>
  new Promise<Server>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", process.argv[1]!, "--serve", target], {
      stdio: ["ignore", "pipe", "inherit", "ipc"]
    })
    const cpu = () =>
      new Promise<number>((done) => {
        child.once("message", (usage) => done((usage as NodeJS.CpuUsage).user + (usage as NodeJS.CpuUsage).system))
        child.send("cpu")
      })
    let out = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      const match = /ready (\d+)/.exec(out)
      if (match !== null) resolve({ child, port: Number(match[1]), cpu })
    })
    child.once("exit", (code) => reject(new Error(`${target} server exited with ${code}`)))
  })

interface Sample {
  readonly rps: number
  readonly p50: number
  readonly p99: number
  readonly cpuPerRequest: number
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const bench = async (options: { readonly duration: number; readonly connections: number; readonly rounds: number }) => {
  const autocannon: Autocannon = createRequire(import.meta.url)("autocannon")
  const routes = [["GET /v1/runtime", "/v1/runtime"], ["GET /v1/workers/{id}", `/v1/workers/${WORKER_ID}`]] as const
  const servers = new Map<Target, Server>()
  for (const target of targets) servers.set(target, await start(target))
  const samples = new Map<string, Array<Sample>>()
  const headers = { authorization: `Bearer ${TOKEN}` }
  const run = async (target: Target, path: string, duration: number) => {
    const server = servers.get(target)!
    const url = `http://127.0.0.1:${server.port}${path}`
    const before = await server.cpu()
    const result = await autocannon({ url, headers, connections: options.connections, duration })
    const used = (await server.cpu()) - before
    if (result.non2xx > 0 || result.errors > 0 || result.requests.average === 0) {
      throw new Error(`${target} ${path}: ${result.non2xx} non-2xx, ${result.errors} errors`)
    }
    return {
      rps: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      cpuPerRequest: used / result.requests.total
    }
  }
  for (const target of targets) for (const [, path] of routes) await run(target, path, 1)
  // Rounds interleave the servers so that a noisy neighbour hurts all of them alike.
  for (let round = 0; round < options.rounds; round++) {
    for (const [name, path] of routes) {
      for (const target of targets) {
        const key = `${target} ${name}`
        samples.set(key, [...(samples.get(key) ?? []), await run(target, path, options.duration)])
      }
    }
  }
  for (const server of servers.values()) {
    server.child.kill("SIGTERM")
    await new Promise((resolve) => server.child.once("exit", resolve))
  }
  const label = {
    node: "bare node:http",
    effect: "bare Effect HttpRouter",
    yoi: "yoi-runtime (auth)",
    "yoi-traced": "yoi-runtime (auth, spans on)"
  }
  const rows: Array<Record<string, string | number>> = []
  for (const [name] of routes) {
    const of = (t: Target) => samples.get(`${t} ${name}`)!
    const ratio = (a: Target, b: Target, f: (s: Sample) => number) =>
      median(of(a).map((s, i) => f(s) / f(of(b)[i]!))).toFixed(2)
    for (const target of targets) {
      rows.push({
        route: name,
        server: label[target],
        "req/s": Math.round(median(of(target).map((s) => s.rps))),
        "p50 ms": median(of(target).map((s) => s.p50)),
        "p99 ms": median(of(target).map((s) => s.p99)),
        "cpu us/req": Number(median(of(target).map((s) => s.cpuPerRequest)).toFixed(1))
      })
    }
    const cpu = (s: Sample) => 1 / s.cpuPerRequest
    const rps = (s: Sample) => s.rps
    process.stdout.write(
      `${name}\n  req/s:            yoi/effect ${ratio("yoi", "effect", rps)}x  yoi/node ${ratio("yoi", "node", rps)}x  ` +
        `effect/node ${ratio("effect", "node", rps)}x  (spans on: yoi/effect ${ratio("yoi-traced", "effect", rps)}x)\n` +
        `  req per CPU-second: yoi/effect ${ratio("yoi", "effect", cpu)}x  yoi/node ${ratio("yoi", "node", cpu)}x  ` +
        `effect/node ${ratio("effect", "node", cpu)}x  (spans on: yoi/effect ${ratio("yoi-traced", "effect", cpu)}x)\n`
    )
  }
  console.table(rows)
}

const { values } = parseArgs({
  options: {
    serve: { type: "string" },
    duration: { type: "string", default: "3" },
    connections: { type: "string", default: "50" },
    rounds: { type: "string", default: "3" }
  }
})

if (values.serve !== undefined) {
  const target = values.serve as Target
  if (!targets.includes(target)) throw new Error(`unknown target ${target}`)
  process.on("message", () => process.send!(process.cpuUsage()))
  NodeRuntime.runMain(serve(target))
} else {
  await bench({
    duration: Number(values.duration),
    connections: Number(values.connections),
    rounds: Number(values.rounds)
  })
}
