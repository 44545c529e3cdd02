/**
 * The SSE event stream: events per second from the runtime to 1 and to 100 readers, delivery latency (p50/p99),
 * 1,000 worker-scoped readers at 1,000 events/s in total, and memory per idle stream. Each phase runs against
 * yoi-runtime (`GET /v1/events`, the real server, auth included) and, in the same run, against a bare `node:http`
 * SSE writer that sends the same frames; ratios are yoi / bare.
 *
 * The server (and the event producer) runs in a child process, the readers in this one, so each gets a core.
 *
 *   npx tsx scripts/bench/sse.ts [--events 100000] [--fanout-events 5000] [--readers 1000] [--seconds 5]
 *                                [--batch 100] [--rounds 3]
 *
 * Throughput on a shared machine swings from run to run; "server CPU per event" (the server process's CPU time over
 * the events it delivered) is the steadier comparison. SSE_BENCH_PROFILE=<dir> writes each server's CPU profile.
 */
import { testPolicy } from "@yoi/worker-runtime/testing"
import { HttpServer } from "@effect/platform"
import { Auth, RuntimeServer, Sse } from "@yoi/runtime-server"
import { Cursor, type Domain, EventLog, layerMemory, Runtime } from "@yoi/worker-runtime"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Http from "node:http"
import { parseArgs } from "node:util"

const TOKEN = "bench-token-0123456789abcdef"
const now = () => performance.timeOrigin + performance.now()
const text = "a typical streamed delta of model output, about this long"

type Target = "yoi" | "bare"

type Command =
  | { readonly type: "workers"; readonly count: number }
  | { readonly type: "produce"; readonly total: number; readonly batch: number }
  | {
    readonly type: "pace"
    readonly perSecond: number
    readonly seconds: number
    readonly workers?: ReadonlyArray<string>
  }
  | { readonly type: "memory" }
  | { readonly type: "cpu" }

type Reply =
  | { readonly type: "ready"; readonly port: number }
  | { readonly type: "workers"; readonly ids: ReadonlyArray<string> }
  | { readonly type: "produced"; readonly events: number }
  | { readonly type: "memory"; readonly heapUsed: number; readonly rss: number; readonly streams: number }
  | { readonly type: "cpu"; readonly micros: number }

// --- the server side (child process) ---------------------------------------------------------------------------

interface Producer {
  readonly workers: (count: number) => Promise<ReadonlyArray<string>>
  /** Appends `count` events, one batch, worker ids round-robin from `workers` (or none). */
  readonly append: (count: number, workers: ReadonlyArray<string> | undefined, offset: number) => Promise<void>
  /** Appends `total` events in batches as fast as the server takes them, yielding to I/O between batches. */
  readonly produce: (total: number, batch: number) => Promise<void>
  readonly streams: () => number
}

const drafts = (count: number, workers: ReadonlyArray<string> | undefined, offset: number) => {
  const t = now()
  return Array.from({ length: count }, (_, i) => ({
    kind: "turn.delta" as const,
    ...(workers === undefined ? {} : { worker_id: workers[(offset + i) % workers.length]! }),
    // The send time leads the text: the event union encodes only the fields of `turn.delta`'s data.
    data: { text: `${t} ${text}` }
  }))
}

