/**
 * The two binaries' footprint as an operator sees it: each bin is launched with `node` exactly as a service unit
 * would run it (its default SQLite store in a fresh data directory), the time from spawn to its ready line is
 * taken, then it idles and its resident set size is read from `/proc/<pid>/status` (`VmRSS`, and the peak `VmHWM`).
 * The CPU time the process had used by its ready line is printed too: on a busy machine the wall time to ready
 * mostly measures the other processes, the CPU time does not. Every figure is the median of `--runs` launches,
 * printed with its ratio to the aim (a ratio above 1 misses it).
 *
 * Aims (issue 16): runtime at most 100 MB RSS, Backend at most 140 MB, ready line within 1.5 s of the spawn.
 *
 *   npx tsx scripts/bench/footprint.ts [--runs 3] [--idle-ms 2000] [--node <path to a node binary>]
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))
const MB = 1024 * 1024

interface Binary {
  readonly name: string
  readonly bin: string
  readonly args: (dataDir: string) => ReadonlyArray<string>
  readonly env: Record<string, string>
  readonly ready: RegExp
  readonly aimRssMb: number
}

const BINARIES: ReadonlyArray<Binary> = [
  {
    name: "yoi-runtime",
    bin: "packages/runtime-server/bin/yoi-runtime.mjs",
    args: (dir) => ["--runtime-id", "footprint", "--bind", "127.0.0.1:0", "--data-dir", dir],
    env: { YOI_RUNTIME_TOKEN: "footprint-runtime-token-0123456789" },
    ready: /^yoi-runtime \S+ listening on /m,
    aimRssMb: 100
  },
  {
    name: "yoi-backend",
    bin: "packages/workspace-server/bin/yoi-backend.mjs",
    args: (dir) => ["--bind", "127.0.0.1:0", "--data-dir", dir],
    env: { YOI_BACKEND_TOKEN: "footprint-backend-token-0123456789" },
    ready: /^yoi-backend listening on /m,
    aimRssMb: 140
  }
]
const AIM_READY_MS = 1500

interface Sample {
  readonly readyMs: number
  /** CPU time (user + system) the process had used when its ready line arrived: unlike `readyMs`, not inflated by
   * other processes competing for the cores. */
  readonly cpuMs: number
  readonly rssMb: number
  readonly hwmMb: number
}

const CLOCK_TICKS_PER_SECOND = 100

const cpuMsOf = (pid: number): number => {
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields of the line.
  const stat = NodeFs.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND
}

const statusField = (pid: number, field: string): number => {
  const status = NodeFs.readFileSync(`/proc/${pid}/status`, "utf8")
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)
  if (match === null) throw new Error(`no ${field} in /proc/${pid}/status`)
  return (Number(match[1]) * 1024) / MB
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const stop = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode)
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000)
    child.once("exit", (code) => {
      clearTimeout(timer)
      resolve(code)
    })
    child.kill("SIGTERM")
  })

const measure = async (node: string, binary: Binary, idleMs: number): Promise<Sample> => {
  const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), `yoi-footprint-${binary.name}-`))
  const started = performance.now()
  const child = spawn(node, [NodePath.join(ROOT, binary.bin), ...binary.args(dir)], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", HOME: dir, ...binary.env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  try {
    let stdout = ""
    let stderr = ""
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    const [readyMs, cpuMs] = await new Promise<[number, number]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${binary.name}: no ready line in 120 s; stderr: ${stderr}`)), 120_000)
      child.once("exit", (code) => reject(new Error(`${binary.name} exited with ${code} before its ready line: ${stderr}`)))
      child.stdout!.on("data", (chunk: Buffer) => {
        stdout += chunk.toString()
        if (binary.ready.test(stdout)) {
          clearTimeout(timer)
          resolve([performance.now() - started, cpuMsOf(child.pid!)])
        }
      })
    })
    await sleep(idleMs)
    const sample = { readyMs, cpuMs, rssMb: statusField(child.pid!, "VmRSS"), hwmMb: statusField(child.pid!, "VmHWM") }
    const code = await stop(child)
    if (code !== 0) throw new Error(`${binary.name} exited with ${code} on SIGTERM: ${stderr}`)
    return sample
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL")
    NodeFs.rmSync(dir, { recursive: true, force: true })
  }
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

const main = async () => {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "3" },
      "idle-ms": { type: "string", default: "2000" },
      node: { type: "string", default: process.execPath }
    }
  })
  const runs = Number(values.runs)
  const idleMs = Number(values["idle-ms"])
  const node = values.node
  console.log(`footprint: ${runs} launches per binary, ${idleMs} ms idle before reading RSS, node ${node}`)
  let missed = 0
  for (const binary of BINARIES) {
    const samples: Array<Sample> = []
    for (let i = 0; i < runs; i++) samples.push(await measure(node, binary, idleMs))
    const rss = median(samples.map((s) => s.rssMb))
    const hwm = median(samples.map((s) => s.hwmMb))
    const ready = median(samples.map((s) => s.readyMs))
    const cpu = median(samples.map((s) => s.cpuMs))
    const rssRatio = rss / binary.aimRssMb
    const readyRatio = ready / AIM_READY_MS
    if (rssRatio > 1 || readyRatio > 1) missed++
    console.log(
      `${binary.name.padEnd(12)} idle RSS ${rss.toFixed(1)} MB (peak ${hwm.toFixed(1)} MB) = ${rssRatio.toFixed(2)}x ` +
        `the ${binary.aimRssMb} MB aim; ready in ${ready.toFixed(0)} ms = ${readyRatio.toFixed(2)}x the ` +
        `${AIM_READY_MS} ms aim (CPU to ready ${cpu.toFixed(0)} ms); runs: ${samples.map((s) => `${s.rssMb.toFixed(0)} MB/${s.readyMs.toFixed(0)} ms`).join(", ")}`
    )
  }
  console.log(missed === 0 ? "every aim met" : `${missed} binary(ies) miss an aim`)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
