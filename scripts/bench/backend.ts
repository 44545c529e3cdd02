/**
 * The Backend's cost in front of a remote runtime, measured side by side in one run against calling the runtime
 * directly:
 *
 * - command latency, sequential, p50/p99: `POST .../cancel` on an idle worker (a no-op for the runtime, so the pure
 *   cost of the extra hop: routed, policy-checked, audited), and `stop`/`restore` in turn (a durable write to the
 *   runtime's SQLite store, as `yoi-runtime` runs by default);
 * - command throughput: `cancel` under autocannon with many connections, req/s;
 * - event delivery: a burst of live events (an echo turn streamed one character per event) received over SSE,
 *   events/s, through the runtime's own `/v1/workers/{id}/events` and the Backend's per-worker and `/api/events`
 *   streams (served from its one upstream subscription).
 *
 * The runtime and the Backend each run in their own child process (the real `yoi-backend` binary with a config
 * file naming the runtime as a remote); this process drives them. Aims: the Backend adds at most 1.5x to command
 * latency and delivers at least 0.5x of the direct event rate.
 *
 *   npx tsx scripts/bench/backend.ts [--duration 6] [--connections 32] [--requests 1000] [--events 20000]
 *     [--cpu-prof <dir>]   (a CPU profile of the Backend process, for finding where the proxy's time goes)
 */
import { echo, testPolicy } from "@yoi/worker-runtime/testing"
import { HttpServer } from "@effect/platform"
import { NodeRuntime } from "@effect/platform-node"
import { Auth, RuntimeServer } from "@yoi/runtime-server"
import { Ids, Runtime, SseWire } from "@yoi/worker-runtime"
import { layerSqlite } from "@yoi/worker-runtime/sqlite"
import { Console, Effect, Either, Layer, Redacted } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import { createRequire } from "node:module"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { parseArgs } from "node:util"

interface Histogram { readonly average: number; readonly p50: number; readonly p99: number }
interface Result {
  readonly requests: Histogram
  readonly latency: Histogram
  readonly non2xx: number
  readonly errors: number
}
type Autocannon = (options: {
  readonly url: string
  readonly method: string
  readonly connections: number
  readonly duration: number
  readonly headers?: Record<string, string>
}) => Promise<Result>

const RUNTIME_TOKEN = "bench-runtime-token-0123456789"
const BACKEND_TOKEN = "bench-backend-token-0123456789"
const CMD_WORKER = "w-bench-cmd"
const EVENT_WORKER = "w-bench-events"
// The Backend sees only the workers of its workspace on a remote runtime: the fixture's carry its stamp.
const WORKSPACE_ID = "bench"
const WORKSPACE = { "yoi.workspace": WORKSPACE_ID }

// --- the runtime child --------------------------------------------------------------------------------------------

const fixture = Layer.effectDiscard(Effect.gen(function*() {
  const runtime = yield* Runtime.Runtime
  yield* runtime.createWorker({ worker_id: Ids.WorkerId.make(CMD_WORKER), display_name: "commands", metadata: WORKSPACE })
  yield* runtime.createWorker({
    worker_id: Ids.WorkerId.make(EVENT_WORKER),
    display_name: "events",
    metadata: WORKSPACE,
    engine: echo({ chunk_size: 1 })
  })
}))

const ready = Layer.effectDiscard(HttpServer.addressWith((address) =>
  Console.log(`ready ${address._tag === "TcpAddress" ? address.port : 0}`)))

const serveRuntime = (filename: string) =>
  Layer.merge(fixture, ready).pipe(
    Layer.provide(
      RuntimeServer.layer({ host: "127.0.0.1", port: 0, auth: Auth.token(Redacted.make(RUNTIME_TOKEN)), docs: false })
    ),
    Layer.provide(layerSqlite({ policy: testPolicy, filename, runtimeId: "bench", eventBacklog: 100_000, subscriberBuffer: 100_000 }))
  )

// --- helpers ------------------------------------------------------------------------------------------------------

const waitFor = (child: ChildProcess, pattern: RegExp, what: string) =>
  new Promise<RegExpExecArray>((resolve, reject) => {
    let out = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      const match = pattern.exec(out)
      if (match !== null) resolve(match)
    })
    child.once("exit", (code) => reject(new Error(`${what} exited with ${code}: ${out}`)))
  })

const stop = async (child: ChildProcess) => {
  if (child.exitCode !== null) return
  child.kill("SIGTERM")
  await new Promise((resolve) => child.once("exit", resolve))
}

const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