const yoiServer = async (send: (reply: Reply) => void): Promise<Producer> => {
  const runtimeLayer = layerMemory({ policy: testPolicy, runtimeId: "bench", eventBacklog: 10_000, subscriberBuffer: 1_000_000 })
  const layer = RuntimeServer.layer({
    host: "127.0.0.1",
    port: 0,
    auth: Auth.token(Redacted.make(TOKEN)),
    docs: false,
    events: { maxStreams: 5000 }
  }).pipe(Layer.provideMerge(runtimeLayer))
  const rt = ManagedRuntime.make(layer)
  const port = await rt.runPromise(Effect.map(HttpServer.HttpServer, (s) =>
    s.address._tag === "TcpAddress" ? s.address.port : 0))
  send({ type: "ready", port })
  return {
    workers: (count) =>
      rt.runPromise(Effect.gen(function*() {
        const runtime = yield* Runtime.Runtime
        return yield* Effect.forEach(
          Array.from({ length: count }, (_, i) => i),
          (i) => Effect.map(runtime.createWorker({ display_name: `reader ${i}` }), (r) => r.worker.worker_id)
        )
      })),
    append: (count, workers, offset) =>
      rt.runPromise(Effect.flatMap(EventLog.EventLog, (log) => log.append(drafts(count, workers, offset)))).then(
        () => undefined
      ),
    // One fiber appending, as a turn does inside the runtime (not one `runPromise` per batch).
    produce: (total, batch) =>
      rt.runPromise(Effect.gen(function*() {
        const log = yield* EventLog.EventLog
        for (let sent = 0; sent < total; sent += batch) {
          yield* log.append(drafts(Math.min(batch, total - sent), undefined, sent))
          yield* Effect.async<void>((resume) => void setImmediate(() => resume(Effect.void)))
        }
      })),
    streams: () => 0
  }
}

/** The baseline: a bare `node:http` SSE writer with the same frames, connect comment and coalesced writes. */
const bareServer = async (send: (reply: Reply) => void): Promise<Producer> => {
  const clients = new Set<{ readonly res: Http.ServerResponse; readonly worker: string | undefined }>()
  let seq = 0
  const server = Http.createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401).end()
      return
    }
    const match = /^\/v1\/workers\/([^/]+)\/events/.exec(req.url ?? "")
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
    res.write(Sse.openFrame(Cursor.encode("bare", seq)))
    const client = { res, worker: match === null ? undefined : match[1] }
    clients.add(client)
    res.on("close", () => clients.delete(client))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  send({ type: "ready", port: typeof address === "object" && address !== null ? address.port : 0 })
  const append = (count: number, workers: ReadonlyArray<string> | undefined, offset: number) => {
    const at = new Date().toISOString()
    const events: Array<Domain.RuntimeEvent> = drafts(count, workers, offset).map((d) => {
      seq += 1
      return { cursor: Cursor.encode("bare", seq), seq, runtime_id: "bench", at, ...d }
    })
    // Serialized once for all unfiltered clients, as a reasonable hand-written broadcaster would.
    let all: string | undefined
    for (const client of clients) {
      if (client.worker === undefined) {
        all ??= events.map(bareFrame).join("")
        client.res.write(all)
        continue
      }
      let frames = ""
      for (const e of events) if (e.worker_id === client.worker) frames += bareFrame(e)
      if (frames.length > 0) client.res.write(frames)
    }
  }
  return {
    workers: async (count) => Array.from({ length: count }, (_, i) => `w_bench${i}`),
    append: async (count, workers, offset) => append(count, workers, offset),
    streams: () => clients.size,
    produce: async (total, batch) => {
      for (let sent = 0; sent < total; sent += batch) {
        append(Math.min(batch, total - sent), undefined, sent)
        await yieldMacro()
      }
    }
  }
}

/** A hand-written broadcaster's frame: the event as it is, serialized once, no schema. */
const bareFrame = (event: Domain.RuntimeEvent) =>
  `id: ${event.cursor}\nevent: ${event.kind}\ndata: ${JSON.stringify(event)}\n\n`

const yieldMacro = () => new Promise<void>((resolve) => setImmediate(resolve))
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)))

