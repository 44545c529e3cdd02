/**
 * Load and soak: `yoi-runtime` (SQLite) and `yoi-backend` (with that runtime as a remote) as child processes, many
 * workers with concurrent streaming turns (half driven directly, half through the Backend) and many SSE readers on
 * both, for a bounded time in rounds with a quiet settle after each. It records throughput, p50/p99 latencies and
 * both processes' resident memory over time, and fails when
 *
 * - memory keeps growing after the load ends (the last quarter of a settle window above its first quarter by more
 *   than max(8 MiB, 10%)), or the settled memory of the last round is far above the first round's;
 * - the heap leaks: after each round's settle both processes collect garbage and report `process.memoryUsage()`
 *   (they run with `--expose-gc` and the `YOI_DEBUG_HEAP_FILE` hook, read on SIGUSR2); from round 3 on (the first
 *   rounds fill caches, JIT code and the event backlogs) the settled heap must stay flat, within 5 %;
 * - a stream leaks: open file descriptors do not return to their idle baseline once every reader is gone, or the
 *   runtime cannot hand out all of its `--max-event-streams` slots again (and refuse the next with a typed 503);
 * - any request of the load fails, or a reader's stream ends while it was wanted.
 *
 *   npx tsx scripts/reliability/soak.ts [--seconds 10] [--rounds 8] [--settle 5] [--workers 16] [--readers 24]
 *
 * `--seconds` is the load of one round.
 */
import { echo } from "@yoi/worker-runtime/testing"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { parseArgs } from "node:util"
import * as Proc from "./lib/proc.js"
import { check, Figures, fail, finish, heading, note, quantile, sleep, waitUntil } from "./lib/report.js"
import { openSse, type SseReader } from "./lib/sse.js"

const { values: flags } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    rounds: { type: "string", default: "8" },
    settle: { type: "string", default: "5" },
    workers: { type: "string", default: "16" },
    readers: { type: "string", default: "24" }
  },
  strict: true
})
const ROUNDS = Number(flags.rounds)
const LOAD_MS = Number(flags.seconds) * 1000 * ROUNDS
const SETTLE_MS = Number(flags.settle) * 1000
const WORKERS = Number(flags.workers)
const READERS = Number(flags.readers)
const MAX_STREAMS = Math.max(64, READERS)

const RUNTIME_TOKEN = "soak-runtime-token-4a9c1e7f20"
const BACKEND_TOKEN = "soak-backend-token-8d2b6f0e93"

const figures = new Figures()
const latencies = new Map<string, Array<number>>()
let requests = 0
let failures = 0
let inputs = 0
let turns = 0

interface Target {
  readonly name: string
  readonly url: string
  readonly token: string
  readonly workers: string
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1)