/** Sequential requests on one keep-alive connection, cycling through `urls`; the sample times in microseconds. */
const sequential = async (urls: ReadonlyArray<string>, token: string, requests: number) => {
  const samples: Array<number> = []
  for (let i = 0; i < requests; i++) {
    const url = urls[i % urls.length]!
    const start = performance.now()
    const response = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}` } })
    await response.arrayBuffer()
    if (response.status !== 200) throw new Error(`${url} answered ${response.status}`)
    samples.push((performance.now() - start) * 1000)
  }
  return samples
}

/**
 * Opens an SSE stream, starts a turn that streams `chars` one-character deltas, and times delivery: events/s from
 * the input to the turn's `turn.completed`.
 */
const eventRate = async (streamUrl: string, token: string, inputUrl: string, chars: number) => {
  const controller = new AbortController()
  const response = await fetch(streamUrl, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal })
  if (response.status !== 200) throw new Error(`${streamUrl} answered ${response.status}`)
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  const parser = new SseWire.SseParser()
  let connected = false
  let events = 0
  const done = (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) throw new Error(`${streamUrl} ended early after ${events} events`)
      for (const item of Either.getOrThrow(parser.feed(decoder.decode(value, { stream: true })))) {
        if (item._tag === "Comment" && item.text === "connected") connected = true
        if (item._tag !== "Event" || !item.data.includes(EVENT_WORKER)) continue
        if (item.event === "stream.lagged") throw new Error(`${streamUrl} lagged after ${events} events`)
        events += 1
        if (item.event === "turn.completed") return performance.now()
      }
    }
  })()
  while (!connected) await new Promise((resolve) => setTimeout(resolve, 5))
  const start = performance.now()
  const input = await fetch(inputUrl, {
    method: "POST",
    headers: { authorization: `Bearer ${RUNTIME_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ text: "x".repeat(chars) })
  })
  if (input.status !== 202) throw new Error(`input answered ${input.status}: ${await input.text()}`)
  const finished = await done
  controller.abort()
  return { events, perSecond: events / ((finished - start) / 1000) }
}

// --- the run ------------------------------------------------------------------------------------------------------

