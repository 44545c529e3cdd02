/**
 * The real binaries as child processes: `yoi-runtime` and `yoi-backend` started the way an operator starts them,
 * waited for by their ready line, killed with any signal, and measured from `/proc` (resident memory, open file
 * descriptors).
 */
import { writeTestConfig } from "@yoi/runtime-server/testing"
import { type ChildProcess, spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "../../..")
export const RUNTIME_BIN = NodePath.join(ROOT, "packages/runtime-server/bin/yoi-runtime.mjs")
export const BACKEND_BIN = NodePath.join(ROOT, "packages/workspace-server/bin/yoi-backend.mjs")

export interface Child {
  readonly process: ChildProcess
  readonly pid: number
  readonly url: string
  readonly port: number
  readonly stderr: () => string
  readonly exited: Promise<number | null>
  readonly startMs: number
}

/** Starts a binary and resolves with its URL once it printed its ready line. */
export const start = (
  bin: string,
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  ready: RegExp,
  timeoutMs = 60_000,
  nodeArgs: ReadonlyArray<string> = []
): Promise<Child> =>
  new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(process.execPath, [...nodeArgs, bin, ...args], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)))
    const timer = setTimeout(() => reject(new Error(`${bin} printed no ready line in ${timeoutMs} ms: ${stderr}`)), timeoutMs)
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
      if (stderr.length > 200_000) stderr = stderr.slice(-100_000)
    })
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
      const match = ready.exec(stdout)
      if (match !== null) {
        clearTimeout(timer)
        const url = match[1]!
        resolve({
          process: child,
          pid: child.pid!,
          url,
          port: Number(new URL(url).port),
          stderr: () => stderr,
          exited,
          startMs: performance.now() - started
        })
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`${bin} exited with ${code} before it was ready: ${stderr.slice(-2000)}`))
    })
  })

export const RUNTIME_READY = /yoi-runtime \S+ listening on (http:\/\/\S+)/
export const BACKEND_READY = /yoi-backend listening on (http:\/\/\S+)/

const runtimeArgs = (options: RuntimeOptions) => [
  "--runtime-id",
  options.runtimeId,
  "--bind",
  `127.0.0.1:${options.port ?? 0}`,
  "--store",
  options.store,
  "--token-file",
  options.tokenFile,
  "--log-level",
  "warn",
  "--config",
  writeTestConfig(NodePath.dirname(options.tokenFile)),
  ...(options.extra ?? [])
]

export interface RuntimeOptions {
  readonly runtimeId: string
  readonly store: string
  readonly tokenFile: string
  readonly port?: number | undefined
  readonly extra?: ReadonlyArray<string> | undefined
  readonly env?: Record<string, string> | undefined
  /** Options for `node` itself, before the binary (`--expose-gc`). */
  readonly nodeArgs?: ReadonlyArray<string> | undefined
}

export const startRuntime = (options: RuntimeOptions) =>
  start(RUNTIME_BIN, runtimeArgs(options), options.env ?? {}, RUNTIME_READY, 60_000, options.nodeArgs ?? [])

/** What `process.memoryUsage()` said in the child after a forced GC (see the servers' `DebugHeap` hook). */
export interface HeapReading {
  readonly rss: number
  readonly heapUsed: number
  readonly heapTotal: number
  readonly external: number
  readonly arrayBuffers: number
  readonly gc: boolean
  readonly at: number
}

/**
 * Asks a child started with `--expose-gc` and `YOI_DEBUG_HEAP_FILE=<file>` to collect garbage and report its memory
 * (SIGUSR2), and waits for the report.
 */
export const settledHeap = async (child: Child, file: string, timeoutMs = 10_000): Promise<HeapReading> => {
  const read = (): HeapReading | undefined => {
    try {
      return JSON.parse(NodeFs.readFileSync(file, "utf8")) as HeapReading
    } catch {
      return undefined
    }
  }
  const before = read()?.at ?? 0
  const asked = Date.now()
  process.kill(child.pid, "SIGUSR2")
  for (;;) {
    const reading = read()
    if (reading !== undefined && reading.at > before) return reading
    if (Date.now() - asked > timeoutMs) throw new Error(`no heap report from pid ${child.pid} in ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Starts `yoi-runtime` and SIGKILLs it after `ms`, whether or not it got ready (a crash during recovery). */
export const killDuringStart = (options: RuntimeOptions, ms: number): Promise<{ readonly wasReady: boolean }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [RUNTIME_BIN, ...runtimeArgs(options)], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
      stdio: ["ignore", "pipe", "ignore"]
    })
    let stdout = ""
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    const exited = new Promise((r) => child.once("exit", r))
    setTimeout(() => {
      child.kill("SIGKILL")
      void exited.then(() => resolve({ wasReady: RUNTIME_READY.test(stdout) }))
    }, ms)
  })

export const kill = async (child: Child, signal: NodeJS.Signals) => {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return
  child.process.kill(signal)
  await child.exited
}

/** Resident memory in MiB, from /proc (0 when unavailable). */
export const rssMiB = (pid: number): number => {
  const status = NodeFs.readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0)
  return kb / 1024
}

/** Open file descriptors (sockets included), from /proc. */
export const openFds = (pid: number): number => NodeFs.readdirSync(`/proc/${pid}/fd`).length

export const tempDir = (prefix: string) => NodeFs.mkdtempSync(NodePath.join(process.env.TMPDIR ?? "/tmp", prefix))
