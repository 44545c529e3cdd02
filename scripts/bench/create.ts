/**
 * The server CPU a create costs against a GET of one worker, side by side in one run: `POST /v1/workers` (a new
 * worker, no initial input) vs `GET /v1/workers/{id}`, on the memory and SQLite stores, at concurrency 1 and 16.
 * The server runs in its own child process and reports its own CPU time (user + system), which moves much less
 * with a shared machine's load than latency does. Rounds interleave GETs and creates; medians are printed.
 *
 *   npx tsx scripts/bench/create.ts [--requests 1000] [--rounds 3] [--cpu-prof <dir>]
 *
 * Aim: a create costs at most 4x the CPU of a GET of one worker.
 */
import { HttpServer } from "@effect/platform"
import { NodeRuntime } from "@effect/platform-node"
import { Auth, RuntimeServer } from "@yoi/runtime-server"
import { Ids, layerMemory, Runtime } from "@yoi/worker-runtime"
import { layerSqlite } from "@yoi/worker-runtime/sqlite"
import { Console, Effect, Layer, Redacted } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { parseArgs } from "node:util"

const TOKEN = "bench-create-token-0123456789"
const GET_WORKER = "w-bench-get"
const stores = ["memory", "sqlite"] as const
type Store = typeof stores[number]

// --- the server child ---------------------------------------------------------------------------------------------

const serve = (store: Store, dir: string) => {
  const runtime = store === "memory"
    ? layerMemory({ runtimeId: "bench" })
    : layerSqlite({ filename: NodePath.join(dir, "runtime.db"), runtimeId: "bench" })
  const fixture = Layer.effectDiscard(Effect.gen(function*() {
    const rt = yield* Runtime.Runtime
    yield* rt.createWorker({ worker_id: Ids.WorkerId.make(GET_WORKER), display_name: "get me" })
    yield* rt.sendInput(GET_WORKER, { text: "hello there" })
    yield* Effect.sleep("100 millis")
  }))
  const ready = Layer.effectDiscard(HttpServer.addressWith((address) =>
    Console.log(`ready ${address._tag === "TcpAddress" ? address.port : 0}`)))
  process.on("message", () => process.send!(process.cpuUsage()))
  return Layer.merge(fixture, ready).pipe(
    Layer.provide(RuntimeServer.layer({ host: "127.0.0.1", port: 0, auth: Auth.token(Redacted.make(TOKEN)), docs: false })),
    Layer.provideMerge(runtime)
  )
}

// --- the driver ---------------------------------------------------------------------------------------------------

interface Server {
  readonly child: ChildProcess
  readonly url: string
  readonly cpu: () => Promise<number>
}

const start = (store: Store, dir: string, cpuProf: string | undefined) =>
  new Promise<Server>((resolve, reject) => {
    const child = spawn(process.execPath, [
      ...(cpuProf === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", cpuProf]),
      "--import",
      "tsx",
      process.argv[1]!,
      "--serve",
      store,
      "--dir",
      dir
    ], { stdio: ["ignore", "pipe", "inherit", "ipc"] })
    const cpu = () =>
      new Promise<number>((done) => {
        child.once("message", (usage) => done((usage as NodeJS.CpuUsage).user + (usage as NodeJS.CpuUsage).system))
        child.send("cpu")
      })
    let out = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      const match = /ready (\d+)/.exec(out)
      if (match !== null) resolve({ child, url: `http://127.0.0.1:${match[1]}`, cpu })
    })
    child.once("exit", (code) => reject(new Error(`the ${store} server exited with ${code}`)))
  })

const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }

/** `requests` calls by `concurrency` callers; the server's CPU microseconds per call. */
const measure = async (
  server: Server,
  requests: number,
  concurrency: number,
  call: (i: number) => Promise<Response>,
  expected: number
) => {
  let next = 0
  const before = await server.cpu()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < requests) {
      const i = next++
      const response = await call(i)
      await response.arrayBuffer()
      if (response.status !== expected) throw new Error(`answered ${response.status}, expected ${expected}`)
    }
  }))
  return ((await server.cpu()) - before) / requests
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const bench = async (options: { readonly requests: number; readonly rounds: number; readonly cpuProf?: string }) => {
  const rows: Array<Record<string, string | number>> = []
  let worst = 0
  let created = 0
  for (const store of stores) {
    const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "yoi-bench-create-"))
    const server = await start(store, dir, options.cpuProf)
    try {
      const get = () => fetch(`${server.url}/v1/workers/${GET_WORKER}`, { headers })
      const create = () =>
        fetch(`${server.url}/v1/workers`, {
          method: "POST",
          headers,
          body: JSON.stringify({ display_name: `created ${created++}`, metadata: { team: "bench" } })
        })
      // Warm up both paths (JIT, the store's statements).
      await measure(server, 200, 4, get, 200)
      await measure(server, 200, 4, create, 201)
      for (const concurrency of [1, 16]) {
        const gets: Array<number> = []
        const creates: Array<number> = []
        for (let round = 0; round < options.rounds; round++) {
          gets.push(await measure(server, options.requests, concurrency, get, 200))
          creates.push(await measure(server, options.requests, concurrency, create, 201))
        }
        const g = median(gets)
        const c = median(creates)
        worst = Math.max(worst, c / g)
        rows.push({
          store,
          concurrency,
          "GET worker (cpu us)": Math.round(g),
          "create (cpu us)": Math.round(c),
          "create/GET": (c / g).toFixed(2)
        })
      }
    } finally {
      server.child.kill("SIGTERM")
      await new Promise((resolve) => server.child.once("exit", resolve))
      NodeFs.rmSync(dir, { recursive: true, force: true })
    }
  }
  console.table(rows)
  console.log(`aim: a create costs at most 4x a GET of one worker: worst ${worst.toFixed(2)}x (${worst <= 4 ? "met" : "NOT met"})`)
}

const { values } = parseArgs({
  options: {
    serve: { type: "string" },
    dir: { type: "string" },
    requests: { type: "string", default: "1000" },
    rounds: { type: "string", default: "3" },
    /** Writes CPU profiles of the server processes into this directory (`node --cpu-prof`). */
    "cpu-prof": { type: "string" }
  }
})

if (values.serve !== undefined) {
  NodeRuntime.runMain(Layer.launch(serve(values.serve as Store, values.dir!)))
} else {
  await bench({
    requests: Number(values.requests),
    rounds: Number(values.rounds),
    ...(values["cpu-prof"] === undefined ? {} : { cpuProf: values["cpu-prof"] })
  })
}