const serve = async (target: Target) => {
  process.on("SIGTERM", () => process.exit(0))
  const send = (reply: Reply) => process.send!(reply)
  const producer = target === "yoi" ? await yoiServer(send) : await bareServer(send)
  process.on("message", async (command: Command) => {
    switch (command.type) {
      case "workers":
        send({ type: "workers", ids: await producer.workers(command.count) })
        break
      case "produce": {
        await producer.produce(command.total, command.batch)
        send({ type: "produced", events: command.total })
        break
      }
      case "pace": {
        // Every 10 ms, the events due by then: a steady rate without a timer per event.
        const start = now()
        const total = command.perSecond * command.seconds
        let sent = 0
        while (sent < total) {
          const due = Math.min(total, Math.floor(((now() - start) / 1000) * command.perSecond))
          if (due > sent) {
            await producer.append(due - sent, command.workers, sent)
            sent = due
          }
          await sleep(10 - ((now() - start) % 10))
        }
        send({ type: "produced", events: total })
        break
      }
      case "cpu": {
        const usage = process.cpuUsage()
        send({ type: "cpu", micros: usage.user + usage.system })
        break
      }
      case "memory": {
        for (let i = 0; i < 3; i++) {
          globalThis.gc?.()
          await sleep(50)
        }
        const m = process.memoryUsage()
        send({ type: "memory", heapUsed: m.heapUsed, rss: m.rss, streams: producer.streams() })
        break
      }
    }
  })
}

// --- the reader side (this process) ----------------------------------------------------------------------------

interface Reader {
  events: number
  readonly latencies: Array<number>
  readonly opened: Promise<void>
  readonly close: () => void
}

const MARK = "\nevent: "

/**
 * Counts event frames without parsing them (so the reader is not the bottleneck) and samples the delivery latency
 * of the last event of every read, or of every event when `everyEvent` is set.
 */
