import { writeTestConfig } from "@yoi/runtime-server/testing"
import * as NodeChild from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"

/** The few echo profiles the console tests use (engine settings are runtime configuration). */
const engines = {
  profiles: {
    "echo-c3-d40": { provider: "echo", chunk_size: 3, delay_ms: 40 },
    "echo-c2-d60": { provider: "echo", chunk_size: 2, delay_ms: 60 }
  }
}

const ROOT = NodePath.resolve(import.meta.dirname, "../../..")
export const CONSOLE_DIR = NodePath.join(ROOT, "packages/console")
const BACKEND_BIN = NodePath.join(ROOT, "packages/workspace-server/bin/yoi-backend.mjs")
const RUNTIME_BIN = NodePath.join(ROOT, "packages/runtime-server/bin/yoi-runtime.mjs")

export const CHROMIUM = "/usr/bin/chromium"

/** Builds the console when `npm ci` has not (a checkout where only `npm install --ignore-scripts` ran). */
export const ensureBuilt = () => {
  if (NodeFs.existsSync(NodePath.join(CONSOLE_DIR, "dist/index.html"))) return
  NodeChild.execFileSync(process.execPath, [NodePath.join(ROOT, "node_modules/vite/bin/vite.js"), "build"], {
    cwd: CONSOLE_DIR,
    stdio: "ignore"
  })
}

export const tempDir = (prefix: string) => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), prefix))

export interface Proc {
  readonly child: NodeChild.ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly stop: () => Promise<void>
}

const spawn = (bin: string, args: ReadonlyArray<string>, env: Record<string, string>): Proc => {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("YOI_")))
  const child = NodeChild.spawn(process.execPath, [bin, ...args], {
    env: { ...clean, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let out = ""
  let err = ""
  child.stdout!.on("data", (d) => (out += String(d)))
  child.stderr!.on("data", (d) => (err += String(d)))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      await exited
    }
  }
}

/** Polls until `check` answers a value (not undefined), or fails after `timeoutMs` naming what it waited for. */
export const until = async <A>(
  what: string,
  check: () => A | undefined | Promise<A | undefined>,
  timeoutMs = 60_000
) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const waitForLine = (proc: Proc, pattern: RegExp, what: string) =>
  until(what, () => {
    if (proc.child.exitCode !== null) throw new Error(`${what}: exited: ${proc.stderr()}`)
    return pattern.exec(proc.stdout()) ?? undefined
  }, 120_000)

export const REMOTE_TOKEN = "remote-runtime-token-for-the-console-e2e"

/** A real `yoi-runtime` on a loopback port (port 0 the first time; the same port again after a kill). */
export const startRuntime = async (dataDir: string, port = 0) => {
  const proc = spawn(RUNTIME_BIN, [
    "--runtime-id", "remote",
    "--display-name", "Remote box",
    "--bind", `127.0.0.1:${port}`,
    "--store", `sqlite:${NodePath.join(dataDir, "remote.db")}`,
    "--log-level", "warn",
    "--grace-ms", "100",
    "--config", writeTestConfig(dataDir, { engines })
  ], { YOI_RUNTIME_TOKEN: REMOTE_TOKEN })
  const match = await waitForLine(proc, /listening on (http:\/\/127\.0\.0\.1:(\d+))/, "yoi-runtime to listen")
  return { proc, url: match[1]!, port: Number(match[2]) }
}

/** A real `yoi-backend` with its embedded runtime `local` and the remote as `remote`; its token is generated. */
export const startBackend = async (dataDir: string, remoteUrl: string) => {
  const config = NodePath.join(dataDir, "backend.json")
  NodeFs.writeFileSync(config, JSON.stringify({
    embedded: { runtime_id: "local", engines },
    companion: { profile: "echo-c3-d40" },
    remotes: [{
      runtime_id: "remote",
      display_name: "Remote box",
      endpoint: remoteUrl,
      token: { env: "REMOTE_RUNTIME_TOKEN" },
      probe_interval_ms: 300,
      timeout_ms: 5_000
    }]
  }))
  const proc = spawn(BACKEND_BIN, ["--bind", "127.0.0.1:0", "--data-dir", dataDir, "--config", config], {
    REMOTE_RUNTIME_TOKEN: REMOTE_TOKEN
  })
  const ready = await waitForLine(proc, /listening on (http:\/\/127\.0\.0\.1:\d+)/, "yoi-backend to listen")
  const login = await waitForLine(proc, /sign in: (\S+\/login\?token=(\S+))/, "the sign-in link")
  return { proc, url: ready[1]!, loginUrl: login[1]!, token: login[2]! }
}

/** Headless Chromium from Debian, with no network access beyond what the page asks for. */
export const launchChromium = (): Promise<Browser> =>
  chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync"
    ]
  })

/** A JSON call to the Backend with the bearer token (the test's own setup, not the page's). */
export const api = async (base: string, token: string, method: string, path: string, body?: unknown) => {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" })
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, json: text.length > 0 ? JSON.parse(text) as any : undefined }
}

const AXE = NodeFs.readFileSync(NodePath.join(ROOT, "node_modules/axe-core/axe.min.js"), "utf8")

/**
 * Runs axe-core in the page (evaluated over the DevTools protocol, so the page's CSP, which forbids inline
 * scripts, stays as it is) and returns the serious and critical violations.
 */
export const axeViolations = async (page: Page) => {
  await page.evaluate(AXE)
  const violations = await page.evaluate(async () => {
    const result = await (globalThis as any).axe.run(document, { resultTypes: ["violations"] })
    return (result.violations as Array<any>).map((v) => ({
      id: v.id as string,
      impact: v.impact as string,
      nodes: (v.nodes as Array<any>).map((n) => String(n.target)).slice(0, 3)
    }))
  })
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical")
}

export const IMAGES = NodePath.join(ROOT, "docs/images")
