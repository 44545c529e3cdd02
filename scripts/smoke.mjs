#!/usr/bin/env node
/**
 * A fast end-to-end smoke under whatever `node` runs it (plain JavaScript, no loader, so it runs on any supported
 * Node): starts `yoi-runtime` on its default SQLite store and `yoi-backend` with that runtime as a remote (and its
 * own embedded SQLite runtime), creates a worker on the remote through the Backend, takes one turn, reads the
 * transcript back through the Backend, then stops both with SIGTERM and requires exit code 0 and a drain from each.
 *
 *   node scripts/smoke.mjs        (after `npm run build`; scripts/node-matrix.sh --smoke runs it under Node 20/22/24)
 */
/* global fetch */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const RUNTIME_TOKEN = "smoke-runtime-token-0123456789"
const BACKEND_TOKEN = "smoke-backend-token-0123456789"
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "yoi-smoke-"))
const children = []

const start = (name, bin, args, env) => {
  const child = spawn(process.execPath, [path.join(root, bin), ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", HOME: dir, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const state = { name, child, stdout: "", stderr: "" }
  child.stdout.on("data", (c) => (state.stdout += c))
  child.stderr.on("data", (c) => (state.stderr += c))
  state.exit = new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)))
  children.push(state)
  return state
}

const waitFor = async (what, check, ms = 60_000) => {
  const until = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const ready = (state, re) =>
  waitFor(`${state.name}'s ready line`, () => {
    if (state.child.exitCode !== null) throw new Error(`${state.name} exited early: ${state.stderr}`)
    return re.exec(state.stdout)
  })

const call = async (base, method, route, body) => {
  const response = await fetch(`${base}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${BACKEND_TOKEN}`,
      ...(body === undefined ? {} : { "content-type": "application/json" })
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const json = await response.json()
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${JSON.stringify(json)}`)
  return json
}

const stop = async (state) => {
  state.child.kill("SIGTERM")
  const code = await state.exit
  if (code !== 0) throw new Error(`${state.name} exited with ${code} on SIGTERM: ${state.stderr}`)
  if (!/message=drained/.test(state.stderr)) throw new Error(`${state.name} did not log its drain: ${state.stderr}`)
}

const main = async () => {
  const started = Date.now()
  const runtime = start("yoi-runtime", "packages/runtime-server/bin/yoi-runtime.mjs",
    ["--runtime-id", "smoke", "--bind", "127.0.0.1:0", "--data-dir", path.join(dir, "runtime")],
    { YOI_RUNTIME_TOKEN: RUNTIME_TOKEN })
  const [, runtimeUrl] = await ready(runtime, /^yoi-runtime smoke listening on (http:\/\/\S+)$/m)
  fs.writeFileSync(path.join(dir, "backend.json"), JSON.stringify({
    embedded: { runtime_id: "local", store: `sqlite:${path.join(dir, "local.db")}` },
    remotes: [{ runtime_id: "smoke", endpoint: runtimeUrl, token: { env: "SMOKE_RUNTIME_TOKEN" } }]
  }))
  const backend = start("yoi-backend", "packages/workspace-server/bin/yoi-backend.mjs",
    ["--bind", "127.0.0.1:0", "--config", path.join(dir, "backend.json"), "--data-dir", path.join(dir, "backend")],
    { YOI_BACKEND_TOKEN: BACKEND_TOKEN, SMOKE_RUNTIME_TOKEN: RUNTIME_TOKEN })
  const [, base] = await ready(backend, /^yoi-backend listening on (http:\/\/\S+)$/m)

  await waitFor("the remote online", async () => {
    const { items } = await call(base, "GET", "/api/runtimes")
    return items.some((r) => r.runtime_id === "smoke" && r.status === "online")
  })
  await call(base, "POST", "/api/runtimes/smoke/workers", { worker_id: "smoke", display_name: "Smoke" })
  await call(base, "POST", "/api/runtimes/smoke/workers/smoke/input", { text: "hello from the smoke" })
  const transcript = await waitFor("the turn's reply", async () => {
    const page = await call(base, "GET", "/api/runtimes/smoke/workers/smoke/transcript")
    return page.items.length >= 2 ? page : undefined
  })
  const kinds = transcript.items.map((e) => e.data._tag)
  if (kinds[0] !== "user_input" || kinds[1] !== "assistant_message") {
    throw new Error(`unexpected transcript: ${JSON.stringify(kinds)}`)
  }
  await stop(backend)
  await stop(runtime)
  console.log(`smoke ok on node ${process.version}: one turn through the Backend, both drained, ` +
    `${Date.now() - started} ms`)
}

main().catch((error) => {
  console.error(`smoke FAILED on node ${process.version}: ${error instanceof Error ? error.message : error}`)
  for (const c of children) console.error(`--- ${c.name} stderr ---\n${c.stderr}`)
  process.exitCode = 1
}).finally(() => {
  for (const c of children) if (c.child.exitCode === null) c.child.kill("SIGKILL")
  fs.rmSync(dir, { recursive: true, force: true })
})