const openReader = (port: number, path: string, everyEvent: boolean): Reader => {
  let carry = ""
  let resolveOpened: () => void = () => undefined
  const reader: Reader = {
    events: 0,
    latencies: [],
    opened: new Promise<void>((resolve) => (resolveOpened = resolve)),
    close: () => req.destroy()
  }
  const req = Http.get({
    host: "127.0.0.1",
    port,
    path,
    agent: false,
    headers: { authorization: `Bearer ${TOKEN}`, accept: "text/event-stream" }
  }, (res) => {
    if (res.statusCode !== 200) throw new Error(`${path} answered ${res.statusCode}`)
    res.setEncoding("utf8")
    res.on("data", (chunk: string) => {
      resolveOpened()
      const arrived = now()
      const buffer = carry + chunk
      let at = buffer.indexOf(MARK)
      while (at !== -1) {
        reader.events += 1
        at = buffer.indexOf(MARK, at + MARK.length)
      }
      carry = buffer.slice(-(MARK.length - 1))
      if (everyEvent) {
        for (const m of chunk.matchAll(/"text":"([0-9.]+) /g)) reader.latencies.push(arrived - Number(m[1]))
      } else {
        const t = chunk.lastIndexOf("\"text\":\"")
        if (t !== -1) {
          // Only a complete number (followed by its space): a read may end in the middle of one.
          const m = /^"text":"([0-9.]+) /.exec(chunk.slice(t, t + 40))
          if (m !== null) reader.latencies.push(arrived - Number(m[1]))
        }
      }
    })
  })
  req.on("error", () => undefined)
  return reader
}

interface Server {
  readonly child: ChildProcess
  readonly port: number
  readonly request: <T extends Reply["type"]>(command: Command, reply: T) => Promise<Extract<Reply, { type: T }>>
}

const start = (target: Target) =>
  new Promise<Server>((resolve, reject) => {
    const flags = process.env.SSE_BENCH_PROFILE === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${process.env.SSE_BENCH_PROFILE}`]
    const child = spawn(process.execPath, [...flags, "--expose-gc", "--import", "tsx", process.argv[1]!, "--serve", target], {
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    const request = <T extends Reply["type"]>(command: Command, reply: T) =>
      new Promise<Extract<Reply, { type: T }>>((done) => {
        const on = (message: Reply) => {
          if (message.type !== reply) return
          child.off("message", on)
          done(message as Extract<Reply, { type: T }>)
        }
        child.on("message", on)
        child.send(command)
      })
    child.once("message", (message: Reply) => {
      if (message.type === "ready") resolve({ child, port: message.port, request })
    })
    child.once("exit", (code) => reject(new Error(`${target} server exited with ${code}`)))
  })

const stop = async (server: Server) => {
  server.child.kill("SIGTERM")
  await new Promise((resolve) => server.child.once("exit", resolve))
}

const until = async (check: () => boolean, what: string, limitMs = 60_000) => {
  const deadline = Date.now() + limitMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
}

const percentile = (values: Array<number>, p: number) => {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

interface Fanout {
  /** Server CPU per delivered event, in microseconds (steadier than wall time on a shared machine). */
  readonly cpuPerDelivery: number
  readonly perSecond: number
  readonly total: number
  readonly p50: number
  readonly p99: number
}

/** `readers` connections to `/v1/events`, `events` events produced as fast as the server takes them. */
const fanout = async (server: Server, readers: number, events: number, batch: number): Promise<Fanout> => {
  const connections = Array.from({ length: readers }, () => openReader(server.port, "/v1/events", false))
  await Promise.all(connections.map((r) => r.opened))
  const cpuBefore = await server.request({ type: "cpu" }, "cpu")
  const started = now()
  await server.request({ type: "produce", total: events, batch }, "produced")
  await until(() => connections.every((r) => r.events >= events), "the readers")
  const seconds = (now() - started) / 1000
  const cpuAfter = await server.request({ type: "cpu" }, "cpu")
  const latencies = connections.flatMap((r) => r.latencies)
  for (const r of connections) r.close()
  return {
    cpuPerDelivery: (cpuAfter.micros - cpuBefore.micros) / (events * readers),
    perSecond: events / seconds,
    total: (events * readers) / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99)
  }
}

interface Scoped {
  readonly p50: number
  readonly p99: number
  readonly delivered: number
  readonly expected: number
  readonly bytesPerStream: number
  readonly heapPerStream: number
}

/** `readers` worker-scoped streams, one worker each, at `perSecond` events in total spread over the workers. */
const scoped = async (server: Server, readers: number, perSecond: number, seconds: number): Promise<Scoped> => {
  const { ids } = await server.request({ type: "workers", count: readers }, "workers")
  const before = await server.request({ type: "memory" }, "memory")
  const connections: Array<Reader> = []
  for (let i = 0; i < readers; i += 100) {
    const batch = ids.slice(i, i + 100).map((id) => openReader(server.port, `/v1/workers/${id}/events`, true))
    connections.push(...batch)
    await Promise.all(batch.map((r) => r.opened))
  }
  const idle = await server.request({ type: "memory" }, "memory")
  await server.request({ type: "pace", perSecond, seconds, workers: ids }, "produced")
  const expected = perSecond * seconds
  await until(() => connections.reduce((n, r) => n + r.events, 0) >= expected, "the scoped readers", 10_000)
    .catch(() => undefined)
  const latencies = connections.flatMap((r) => r.latencies)
  const delivered = connections.reduce((n, r) => n + r.events, 0)
  for (const r of connections) r.close()
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    delivered,
    expected,
    bytesPerStream: (idle.rss - before.rss) / readers,
    heapPerStream: (idle.heapUsed - before.heapUsed) / readers
  }
}

/** The run with the median throughput. */
const median = (runs: ReadonlyArray<Fanout>): Fanout =>
  [...runs].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(runs.length / 2)]!

const bench = async (options: {
  readonly events: number
  readonly fanoutEvents: number
  readonly readers: number
  readonly seconds: number
  readonly batch: number
  readonly rounds: number
}) => {
  // Both servers run at once and the throughput phases alternate between them, round after round, so a change in
  // the machine's load hits both sides alike; each side reports its median round.
  const servers = { bare: await start("bare"), yoi: await start("yoi") }
  const targets = ["bare", "yoi"] as const
  for (const target of targets) await fanout(servers[target], 1, Math.min(20_000, options.events), options.batch)
  const one = { bare: [] as Array<Fanout>, yoi: [] as Array<Fanout> }
  const hundred = { bare: [] as Array<Fanout>, yoi: [] as Array<Fanout> }
  for (let round = 0; round < options.rounds; round++) {
    for (const target of targets) one[target].push(await fanout(servers[target], 1, options.events, options.batch))
    for (const target of targets) {
      hundred[target].push(await fanout(servers[target], 100, options.fanoutEvents, options.batch))
    }
  }
  const scopedRuns = {
    bare: await scoped(servers.bare, options.readers, 1000, options.seconds),
    yoi: await scoped(servers.yoi, options.readers, 1000, options.seconds)
  }
  await Promise.all(targets.map((target) => stop(servers[target])))
  const result = (target: Target) => ({
    one: median(one[target]),
    hundred: median(hundred[target]),
    scoped: scopedRuns[target]
  })
  const bare = result("bare")
  const yoi = result("yoi")
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`
  const ms = (n: number) => `${n.toFixed(1)} ms`
  const row = (name: string, f: (r: typeof yoi) => string) => ({
    phase: name,
    "bare node:http": f(bare),
    "yoi-runtime": f(yoi)
  })
  console.log(`events in batches of ${options.batch}; throughput rows are the median of ${options.rounds} rounds`)
  console.table([
    row("1 reader: events/s", (r) => Math.round(r.one.perSecond).toLocaleString("en")),
    row("1 reader: server CPU per event", (r) => `${r.one.cpuPerDelivery.toFixed(2)} us`),
    row("1 reader: latency p50 / p99", (r) => `${ms(r.one.p50)} / ${ms(r.one.p99)}`),
    row("100 readers: events/s per reader", (r) => Math.round(r.hundred.perSecond).toLocaleString("en")),
    row("100 readers: deliveries/s", (r) => Math.round(r.hundred.total).toLocaleString("en")),
    row("100 readers: server CPU per delivery", (r) => `${r.hundred.cpuPerDelivery.toFixed(2)} us`),
    row("100 readers: latency p50 / p99", (r) => `${ms(r.hundred.p50)} / ${ms(r.hundred.p99)}`),
    row(
      `${options.readers} scoped readers @1000 ev/s: p50 / p99`,
      (r) => `${ms(r.scoped.p50)} / ${ms(r.scoped.p99)}`
    ),
    row(`${options.readers} scoped readers: delivered`, (r) => `${r.scoped.delivered} / ${r.scoped.expected}`),
    row("idle stream: heap / rss", (r) => `${kb(r.scoped.heapPerStream)} / ${kb(r.scoped.bytesPerStream)}`)
  ])
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`
  console.log(
    `1 reader throughput, yoi / bare: ${ratio(yoi.one.perSecond, bare.one.perSecond)} (aim >= 0.6x); ` +
      `server CPU per event, bare / yoi: ${ratio(bare.one.cpuPerDelivery, yoi.one.cpuPerDelivery)}`
  )
  console.log(
    `100 readers throughput, yoi / bare: ${ratio(yoi.hundred.perSecond, bare.hundred.perSecond)}; ` +
      `server CPU per delivery, bare / yoi: ${ratio(bare.hundred.cpuPerDelivery, yoi.hundred.cpuPerDelivery)}`
  )
  console.log(
    `${options.readers} scoped readers at 1000 ev/s: yoi p99 ${ms(yoi.scoped.p99)} (aim < 100 ms), ` +
      `bare p99 ${ms(bare.scoped.p99)}`
  )
  console.log(
    `memory per idle stream (heap), yoi / bare: ${kb(yoi.scoped.heapPerStream)} / ${kb(bare.scoped.heapPerStream)}`
  )
}

const { values } = parseArgs({
  options: {
    serve: { type: "string" },
    events: { type: "string", default: "100000" },
    "fanout-events": { type: "string", default: "5000" },
    readers: { type: "string", default: "1000" },
    seconds: { type: "string", default: "5" },
    batch: { type: "string", default: "100" },
    rounds: { type: "string", default: "3" }
  }
})

if (values.serve !== undefined) {
  const target = values.serve as Target
  if (target !== "yoi" && target !== "bare") throw new Error(`unknown target ${target}`)
  await serve(target)
} else {
  await bench({
    events: Number(values.events),
    fanoutEvents: Number(values["fanout-events"]),
    readers: Number(values.readers),
    seconds: Number(values.seconds),
    batch: Number(values.batch),
    rounds: Number(values.rounds)
  })
}
