/**
 * Faults between the Backend and a remote runtime. The real `yoi-backend` binary runs with an embedded runtime
 * (`local`), a remote `yoi-runtime` reached directly (`other`) and a remote `yoi-runtime` on SQLite (`gpu`) reached
 * through a TCP proxy of our own that injects, one phase at a time: a SIGKILL of the remote and its restart on
 * another port, a stall mid-stream, slow answers, connections cut again and again, refused connections, and a
 * graceful restart. Workers on all three runtimes run streaming turns throughout, and two browser event streams
 * (`/api/events` and one gpu worker's stream) stay open, resuming with `Last-Event-ID` like `EventSource` if they end.
 *
 * It checks that the Backend keeps serving the other runtimes (every command to them succeeds), reports the
 * remote's status (`offline` while it is down, `online` again after), answers the remote's failures with typed
 * errors (`RuntimeUnavailable`, `UpstreamTimeout`), never shows the remote's endpoint, token or paths, and that its
 * event streams deliver every durable event of the remote exactly once and in order once it is back.
 *
 *   npx tsx scripts/reliability/faults.ts [--phase-seconds 3]
 */
import { echo } from "@yoi/worker-runtime/testing"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { parseArgs } from "node:util"
import { backendCatalogue, violation } from "./lib/catalogue.js"
import * as Proc from "./lib/proc.js"
import { FaultProxy } from "./lib/proxy.js"
import { check, Figures, fail, finish, heading, note, quantile, sleep, waitUntil } from "./lib/report.js"
import { type Frame, openSse, type SseReader, seqOf, waitFrames } from "./lib/sse.js"

const { values: flags } = parseArgs({ options: { "phase-seconds": { type: "string", default: "3" } }, strict: true })
const PHASE_MS = Number(flags["phase-seconds"]) * 1000

const BACKEND_TOKEN = "faults-backend-token-1f4e8a20c7"
const GPU_TOKEN = "faults-gpu-token-7b3d91e5a8c2"
const OTHER_TOKEN = "faults-other-token-2c6f0d4b93e1"
const TIMEOUT_MS = 1_500
const TERMINAL = new Set(["turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"])

const figures = new Figures()
/** Every Backend answer and stream byte, scanned for secrets at the end. */
const transcriptOfBackend: Array<string> = []
let phase = "setup"
interface Stat {
  ok: number
  readonly errors: Map<string, number>
  readonly latencies: Array<number>
}
const stats = new Map<string, Stat>()

const record = (runtimeId: string, ok: boolean, tag: string, ms: number) => {
  const key = `${phase} / ${runtimeId}`
  const s: Stat = stats.get(key) ?? { ok: 0, errors: new Map(), latencies: [] }
  stats.set(key, s)
  if (ok) s.ok += 1
  else s.errors.set(tag, (s.errors.get(tag) ?? 0) + 1)
  s.latencies.push(ms)
}

let backendUrl = ""