const bench = async (options: {
  readonly duration: number
  readonly connections: number
  readonly requests: number
  readonly events: number
  readonly cpuProf?: string | undefined
}) => {
  const autocannon: Autocannon = createRequire(import.meta.url)("autocannon")
  const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "yoi-bench-backend-"))
  const children: Array<ChildProcess> = []
  try {
    const store = NodePath.join(dir, "runtime.db")
    const runtime = spawn(process.execPath, ["--import", "tsx", process.argv[1]!, "--serve-runtime", store], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    children.push(runtime)
    const runtimeUrl = `http://127.0.0.1:${(await waitFor(runtime, /ready (\d+)/, "the runtime"))[1]}`
    const config = NodePath.join(dir, "backend.json")
    NodeFs.writeFileSync(config, JSON.stringify({
      embedded: null,
      workspace_id: WORKSPACE_ID,
      remotes: [{
        runtime_id: "bench",
        endpoint: runtimeUrl,
        token: { env: "BENCH_RUNTIME_TOKEN" },
        // The same buffers as the runtime's, so that neither side lags on a burst and the rates compare delivery.
        event_backlog: 100_000,
        subscriber_buffer: 100_000
      }]
    }))
    const backend = spawn(process.execPath, [
      ...(options.cpuProf === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", options.cpuProf]),
      NodePath.resolve("packages/workspace-server/bin/yoi-backend.mjs"),
      "--bind",
      "127.0.0.1:0",
      "--config",
      config,
      "--data-dir",
      NodePath.join(dir, "data")
    ], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, YOI_BACKEND_TOKEN: BACKEND_TOKEN, BENCH_RUNTIME_TOKEN: RUNTIME_TOKEN }
    })
    children.push(backend)
    const backendUrl = (await waitFor(backend, /listening on (http:\/\/\S+)/, "the backend"))[1]!
    for (;;) {
      const view = await fetch(`${backendUrl}/api/runtimes/bench`, { headers: { authorization: `Bearer ${BACKEND_TOKEN}` } })
      if (((await view.json()) as { status: string }).status === "online") break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }

    const direct = { base: `${runtimeUrl}/v1/workers/${CMD_WORKER}`, token: RUNTIME_TOKEN }
    const through = { base: `${backendUrl}/api/runtimes/bench/workers/${CMD_WORKER}`, token: BACKEND_TOKEN }
    const commands = {
      cancel: (base: string) => [`${base}/cancel`],
      "stop/restore": (base: string) => [`${base}/stop`, `${base}/restore`]
    }

    // Direct and through the Backend alternate in rounds, so that load from elsewhere on the machine hits both.
    const rounds = 5
    const sorted = (xs: Array<number>) => xs.sort((x, y) => x - y)
    const latencies: Array<{ command: string; direct: Array<number>; backend: Array<number> }> = []
    for (const [command, urls] of Object.entries(commands)) {
      await sequential(urls(direct.base), direct.token, 100)
      await sequential(urls(through.base), through.token, 100)
      const row = { command, direct: [] as Array<number>, backend: [] as Array<number> }
      for (let round = 0; round < rounds; round++) {
        const n = Math.ceil(options.requests / rounds / 2) * 2
        row.direct.push(...await sequential(urls(direct.base), direct.token, n))
        row.backend.push(...await sequential(urls(through.base), through.token, n))
      }
      sorted(row.direct)
      sorted(row.backend)
      latencies.push(row)
    }

    const load = (target: { url: string; token: string }, duration: number) =>
      autocannon({
        url: target.url,
        method: "POST",
        headers: { authorization: `Bearer ${target.token}` },
        connections: options.connections,
        duration
      }).then((result) => {
        if (result.non2xx > 0 || result.errors > 0) {
          throw new Error(`${target.url}: ${result.non2xx} non-2xx, ${result.errors} errors`)
        }
        return result.requests.average
      })
    const cancelDirect = { url: `${direct.base}/cancel`, token: direct.token }
    const cancelThrough = { url: `${through.base}/cancel`, token: through.token }
    await load(cancelDirect, 1)
    await load(cancelThrough, 1)
    const rpsDirectRuns: Array<number> = []
    const rpsBackendRuns: Array<number> = []
    for (let round = 0; round < 3; round++) {
      rpsDirectRuns.push(await load(cancelDirect, Math.max(1, Math.round(options.duration / 3))))
      rpsBackendRuns.push(await load(cancelThrough, Math.max(1, Math.round(options.duration / 3))))
    }
    const median = (xs: ReadonlyArray<number>) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!
    const rpsDirect = median(rpsDirectRuns)
    const rpsBackend = median(rpsBackendRuns)

    // The command figures first: they stand even if the event stage fails.
    const ratio = (x: number, y: number) => (x / y).toFixed(2)
    console.table([
      ...latencies.flatMap(({ command, direct: d, backend: b }) => [
        {
          measure: `${command} latency p50 (us)`,
          direct: Math.round(quantile(d, 0.5)),
          backend: Math.round(quantile(b, 0.5)),
          "backend/direct": ratio(quantile(b, 0.5), quantile(d, 0.5))
        },
        {
          measure: `${command} latency p99 (us)`,
          direct: Math.round(quantile(d, 0.99)),
          backend: Math.round(quantile(b, 0.99)),
          "backend/direct": ratio(quantile(b, 0.99), quantile(d, 0.99))
        }
      ]),
      {
        measure: `cancel throughput (req/s, ${options.connections} conns, median of 3)`,
        direct: Math.round(rpsDirect),
        backend: Math.round(rpsBackend),
        "backend/direct": ratio(rpsBackend, rpsDirect)
      }
    ])
    const inputUrl = `${runtimeUrl}/v1/workers/${EVENT_WORKER}/input`
    const streams = [
      ["runtime /v1/workers/{id}/events", `${runtimeUrl}/v1/workers/${EVENT_WORKER}/events`, RUNTIME_TOKEN],
      ["backend /api/runtimes/{rt}/workers/{id}/events", `${backendUrl}/api/runtimes/bench/workers/${EVENT_WORKER}/events`, BACKEND_TOKEN],
      ["backend /api/events (all runtimes)", `${backendUrl}/api/events`, BACKEND_TOKEN]
    ] as const
    await eventRate(streams[0][1], streams[0][2], inputUrl, 500)
    await eventRate(streams[1][1], streams[1][2], inputUrl, 500)
    const rates = new Map<string, Array<number>>()
    for (let round = 0; round < 3; round++) {
      for (const [name, url, token] of streams) {
        const { perSecond } = await eventRate(url, token, inputUrl, options.events)
        rates.set(name, [...(rates.get(name) ?? []), perSecond])
      }
    }

    const directRate = median(rates.get(streams[0][0])!)
    console.table(streams.map(([name]) => ({
      stream: name,
      "events/s (median of 3)": Math.round(median(rates.get(name)!)),
      "vs direct": (median(rates.get(name)!) / directRate).toFixed(2)
    })))
    const latencyRatios = latencies.map(({ command, direct: d, backend: b }) =>
      [command, quantile(b, 0.5) / quantile(d, 0.5)] as const)
    const eventRatio = Math.min(...streams.slice(1).map(([name]) => median(rates.get(name)!) / directRate))
    const verdict = (met: boolean) => (met ? "met" : "NOT met")
    process.stdout.write(
      latencyRatios.map(([command, r]) => `aim: ${command} latency x${r.toFixed(2)} (<= 1.5: ${verdict(r <= 1.5)})\n`)
        .join("") +
        `aim: event rate x${eventRatio.toFixed(2)} (>= 0.5: ${verdict(eventRatio >= 0.5)})\n`
    )
  } finally {
    for (const child of children) await stop(child)
    NodeFs.rmSync(dir, { recursive: true, force: true })
  }
}

const { values } = parseArgs({
  options: {
    "serve-runtime": { type: "string" },
    duration: { type: "string", default: "6" },
    connections: { type: "string", default: "32" },
    requests: { type: "string", default: "1000" },
    events: { type: "string", default: "20000" },
    /** Writes a CPU profile of the Backend process into this directory (`node --cpu-prof`). */
    "cpu-prof": { type: "string" }
  }
})

if (values["serve-runtime"] !== undefined) {
  NodeRuntime.runMain(Layer.launch(serveRuntime(values["serve-runtime"])))
} else {
  await bench({
    duration: Number(values.duration),
    connections: Number(values.connections),
    requests: Number(values.requests),
    events: Number(values.events),
    cpuProf: values["cpu-prof"]
  })
}