const call = async (target: Target, label: string, method: string, path: string, body?: unknown) => {
  const started = performance.now()
  const response = await fetch(target.url + path, {
    method,
    headers: {
      authorization: `Bearer ${target.token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" })
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000)
  })
  const text = await response.text()
  const ms = performance.now() - started
  requests += 1
  const key = `${label} (${target.name})`
  const list = latencies.get(key) ?? []
  if (list.length === 0) latencies.set(key, list)
  list.push(ms)
  return { status: response.status, json: text.length > 0 ? JSON.parse(text) : undefined }
}

const drive = async (target: Target, workerId: string, until: number) => {
  const base = `${target.workers}/${workerId}`
  for (let n = 0; performance.now() < until; n++) {
    const input = await call(target, "POST input", "POST", `${base}/input`, { text: `soak ${n} ${"load words ".repeat(20)}` })
    if (input.status !== 202) {
      failures += 1
      fail(`input to ${workerId} via ${target.name} answered ${input.status} ${JSON.stringify(input.json)}`)
      await sleep(200)
      continue
    }
    inputs += 1
    for (;;) {
      const w = await call(target, "GET worker", "GET", base)
      if (w.status !== 200) {
        failures += 1
        fail(`GET ${workerId} via ${target.name} answered ${w.status}`)
        break
      }
      if (w.json.status !== "running") {
        turns += 1
        break
      }
      await sleep(20)
    }
    if (n % 5 === 0) {
      const page = await call(target, "GET transcript", "GET", `${base}/transcript?limit=50`)
      if (page.status !== 200) {
        failures += 1
        fail(`transcript of ${workerId} via ${target.name} answered ${page.status}`)
      }
    }
  }
}

const main = async () => {
  const dir = Proc.tempDir("yoi-soak-")
  const started = performance.now()
  const tokenFile = NodePath.join(dir, "runtime.token")
  const heapFiles = { runtime: NodePath.join(dir, "runtime.heap.json"), backend: NodePath.join(dir, "backend.heap.json") }
  NodeFs.writeFileSync(tokenFile, RUNTIME_TOKEN)
  const runtime = await Proc.startRuntime({
    runtimeId: "soak",
    store: `sqlite:${NodePath.join(dir, "soak.db")}`,
    tokenFile,
    extra: ["--heartbeat-ms", "2000", "--max-event-streams", String(MAX_STREAMS)],
    env: { YOI_DEBUG_HEAP_FILE: heapFiles.runtime },
    nodeArgs: ["--expose-gc"]
  })
  const config = NodePath.join(dir, "backend.json")
  NodeFs.writeFileSync(config, JSON.stringify({
    embedded: null,
    // The Backend sees only its workspace's workers on a remote: the soak's are created with its stamp.
    workspace_id: "soak",
    remotes: [{ runtime_id: "soak", endpoint: runtime.url, token: { file: tokenFile }, probe_interval_ms: 1000 }]
  }))
  const backend = await Proc.start(Proc.BACKEND_BIN, ["--bind", "127.0.0.1:0", "--config", config, "--data-dir", NodePath.join(dir, "backend")], {
    YOI_BACKEND_TOKEN: BACKEND_TOKEN,
    YOI_DEBUG_HEAP_FILE: heapFiles.backend
  }, Proc.BACKEND_READY, 60_000, ["--expose-gc"])
  const direct: Target = { name: "direct", url: runtime.url, token: RUNTIME_TOKEN, workers: "/v1/workers" }
  const proxied: Target = { name: "Backend", url: backend.url, token: BACKEND_TOKEN, workers: "/api/runtimes/soak/workers" }
  await waitUntil(async () => (await call(proxied, "setup", "GET", "/api/runtimes/soak")).json?.status === "online", "the Backend to see the runtime", 20_000)
  const workerIds = Array.from({ length: WORKERS }, (_, i) => `soak-w${i}`)
  for (const id of workerIds) {
    const r = await call(direct, "setup", "POST", "/v1/workers", { worker_id: id, display_name: id, metadata: { "yoi.workspace": "soak" }, engine: echo({ chunk_size: 8, delay_ms: 2 }) })
    if (r.status !== 201) fail(`create ${id} answered ${r.status}`)
  }
  await sleep(1_000)
  const baseline = { runtime: Proc.openFds(runtime.pid), backend: Proc.openFds(backend.pid) }
  const memory: Array<{ t: number; runtime: number; backend: number }> = []
  const sample = () =>
    memory.push({
      t: (performance.now() - started) / 1000,
      runtime: Proc.rssMiB(runtime.pid),
      backend: Proc.rssMiB(backend.pid)
    })
  const sampler = setInterval(sample, 500)
  sample()
  note(`idle: runtime ${memory[0]!.runtime.toFixed(0)} MiB, ${baseline.runtime} fds; Backend ${memory[0]!.backend.toFixed(0)} MiB, ${baseline.backend} fds`)

  const settled: Array<{ runtime: number; backend: number }> = []
  const heaps: Array<{ runtime: Proc.HeapReading; backend: Proc.HeapReading }> = []
  let events = 0
  let lagged = 0
  const roundMs = LOAD_MS / ROUNDS
  for (let round = 1; round <= ROUNDS; round++) {
    heading(`round ${round}: ${(roundMs / 1000).toFixed(0)} s of load, then ${SETTLE_MS / 1000} s quiet`)
    const readers: Array<SseReader> = []
    for (let i = 0; i < READERS; i++) {
      const viaBackend = i % 2 === 1
      const workerId = workerIds[i % WORKERS]!
      const path = viaBackend
        ? (i % 4 === 1 ? "/api/events" : `/api/runtimes/soak/workers/${workerId}/events`)
        : (i % 4 === 0 ? "/v1/events" : `/v1/workers/${workerId}/events`)
      const token = viaBackend ? BACKEND_TOKEN : RUNTIME_TOKEN
      readers.push(openSse((viaBackend ? backend.url : runtime.url) + path, { token }))
    }
    const statuses = await Promise.all(readers.map((r) => r.status))
    check(statuses.every((s) => s === 200), `round ${round}: readers answered ${statuses.filter((s) => s !== 200).join(", ")}`)
    let endedEarly = 0
    for (const r of readers) void r.ended.then(() => (endedEarly += 1))
    const loadStart = performance.now()
    const until = loadStart + roundMs
    const before = { inputs, turns, requests }
    await Promise.all(workerIds.map((id, i) => drive(i % 2 === 0 ? direct : proxied, id, until).catch((e: Error) => {
      failures += 1
      fail(`driver ${id}: ${e.message}`)
    })))
    const seconds = (performance.now() - loadStart) / 1000
    await sleep(500)
    const delivered = readers.reduce((n, r) => n + r.frames.filter((f) => f.seq !== undefined).length, 0)
    lagged += readers.reduce((n, r) => n + r.frames.filter((f) => f.event === "stream.lagged").length, 0)
    check(endedEarly === 0, `round ${round}: ${endedEarly} event streams ended during the load`)
    events += delivered
    for (const r of readers) r.close()
    figures.add(`round ${round}: turns/s, requests/s, events delivered/s`, `${((turns - before.turns) / seconds).toFixed(1)}, ${((requests - before.requests) / seconds).toFixed(0)}, ${(delivered / seconds).toFixed(0)}`)
    const settleStart = memory.length
    await sleep(SETTLE_MS)
    const window = memory.slice(settleStart)
    const quarter = Math.max(1, Math.floor(window.length / 4))
    for (const proc of ["runtime", "backend"] as const) {
      const first = window.slice(0, quarter).reduce((s, m) => s + m[proc], 0) / quarter
      const last = window.slice(-quarter).reduce((s, m) => s + m[proc], 0) / quarter
      const peak = Math.max(...memory.map((m) => m[proc]))
      figures.add(`round ${round}: ${proc} RSS after the load, first → last quarter of the settle, MiB`, `${first.toFixed(1)} → ${last.toFixed(1)}`)
      check(last - first <= Math.max(8, 0.1 * peak), `round ${round}: ${proc} memory keeps growing after the load (${first.toFixed(1)} → ${last.toFixed(1)} MiB)`)
    }
    settled.push({ runtime: window.at(-1)!.runtime, backend: window.at(-1)!.backend })
    const heap = {
      runtime: await Proc.settledHeap(runtime, heapFiles.runtime),
      backend: await Proc.settledHeap(backend, heapFiles.backend)
    }
    check(heap.runtime.gc && heap.backend.gc, "the servers did not run with --expose-gc: the heap figures are not settled")
    heaps.push(heap)
    note(`round ${round} settled after GC: runtime heap ${mib(heap.runtime.heapUsed)} MiB (rss ${mib(heap.runtime.rss)}), ` +
      `Backend heap ${mib(heap.backend.heapUsed)} MiB (rss ${mib(heap.backend.rss)})`)
  }
  clearInterval(sampler)

  heading("leaks")
  const fdsBack = await waitUntil(() => Proc.openFds(runtime.pid) <= baseline.runtime + 4 && Proc.openFds(backend.pid) <= baseline.backend + 4, "file descriptors back to the idle baseline", 15_000)
  figures.add("open fds idle → after the load (runtime, Backend)", `${baseline.runtime} → ${Proc.openFds(runtime.pid)}, ${baseline.backend} → ${Proc.openFds(backend.pid)}`)
  if (!fdsBack) fail("event streams or connections leaked file descriptors")
  // Every stream slot of the runtime is free again but the one the Backend's upstream subscription holds for its
  // whole life: all the others can be opened, and one more is refused, typed.
  const free = MAX_STREAMS - 1
  const slots = Array.from({ length: free }, () => openSse(`${runtime.url}/v1/events`, { token: RUNTIME_TOKEN }))
  const slotStatuses = await Promise.all(slots.map((s) => s.status))
  const extra = openSse(`${runtime.url}/v1/events`, { token: RUNTIME_TOKEN })
  const extraStatus = await extra.status
  await extra.ended
  for (const s of slots) s.close()
  const opened = slotStatuses.filter((s) => s === 200).length
  figures.add(`runtime stream slots free after the load (of ${MAX_STREAMS}, one is the Backend's); the next one answered`, `${opened}; ${extraStatus} ${JSON.parse(extra.errorBody || "{}")._tag ?? ""}`)
  check(opened === free, `only ${opened} of ${free} free stream slots could be opened after the load: streams leaked`)
  check(extraStatus === 503 && extra.errorBody.includes("RuntimeUnavailable"), `the stream over the limit answered ${extraStatus} ${extra.errorBody}`)
  if (settled.length >= 2) {
    for (const proc of ["runtime", "backend"] as const) {
      const first = settled[0]![proc]
      const last = settled.at(-1)![proc]
      figures.add(`${proc} settled RSS, round 1 → round ${settled.length}, MiB`, `${first.toFixed(1)} → ${last.toFixed(1)}`)
      check(last <= first * 1.3 + 16, `${proc} settled memory grew from ${first.toFixed(1)} to ${last.toFixed(1)} MiB across rounds`)
    }
  }

  heading("settled heap per round (after a forced GC)")
  for (const proc of ["runtime", "backend"] as const) {
    figures.add(`${proc} heapUsed per round, MiB`, heaps.map((h) => mib(h[proc].heapUsed)).join(", "))
    figures.add(`${proc} RSS per round (same moments), MiB`, heaps.map((h) => mib(h[proc].rss)).join(", "))
    const steady = heaps.slice(2).map((h) => h[proc].heapUsed)
    if (steady.length >= 2) {
      const low = Math.min(...steady)
      const high = Math.max(...steady)
      const spread = (high / low - 1) * 100
      figures.add(`${proc} settled heap spread from round 3 on`, `${spread.toFixed(1)} %`)
      check(spread <= 5, `${proc} settled heap is not flat from round 3 on: ${mib(low)} to ${mib(high)} MiB (${spread.toFixed(1)} %)`)
    }
  }

  heading("memory over time (RSS MiB, every 5 s)")
  for (let i = 0; i < memory.length; i += 10) {
    const m = memory[i]!
    note(`t=${m.t.toFixed(0).padStart(3)} s  runtime ${m.runtime.toFixed(1).padStart(6)}  Backend ${m.backend.toFixed(1).padStart(6)}`)
  }
  figures.add("peak RSS, MiB (runtime, Backend)", `${Math.max(...memory.map((m) => m.runtime)).toFixed(1)}, ${Math.max(...memory.map((m) => m.backend)).toFixed(1)}`)
  figures.add("workers, SSE readers, rounds × load seconds", `${WORKERS}, ${READERS}, ${ROUNDS} × ${(roundMs / 1000).toFixed(0)}`)
  figures.add("inputs accepted, turns finished, requests, events delivered", `${inputs}, ${turns}, ${requests}, ${events}`)
  figures.add("requests failed, readers lagged", `${failures}, ${lagged}`)
  for (const [key, values] of [...latencies].filter(([k]) => !k.startsWith("setup")).sort()) {
    const sorted = [...values].sort((a, b) => a - b)
    figures.add(`${key} p50 / p99 ms`, `${quantile(sorted, 0.5).toFixed(1)} / ${quantile(sorted, 0.99).toFixed(1)}`)
  }
  check(failures === 0, `${failures} requests failed under load`)
  await Proc.kill(backend, "SIGTERM")
  await Proc.kill(runtime, "SIGTERM")
  NodeFs.rmSync(dir, { recursive: true, force: true })
  figures.total("seconds", Math.round((performance.now() - started) / 1000))
  finish(figures)
}

await main()