const backend = async (method: string, path: string, body?: unknown) => {
  const started = performance.now()
  const response = await fetch(backendUrl + path, {
    method,
    headers: {
      authorization: `Bearer ${BACKEND_TOKEN}`,
      ...(body === undefined ? {} : { "content-type": "application/json" })
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(15_000)
  })
  const text = await response.text()
  transcriptOfBackend.push(JSON.stringify([...response.headers]), text)
  const ms = performance.now() - started
  return { status: response.status, text, json: text.length > 0 ? JSON.parse(text) : undefined, ms }
}

/** Turns on one worker through the Backend for as long as `active()`; failures of `gpu` are expected and typed. */
const drive = async (runtimeId: string, workerId: string, active: () => boolean) => {
  const base = `/api/runtimes/${runtimeId}/workers/${workerId}`
  for (let n = 0; active(); n++) {
    const reply = await backend("POST", `${base}/input`, { text: `${phase} ${n} ${"streaming words ".repeat(6)}` })
      .catch((e: Error) => ({ status: 0, text: e.message, json: undefined, ms: 0 }))
    const ok = reply.status === 202
    const tag = ok ? "" : (reply.json?._tag as string | undefined) ?? `status ${reply.status}`
    record(runtimeId, ok, tag, reply.ms)
    if (!ok) {
      if (runtimeId !== "gpu") fail(`${phase}: input to ${runtimeId}/${workerId} answered ${reply.status} ${reply.text.slice(0, 200)}`)
      else if (reply.status !== 0 && tag !== "WorkerBusy") {
        const problem = violation(
          { status: reply.status, body: reply.text, headers: {}, timedOut: false, error: undefined, ms: reply.ms },
          backendCatalogue,
          { tags: ["RuntimeUnavailable", "UpstreamTimeout"], serverErrors: true }
        )
        if (problem !== undefined) fail(`${phase}: gpu input: ${problem}`)
      }
      await sleep(100)
      continue
    }
    for (let i = 0; i < 200 && active(); i++) {
      const w = await backend("GET", base).catch(() => undefined)
      if (w !== undefined) record(runtimeId, w.status === 200, w.status === 200 ? "" : w.json?._tag ?? String(w.status), w.ms)
      if (w !== undefined && w.status !== 200 && runtimeId !== "gpu") fail(`${phase}: GET ${runtimeId}/${workerId} answered ${w.status}`)
      if (w?.status === 200 && w.json.status !== "running") break
      await sleep(50)
    }
  }
}

/** An event stream that, like a browser's EventSource, reconnects with `Last-Event-ID` whenever it ends. */
const followForever = (path: string) => {
  const frames: Array<Frame> = []
  let current: SseReader | undefined
  let stopped = false
  let reconnects = 0
  let raw = 0
  const loop = async () => {
    let lastId: string | undefined
    while (!stopped) {
      const reader = openSse(backendUrl + path, { token: BACKEND_TOKEN, lastEventId: lastId })
      current = reader
      const offset = reader.frames.length
      await reader.ended
      raw += reader.bytes
      for (const f of reader.frames.slice(offset)) {
        frames.push(f)
        transcriptOfBackend.push(JSON.stringify(f))
      }
      lastId = reader.lastId
      if (!stopped) {
        reconnects += 1
        await sleep(250)
      }
    }
  }
  const done = loop()
  return {
    frames: () => [...frames, ...(current?.frames ?? [])],
    reconnects: () => reconnects,
    live: () => current,
    stop: async () => {
      stopped = true
      current?.close()
      await done
      return { frames, reconnects, raw }
    }
  }
}

const runtimeStatus = async (runtimeId: string) => {
  const r = await backend("GET", `/api/runtimes/${runtimeId}`).catch(() => undefined)
  return r?.status === 200 ? (r.json.status as string) : "unknown"
}

const main = async () => {
  const dir = Proc.tempDir("yoi-faults-")
  const started = performance.now()
  const gpuTokenFile = NodePath.join(dir, "gpu.token")
  const otherTokenFile = NodePath.join(dir, "other.token")
  NodeFs.writeFileSync(gpuTokenFile, GPU_TOKEN)
  NodeFs.writeFileSync(otherTokenFile, OTHER_TOKEN)
  const gpuStore = `sqlite:${NodePath.join(dir, "gpu.db")}`
  const gpuOptions = { runtimeId: "gpu", store: gpuStore, tokenFile: gpuTokenFile, extra: ["--heartbeat-ms", "1000", "--grace-ms", "500"] }
  let gpu = await Proc.startRuntime(gpuOptions)
  const other = await Proc.startRuntime({ runtimeId: "other", store: "memory", tokenFile: otherTokenFile, extra: ["--heartbeat-ms", "1000"] })
  const proxy = await FaultProxy.start(gpu.port)
  const config = NodePath.join(dir, "backend.json")
  NodeFs.writeFileSync(config, JSON.stringify({
    embedded: { runtime_id: "local", store: "memory" },
    remotes: [
      { runtime_id: "gpu", endpoint: proxy.url, token: { env: "GPU_TOKEN" }, timeout_ms: TIMEOUT_MS, probe_interval_ms: 250 },
      { runtime_id: "other", endpoint: other.url, token: { file: otherTokenFile }, timeout_ms: TIMEOUT_MS, probe_interval_ms: 250 }
    ]
  }))
  const backendChild = await Proc.start(Proc.BACKEND_BIN, ["--bind", "127.0.0.1:0", "--config", config, "--data-dir", NodePath.join(dir, "backend")], {
    YOI_BACKEND_TOKEN: BACKEND_TOKEN,
    GPU_TOKEN
  }, Proc.BACKEND_READY)
  backendUrl = backendChild.url
  await waitUntil(async () => (await runtimeStatus("gpu")) === "online" && (await runtimeStatus("other")) === "online", "both remotes online", 20_000)

  const all = followForever("/api/events")
  await sleep(300)
  const workers: Array<readonly [string, string]> = [["gpu", "g1"], ["gpu", "g2"], ["local", "l1"], ["other", "o1"]]
  for (const [runtimeId, workerId] of workers) {
    const r = await backend("POST", `/api/runtimes/${runtimeId}/workers`, {
      worker_id: workerId,
      display_name: workerId,
      engine: echo({ chunk_size: 4, delay_ms: 10 })
    })
    if (r.status !== 201) fail(`create ${runtimeId}/${workerId} answered ${r.status} ${r.text}`)
  }
  const one = followForever("/api/runtimes/gpu/workers/g1/events")
  let driving = true
  const drivers = workers.map(([runtimeId, workerId]) => drive(runtimeId, workerId, () => driving))

  const restartGpu = async (signal: NodeJS.Signals) => {
    await Proc.kill(gpu, signal)
    const detected = performance.now()
    await waitUntil(async () => (await runtimeStatus("gpu")) === "offline", `gpu reported offline after ${signal}`, 10_000)
    figures.add(`${phase}: reported offline after, ms`, Math.round(performance.now() - detected))
    const down = await backend("GET", "/api/runtimes/gpu")
    check(typeof down.json.status_reason === "string", `${phase}: an offline runtime has no status_reason`)
    const fast = await backend("GET", "/api/runtimes/gpu/workers/g1")
    check(fast.status === 503 && fast.json._tag === "RuntimeUnavailable", `${phase}: a call to the offline remote answered ${fast.status} ${fast.text}`)
    check(fast.ms < TIMEOUT_MS, `${phase}: a call to an offline remote took ${fast.ms.toFixed(0)} ms (it should fail fast)`)
    await sleep(PHASE_MS)
    gpu = await Proc.startRuntime(gpuOptions)
    proxy.retarget(gpu.port)
  }

  const phases: Array<readonly [string, () => Promise<void>]> = [
    ["baseline", () => sleep(PHASE_MS)],
    ["remote SIGKILLed, down, restarted on another port", () => restartGpu("SIGKILL")],
    ["remote stalls mid-stream", async () => {
      proxy.stall()
      await sleep(PHASE_MS)
      await waitUntil(async () => (await runtimeStatus("gpu")) === "offline", "gpu reported offline while stalled", 10_000)
      proxy.pass()
    }],
    ["remote answers slowly (+150 ms per chunk)", async () => {
      proxy.slow(150)
      await sleep(PHASE_MS)
      proxy.pass()
    }],
    ["connections cut every 300 ms", async () => {
      const end = performance.now() + PHASE_MS
      while (performance.now() < end) {
        await sleep(300)
        proxy.cutAll()
      }
    }],
    ["remote refuses connections", async () => {
      proxy.refuse()
      await sleep(PHASE_MS)
      await waitUntil(async () => (await runtimeStatus("gpu")) === "offline", "gpu reported offline while refusing", 10_000)
      proxy.pass()
    }],
    ["remote restarts gracefully (SIGTERM)", () => restartGpu("SIGTERM")]
  ]
  for (const [name, run] of phases) {
    phase = name
    heading(name)
    await run()
    const back = performance.now()
    await waitUntil(async () => (await runtimeStatus("gpu")) === "online", `gpu online again after "${name}"`, 20_000)
    figures.add(`${name}: online again after, ms`, Math.round(performance.now() - back))
  }

  phase = "settle"
  heading("settle: all up, one last turn each, streams catch up")
  driving = false
  await Promise.all(drivers)
  for (const [runtimeId, workerId] of workers) {
    await waitUntil(async () => (await backend("GET", `/api/runtimes/${runtimeId}/workers/${workerId}`)).json?.status !== "running", `${workerId} idle`, 20_000)
  }
  const finals = new Map<string, string>()
  for (const [runtimeId, workerId] of workers) {
    const r = await backend("POST", `/api/runtimes/${runtimeId}/workers/${workerId}/input`, { text: "final turn" })
    if (r.status === 202) finals.set(r.json.turn_id, runtimeId)
    else fail(`the final input to ${runtimeId}/${workerId} answered ${r.status} ${r.text}`)
  }
  const caughtUp = await waitUntil(() => {
    const ended = new Set(all.frames().filter((f) => TERMINAL.has(f.event ?? "")).map((f) => f.data.turn_id))
    return Array.from(finals.keys()).every((t) => ended.has(t))
  }, "the all-runtimes stream to deliver every final turn's end", 30_000)
  if (caughtUp) await sleep(300)
  const allResult = await all.stop()
  const oneResult = await one.stop()

  // The remote's own durable log, read directly (not through the proxy or the Backend).
  const head = await (await fetch(`${gpu.url}/v1/runtime`, { headers: { authorization: `Bearer ${GPU_TOKEN}` } })).json() as { cursor: string }
  const log = openSse(`${gpu.url}/v1/events?cursor=earliest`, { token: GPU_TOKEN })
  await waitFrames(log, (frames) => frames.some((f) => f.id === head.cursor), 20_000)
  log.close()
  const durable = log.frames.filter((f) => f.seq !== undefined)

  const continuity = (name: string, frames: ReadonlyArray<Frame>, wanted: ReadonlyArray<Frame>) => {
    const got = frames.filter((f) => f.data?.runtime_id === "gpu" && f.seq !== undefined && f.event !== "stream.lagged")
    let duplicates = 0
    let disorder = 0
    for (let i = 1; i < got.length; i++) {
      if (got[i]!.seq! === got[i - 1]!.seq!) duplicates += 1
      else if (got[i]!.seq! < got[i - 1]!.seq!) {
        disorder += 1
        if (disorder <= 3) note(`${name}: seq ${got[i]!.seq} (${got[i]!.event}) after seq ${got[i - 1]!.seq} (${got[i - 1]!.event}); previous ${got.slice(Math.max(0, i - 4), i - 1).map((f) => `${f.seq}:${f.event}`).join(" ")}`)
      }
    }
    const delivered = new Set(got.map((f) => f.seq!))
    const missing = wanted.filter((f) => !delivered.has(f.seq!))
    figures.add(`${name}: gpu events delivered (durable + deltas)`, got.length)
    figures.add(`${name}: durable gpu events expected`, wanted.length)
    figures.add(`${name}: missing / duplicated / out of order`, `${missing.length} / ${duplicates} / ${disorder}`)
    check(missing.length === 0, `${name}: ${missing.length} durable gpu events never delivered (first: seq ${missing[0]?.seq} ${missing[0]?.event})`)
    check(duplicates === 0, `${name}: ${duplicates} gpu events delivered twice`)
    check(disorder === 0, `${name}: ${disorder} gpu events out of order`)
  }
  heading("checks")
  continuity("/api/events", allResult.frames, durable)
  // The worker stream opened after g1 was created: it starts at the position its first (id-only) frame names.
  const g1Start = seqOf(oneResult.frames.find((f) => f.id !== undefined)?.id ?? "") ?? 0
  continuity("gpu worker g1 stream", oneResult.frames, durable.filter((f) => f.data.worker_id === "g1" && f.seq! > g1Start))
  figures.add("browser stream reconnects (/api/events, g1)", `${allResult.reconnects}, ${oneResult.reconnects}`)
  for (const runtimeId of ["local", "other"]) {
    const seqs = allResult.frames
      .filter((f) => f.data?.runtime_id === runtimeId && f.seq !== undefined)
      .map((f) => f.seq!)
    check(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), `/api/events: ${runtimeId} events repeated or out of order`)
  }

  // The other runtimes kept serving through every phase; the remote's failures were typed.
  let otherFailures = 0
  const otherLatencies: Array<number> = []
  let gpuFailures = 0
  let gpuOk = 0
  for (const [key, s] of stats) {
    if (key.endsWith("/ gpu")) {
      gpuOk += s.ok
      for (const n of s.errors.values()) gpuFailures += n
      note(`${key}: ${s.ok} ok, errors ${JSON.stringify(Object.fromEntries(s.errors))}`)
    } else {
      for (const n of s.errors.values()) otherFailures += n
      otherLatencies.push(...s.latencies)
    }
  }
  otherLatencies.sort((a, b) => a - b)
  figures.add("commands and reads to local + other during faults (failed)", `${otherLatencies.length} (${otherFailures})`)
  figures.add("local + other latency p50 / p99, ms", `${quantile(otherLatencies, 0.5).toFixed(1)} / ${quantile(otherLatencies, 0.99).toFixed(1)}`)
  figures.add("commands and reads to gpu (ok / typed failures)", `${gpuOk} / ${gpuFailures}`)
  figures.add("faults injected (kills, stalls, slow, cuts, refusals)", `2, 1, 1, ${proxy.cut}, ${proxy.refused}`)
  check(otherFailures === 0, `${otherFailures} commands to the healthy runtimes failed during faults`)

  // Nothing the Backend sent names the remote's endpoint, token or paths.
  const canaries = [GPU_TOKEN, OTHER_TOKEN, `127.0.0.1:${proxy.port}`, `127.0.0.1:${gpu.port}`, `127.0.0.1:${other.port}`, dir, "gpu.db", "gpu.token", "other.token"]
  const everything = transcriptOfBackend.join("\n")
  for (const canary of canaries) check(!everything.includes(canary), `a Backend answer or frame contains ${canary}`)
  figures.add("Backend answers and frames scanned for endpoints, tokens, paths", transcriptOfBackend.length)

  await Proc.kill(backendChild, "SIGTERM")
  await Proc.kill(gpu, "SIGTERM")
  await Proc.kill(other, "SIGTERM")
  await proxy.close()
  NodeFs.rmSync(dir, { recursive: true, force: true })
  figures.total("seconds", Math.round((performance.now() - started) / 1000))
  finish(figures)
}

await main()
