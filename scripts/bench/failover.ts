/**
 * Failover time of `yoi-runtime` on PostgreSQL: an owner and a standby (real binaries, one runtime_id, one database)
 * under a little load; the owner is killed with SIGKILL and the time until the standby prints its ready line is
 * measured; a new standby is started and the new owner killed in turn, `--kills` times. Printed beside the lease
 * (the aim: the standby serves within lease + 2 s) and beside a cold start of the binary on the same database (the
 * part of a failover that is starting a runtime at all). The server is `YOI_TEST_PG_URL`, or a throwaway cluster.
 *
 *   npx tsx scripts/bench/failover.ts [--kills 5] [--lease-ms 2000] [--workers 20]
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import startPostgres from "../testing/pgGlobalSetup.js"

const { values: args } = parseArgs({
  options: {
    kills: { type: "string", default: "5" },
    "lease-ms": { type: "string", default: "2000" },
    workers: { type: "string", default: "20" }
  }
})
const KILLS = Number(args.kills)
const LEASE_MS = Number(args["lease-ms"])
const WORKERS = Number(args.workers)
const TOKEN = "failover-bench-token-0123456789"
const BIN = fileURLToPath(new URL("../../packages/runtime-server/bin/yoi-runtime.mjs", import.meta.url))
const READY = /^yoi-runtime \S+ listening on (http:\/\/\S+)$/m
const STANDBY = /^yoi-runtime \S+ standby on (http:\/\/\S+) /m

interface PgClient {
  connect(): Promise<void>
  query(text: string): Promise<unknown>
  end(): Promise<void>
}
const Pg = createRequire(import.meta.url)("pg") as { Client: new (config: { connectionString: string }) => PgClient }

const exec = async (url: string, statement: string) => {
  const client = new Pg.Client({ connectionString: url })
  await client.connect()
  await client.query(statement)
  await client.end()
}

interface Runtime {
  readonly child: ChildProcess
  readonly waitFor: (pattern: RegExp) => Promise<string>
}

const children = new Set<ChildProcess>()

const start = (argv: ReadonlyArray<string>, env: Record<string, string>): Runtime => {
  const child = spawn(process.execPath, [BIN, ...argv], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  children.add(child)
  child.once("exit", () => children.delete(child))
  let stdout = ""
  let stderr = ""
  const waiters = new Set<() => void>()
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString()
    for (const w of waiters) w()
  })
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  const waitFor = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(stdout)
        if (match !== null) {
          waiters.delete(check)
          resolve(match[1]!)
        }
      }
      waiters.add(check)
      child.once("exit", (code) => reject(new Error(`yoi-runtime exited (${code}) before ${pattern}: ${stderr}`)))
      check()
    })
  return { child, waitFor }
}

const kill = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

const api = (baseUrl: string, path: string, body: unknown) =>
  fetch(`${baseUrl}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  }).then((r) => {
    if (r.status >= 300) throw new Error(`${path} answered ${r.status}`)
    return r.json() as Promise<unknown>
  })

const percentile = (xs: ReadonlyArray<number>, p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits })

const main = async () => {
  const stopPostgres = startPostgres()
  const server = new URL(process.env.YOI_TEST_PG_URL!)
  const database = `yoi_bench_${randomBytes(5).toString("hex")}`
  await exec(server.toString(), `CREATE DATABASE ${database}`)
  const url = new URL(server)
  url.pathname = `/${database}`
  const dir = mkdtempSync(join(tmpdir(), "yoi-bench-failover-"))
  const tokenFile = join(dir, "token")
  writeFileSync(tokenFile, TOKEN)
  const configFile = join(dir, "config.json")
  writeFileSync(configFile, JSON.stringify({
    engines: { profiles: { "echo-d60000": { provider: "echo", delay_ms: 60_000 } } }
  }))
  const argv = ["--runtime-id", "bench", "--bind", "127.0.0.1:0", "--token-file", tokenFile, "--config", configFile,
    "--lease-ms", String(LEASE_MS), "--log-level", "warn"]
  const env = { YOI_RUNTIME_STORE: url.toString() }
  try {
    const coldStart = performance.now()
    let owner = start(argv, env)
    let ownerUrl = await owner.waitFor(READY)
    const cold = performance.now() - coldStart
    const times: Array<number> = []
    for (let k = 0; k < KILLS; k++) {
      const standby = start(argv, env)
      await standby.waitFor(STANDBY)
      // Load: workers with a turn running at the kill, which the new owner must record as interrupted.
      for (let w = 0; w < WORKERS; w++) {
        const created = await api(ownerUrl, "/v1/workers", { display_name: `k${k}w${w}`, engine: { profile: "echo-d60000" } }) as {
          worker: { worker_id: string }
        }
        await api(ownerUrl, `/v1/workers/${created.worker.worker_id}/input`, { text: "running at the kill" })
      }
      const killedAt = performance.now()
      await kill(owner.child)
      ownerUrl = await standby.waitFor(READY)
      times.push(performance.now() - killedAt)
      owner = standby
      console.log(`kill ${k + 1}: the standby served after ${fmt(times[k]!)} ms`)
    }
    await kill(owner.child)
    const p50 = percentile(times, 0.5)
    const max = Math.max(...times)
    console.log(`\nfailover of yoi-runtime on PostgreSQL over ${KILLS} kills (lease ${fmt(LEASE_MS)} ms, ${WORKERS} ` +
      "turns running at each kill)")
    console.log(`  p50 ${fmt(p50)} ms, max ${fmt(max)} ms`)
    console.log(`  p50 / lease: ${fmt(p50 / LEASE_MS, 2)}x; max / lease: ${fmt(max / LEASE_MS, 2)}x`)
    console.log(`  cold start of the binary on the same database (baseline): ${fmt(cold)} ms; ` +
      `p50 failover - lease = ${fmt(p50 - LEASE_MS)} ms`)
    console.log(`aim: the standby serves within lease + 2 s: ${max <= LEASE_MS + 2_000 ? "met" : "NOT met"} ` +
      `(max ${fmt(max)} ms vs ${fmt(LEASE_MS + 2_000)} ms)`)
  } finally {
    for (const child of children) child.kill("SIGKILL")
    rmSync(dir, { recursive: true, force: true })
    await exec(server.toString(), `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined)
    stopPostgres()
  }
}

main().catch((error) => {
  console.error(error)
  for (const child of children) child.kill("SIGKILL")
  process.exit(1)
})
