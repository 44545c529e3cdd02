/**
 * Security checks of the runtime (`yoi-runtime`) and the Backend (`yoi-backend`):
 *
 * - constant-time token comparison: `crypto.timingSafeEqual` is spied on (through Node's builtin-module sync) and
 *   every token check, over HTTP and direct, for tokens of every length, prefix and one-character change, must be
 *   made with it, on buffers of equal length, and must refuse; the right token must pass. No timing is measured.
 * - no route works without auth: every endpoint of `RuntimeApi` and `BrowserApi` (enumerated from the API
 *   definitions, so a new route is covered without editing this file) and the docs routes answer a typed 401
 *   without credentials, except the declared public ones (`/healthz`, `/readyz`, `/login`);
 * - request body and header size limits: answered with typed 413/431/400 at once, before a body is read;
 * - the Backend's leak check under a misbehaving remote: for random upstream error bodies whose every field quotes
 *   the remote's endpoint, token and store path, no Backend answer contains any of them;
 * - the binary refuses to serve without a token, with a short token, or unauthenticated on a non-loopback address.
 *
 *   npx tsx scripts/reliability/security.ts [--runs 300]
 */
import { HttpApi } from "@effect/platform"
import { RuntimeApi } from "@yoi/runtime-api"
import { Auth } from "@yoi/runtime-server"
import { Auth as BackendAuth, BrowserApi } from "@yoi/workspace-server"
import { Redacted } from "effect"
import * as fc from "fast-check"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as Http from "node:http"
import { createRequire, syncBuiltinESMExports } from "node:module"
import * as NodePath from "node:path"
import { parseArgs } from "node:util"
import { forgedAuthorization } from "./lib/arbitraries.js"
import { backendCatalogue, runtimeCatalogue, violation } from "./lib/catalogue.js"
import { json, send } from "./lib/http.js"
import * as Proc from "./lib/proc.js"
import { check, Figures, finish, heading } from "./lib/report.js"
import { startBackend, startRuntime } from "./lib/targets.js"

const { values: flags } = parseArgs({ options: { runs: { type: "string", default: "300" } }, strict: true })
const RUNS = Number(flags.runs)

const RUNTIME_TOKEN = "security-runtime-token-6e2a9c4f1b"
const BACKEND_TOKEN = "security-backend-token-0d7f3b8e52"
const REMOTE_TOKEN = "security-remote-canary-9a41c7e3d0"
const figures = new Figures()

// --- constant time ------------------------------------------------------------------------------------------------

interface Comparison {
  readonly a: number
  readonly b: number
}
const comparisons: Array<Comparison> = []
const crypto = createRequire(import.meta.url)("node:crypto") as typeof import("node:crypto")
const original = crypto.timingSafeEqual
crypto.timingSafeEqual = ((a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
  comparisons.push({ a: a.byteLength, b: b.byteLength })
  return original(a, b)
}) as typeof crypto.timingSafeEqual
// ESM importers of node:crypto (the auth modules) see the spy from now on.
syncBuiltinESMExports()

const constantTime = async (runtimePort: number, backendPort: number) => {
  heading("constant-time token comparison")
  const runtimeCheck = Auth.makeCheck(Auth.token(Redacted.make(RUNTIME_TOKEN)))
  const backendToken = Redacted.make(BACKEND_TOKEN)
  let direct = 0
  const candidates = (token: string) => {
    const out = new Set<string>()
    for (let n = 0; n <= token.length * 2; n++) out.add(token.slice(0, n) + "x".repeat(Math.max(0, n - token.length)))
    for (let i = 0; i < token.length; i++) {
      out.add(token.slice(i))
      out.add(`${token.slice(0, i)}${token[i] === "A" ? "B" : "A"}${token.slice(i + 1)}`)
    }
    out.add(token.toUpperCase())
    out.add(`${token} `)
    out.add(`\u00e9${token.slice(1)}`)
    out.delete(token)
    return out
  }
  for (const presented of candidates(RUNTIME_TOKEN)) {
    comparisons.length = 0
    const accepted = runtimeCheck(presented)
    direct += 1
    check(!accepted, `the runtime accepted ${JSON.stringify(presented)}`)
    check(comparisons.length === 1 && comparisons[0]!.a === comparisons[0]!.b, `the runtime compared ${JSON.stringify(presented)} without timingSafeEqual on equal lengths: ${JSON.stringify(comparisons)}`)
  }
  for (const presented of candidates(BACKEND_TOKEN)) {
    comparisons.length = 0
    const accepted = BackendAuth.tokenMatches(backendToken, presented)
    direct += 1
    check(!accepted, `the Backend accepted ${JSON.stringify(presented)}`)
    check(presented.length === 0 || (comparisons.length === 1 && comparisons[0]!.a === comparisons[0]!.b), `the Backend compared ${JSON.stringify(presented)} without timingSafeEqual on equal lengths`)
  }
  comparisons.length = 0
  check(runtimeCheck(RUNTIME_TOKEN) && comparisons.length === 1, "the runtime refused its own token, or did not use timingSafeEqual")
  comparisons.length = 0
  check(BackendAuth.tokenMatches(backendToken, BACKEND_TOKEN) && comparisons.length === 1, "the Backend refused its own token")
  figures.add("tokens of every length, prefix, suffix and one-char change refused, checked direct", direct)

  // Over HTTP: every forged bearer token and login token is refused and was compared with timingSafeEqual.
  let http = 0
  const forged = fc.tuple(forgedAuthorization(RUNTIME_TOKEN), forgedAuthorization(BACKEND_TOKEN))
  const result = await fc.check(fc.asyncProperty(forged, async ([rt, be]) => {
    for (const [port, header, path] of [[runtimePort, rt, "/v1/runtime"], [backendPort, be, "/api/runtimes"]] as const) {
      comparisons.length = 0
      const reply = await send(port, { method: "GET", path, headers: header === undefined ? [] : [["authorization", header]] })
      http += 1
      if (reply.status !== 401 && !(reply.status === 431 && (header?.length ?? 0) > 8_000)) throw new Error(`${path} with ${JSON.stringify(header?.slice(0, 80))} answered ${reply.status}`)
      const bearer = header !== undefined && /^bearer ./i.test(header) && reply.status === 401
      if (bearer && (comparisons.length === 0 || comparisons.some((c) => c.a !== c.b))) {
        throw new Error(`${path}: a bearer token was not compared with timingSafeEqual on equal lengths: ${JSON.stringify(comparisons)}`)
      }
    }
    const token = (be ?? "").replace(/^Bearer /, "")
    if (token !== BACKEND_TOKEN && token.length > 0) {
      comparisons.length = 0
      const login = await send(backendPort, { method: "GET", path: `/login?token=${encodeURIComponent(token)}` })
      http += 1
      if (login.status !== 401 || login.headers["set-cookie"] !== undefined) throw new Error(`login with a forged token answered ${login.status}`)
      // At least one: the in-process remote runtime compares the Backend's token on every probe meanwhile.
      if (comparisons.length === 0 || comparisons.some((c) => c.a !== c.b)) throw new Error("a login token was not compared in constant time")
    }
  }), { numRuns: RUNS })
  check(!result.failed, `over HTTP: ${String(result.errorInstance)}`)
  figures.add("forged bearer and login tokens refused over HTTP, each compared with timingSafeEqual", http)
}

// --- no route without auth ----------------------------------------------------------------------------------------

const endpointsOf = (api: HttpApi.HttpApi.Any) => {
  const out: Array<readonly [string, string]> = []
  HttpApi.reflect(api as any, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => {
      out.push([endpoint.method, endpoint.path.replace(/:runtime_id/g, "sec-local").replace(/:worker_id/g, "sec-w")])
    }
  })
  return out
}

const noRouteWithoutAuth = async (runtimePort: number, backendPort: number) => {
  heading("no route works without auth")
  const targets = [
    { name: "runtime", port: runtimePort, routes: [...endpointsOf(RuntimeApi), ["GET", "/openapi.json"], ["GET", "/docs"]] as const, public: ["GET /healthz", "GET /readyz"], catalogue: runtimeCatalogue },
    { name: "Backend", port: backendPort, routes: endpointsOf(BrowserApi.BrowserApi), public: ["GET /healthz", "GET /login"], catalogue: backendCatalogue }
  ]
  for (const target of targets) {
    let checked = 0
    for (const [method, path] of target.routes) {
      const key = `${method} ${path}`
      for (const credentials of [[], [["authorization", "Bearer wrong-token-of-some-length"]], [["cookie", "yoi_session=forged"]], [["authorization", "Basic Zm9vOmJhcg=="]]] as Array<Array<[string, string]>>) {
        const reply = await send(target.port, {
          method,
          path,
          headers: [...credentials, ...(method === "POST" ? [["content-type", "application/json"] as [string, string]] : [])],
          body: method === "POST" ? "{}" : undefined
        })
        checked += 1
        if (key === "GET /login") {
          // Public, but it is itself the token check: without `?token=` it refuses and sets no cookie.
          check(reply.status === 401 && reply.headers["set-cookie"] === undefined, `${target.name} ${key} without a token answered ${reply.status}`)
        } else if (key === "POST /api/session") {
          // The console's sign-in: public, and itself the token check (`{}` carries no token: a typed 400).
          check(reply.status === 400 && reply.headers["set-cookie"] === undefined, `${target.name} ${key} without a token answered ${reply.status}`)
        } else if (target.public.includes(key)) {
          check(reply.status === 200, `${target.name} public ${key} answered ${reply.status}`)
        } else {
          const problem = violation(reply, target.catalogue, { tags: ["Unauthorized"] })
          check(problem === undefined, `${target.name} ${key} without valid credentials: ${problem}`)
        }
      }
    }
    figures.add(`${target.name}: routes (from the API definition) × 4 credential forms refused`, `${target.routes.length} × 4 = ${checked}`)
  }
}

// --- size limits --------------------------------------------------------------------------------------------------

const sizeLimits = async (runtimePort: number, backendPort: number) => {
  heading("request body and header size limits")
  for (const [name, port, token, limit, path, catalogue] of [
    ["runtime", runtimePort, RUNTIME_TOKEN, 4 * 1024 * 1024, "/v1/workers", runtimeCatalogue],
    ["Backend", backendPort, BACKEND_TOKEN, 8 * 1024 * 1024, "/api/runtimes/sec-local/workers", backendCatalogue]
  ] as const) {
    // A huge declared length is refused from the headers alone: the answer comes although no body is ever sent.
    const declared = await send(port, { method: "POST", path, headers: [["authorization", `Bearer ${token}`], ["content-type", "application/json"], ["content-length", String(1024 ** 3)]], timeoutMs: 5_000 })
    check(violation(declared, catalogue, { tags: ["PayloadTooLarge"] }) === undefined, `${name}: a 1 GiB Content-Length without a body: ${violation(declared, catalogue, { tags: ["PayloadTooLarge"] })}`)
    const over = await send(port, { method: "POST", path, headers: [["authorization", `Bearer ${token}`], ["content-type", "application/json"]], body: `{"display_name":"${"x".repeat(limit)}"}`, timeoutMs: 15_000 })
    check(violation(over, catalogue, { tags: ["PayloadTooLarge"] }) === undefined, `${name}: a body over ${limit} bytes: ${violation(over, catalogue, { tags: ["PayloadTooLarge"] })}`)
    const chunked = await send(port, { method: "POST", path, headers: [["authorization", `Bearer ${token}`], ["content-type", "application/json"], ["transfer-encoding", "chunked"]], body: "2\r\n{}\r\n0\r\n\r\n" })
    check(violation(chunked, catalogue, { tags: ["InvalidInput"] }) === undefined, `${name}: a chunked body: ${violation(chunked, catalogue, { tags: ["InvalidInput"] })}`)
    const headers = await send(port, { method: "GET", path, headers: [["authorization", `Bearer ${token}`], ["x-filler", "h".repeat(20_000)]] })
    check(violation(headers, catalogue, { tags: ["RequestHeadersTooLarge"] }) === undefined, `${name}: 20 KB of headers: ${violation(headers, catalogue, { tags: ["RequestHeadersTooLarge"] })}`)
    const unauthenticated = await send(port, { method: "POST", path, headers: [["content-type", "application/json"], ["content-length", String(limit * 4)]] })
    check(unauthenticated.status === 413 || unauthenticated.status === 401, `${name}: an unauthenticated oversized request answered ${unauthenticated.status}`)
    figures.add(`${name}: body limit ${limit} bytes, headers limit ${Http.maxHeaderSize} bytes: 1 GiB declared / over / chunked / headers`, `${declared.status} in ${declared.ms.toFixed(0)} ms / ${over.status} / ${chunked.status} / ${headers.status}`)
  }
}

// --- leaks under a misbehaving remote -----------------------------------------------------------------------------

const leaks = async () => {
  heading("Backend leak check against a remote whose errors quote its secrets")
  const dir = Proc.tempDir("yoi-security-")
  const storePath = NodePath.join(dir, "secret-store.db")
  let nextBody: { status: number; body: string } = { status: 500, body: "{}" }
  const server = Http.createServer((req, res) => {
    if (req.url === "/readyz") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "ready", runtime_id: "evil" }))
      return
    }
    res.writeHead(nextBody.status, { "content-type": "application/json", location: `http://127.0.0.1/${REMOTE_TOKEN}` }).end(nextBody.body)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as { port: number }).port
  const endpoint = `http://127.0.0.1:${port}`
  const backend = await startBackend({
    token: BACKEND_TOKEN,
    config: { embedded: null, remotes: [{ runtime_id: "evil", endpoint, token: { env: "EVIL_TOKEN" } }] },
    env: { EVIL_TOKEN: REMOTE_TOKEN }
  })
  // What the Backend knows about the remote: its endpoint and its token. (A path only the remote knows can only be
  // kept out of what the Backend rebuilds; validation messages are passed on by design, scrubbed of these.)
  const canaries = [REMOTE_TOKEN, endpoint, `127.0.0.1:${port}`]
  const quote = fc.constantFrom(...canaries, storePath).map((c) => `see ${c} for details`)
  const tagged = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...runtimeCatalogue.entries()) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom("SqlError", "Whatever", ""), fc.constantFrom(400, 404, 409, 500, 502, 503)) }
  )
  const body = fc.record({
    _tag: fc.constant(""),
    message: quote,
    worker_id: quote,
    turn_id: quote,
    status: quote,
    field: quote,
    path: quote,
    holder_worker_id: quote,
    operation: quote,
    cursor: quote,
    earliest_cursor: quote,
    limit_bytes: fc.constant(1)
  })

  const routes = [
    ["GET", "/api/runtimes/evil/workers"],
    ["POST", "/api/runtimes/evil/workers", "{\"display_name\":\"x\"}"],
    ["GET", "/api/runtimes/evil/workers/w1"],
    ["POST", "/api/runtimes/evil/workers/w1/input", "{\"text\":\"x\"}"],
    ["POST", "/api/runtimes/evil/workers/w1/stop"],
    ["DELETE", "/api/runtimes/evil/workers/w1"],
    ["GET", "/api/runtimes/evil/workers/w1/transcript"],
    ["GET", "/api/runtimes/evil/workers/w1/events?cursor=earliest"],
    ["GET", "/api/workers"],
    ["GET", "/api/runtimes/evil"]
  ] as const
  let answers = 0
  const cases = fc.tuple(body, tagged, fc.constantFrom(...routes), fc.boolean())
  const result = await fc.check(fc.asyncProperty(cases, async ([fields, [tag, s], route, garbage]) => {
    const [method, path, payload] = route
    const b = { ...fields, _tag: tag }
    nextBody = { status: s, body: garbage ? `<html>${JSON.stringify(b)}</html>` : JSON.stringify(b) }
    const reply = await json(backend.port, method, path, {
      token: BACKEND_TOKEN,
      ...(payload === undefined ? {} : { body: JSON.parse(payload) })
    })
    answers += 1
    const seen = `${JSON.stringify(reply.headers)}\n${reply.body}`
    const leaked = canaries.find((c) => seen.includes(c))
    if (leaked !== undefined) throw new Error(`${method} ${path} after upstream ${s} ${nextBody.body.slice(0, 200)} leaked ${leaked}: ${reply.body.slice(0, 300)}`)
    const problem = violation(reply, backendCatalogue, { success: true, serverErrors: true })
    if (problem !== undefined) throw new Error(`${method} ${path} after upstream ${s}: ${problem}`)
  }), { numRuns: RUNS })
  check(!result.failed, `leak check: ${String(result.errorInstance)}\n      counterexample: ${JSON.stringify(result.counterexample)?.slice(0, 600)}`)
  figures.add("Backend answers to a remote quoting its endpoint, token and paths (leaks)", `${answers} (${result.failed ? "FAILED" : 0})`)
  await backend.dispose()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  NodeFs.rmSync(dir, { recursive: true, force: true })
}

// --- the binary's refusals ----------------------------------------------------------------------------------------

const refusals = async () => {
  heading("yoi-runtime refuses to serve unprotected")
  const dir = Proc.tempDir("yoi-security-bin-")
  const shortFile = NodePath.join(dir, "short")
  NodeFs.writeFileSync(shortFile, "short")
  const cases: Array<readonly [string, ReadonlyArray<string>, Record<string, string>]> = [
    ["no token", ["--bind", "127.0.0.1:0", "--store", "memory"], {}],
    ["a short token", ["--bind", "127.0.0.1:0", "--store", "memory", "--token-file", shortFile], {}],
    ["no auth on a non-loopback address", ["--bind", "0.0.0.0:0", "--store", "memory", "--insecure-no-auth"], {}],
    ["no auth together with a token", ["--bind", "127.0.0.1:0", "--store", "memory", "--insecure-no-auth"], { YOI_RUNTIME_TOKEN: RUNTIME_TOKEN }]
  ]
  const results = await Promise.all(cases.map(([name, args, env]) =>
    new Promise<readonly [string, number | null, string]>((resolve) => {
      const child = spawn(process.execPath, [Proc.RUNTIME_BIN, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] })
      let out = ""
      child.stdout!.on("data", (c: Buffer) => (out += c.toString()))
      child.stderr!.on("data", (c: Buffer) => (out += c.toString()))
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000)
      child.once("exit", (code) => {
        clearTimeout(timer)
        resolve([name, code, out])
      })
    })))
  for (const [name, code, out] of results) {
    check(code === 1 && !out.includes("listening"), `yoi-runtime with ${name} exited ${code}: ${out.slice(0, 200)}`)
    check(!out.includes(RUNTIME_TOKEN), `yoi-runtime with ${name} printed its token`)
  }
  figures.add("refused starts (no token, short token, open non-loopback, token + no-auth)", results.filter(([, code]) => code === 1).length)
  NodeFs.rmSync(dir, { recursive: true, force: true })
}

const main = async () => {
  const started = performance.now()
  const runtime = await startRuntime({ token: RUNTIME_TOKEN, runtimeId: "security" })
  const remote = await startRuntime({ token: REMOTE_TOKEN, runtimeId: "sec-remote" })
  const backend = await startBackend({
    token: BACKEND_TOKEN,
    config: {
      embedded: { runtime_id: "sec-local", store: "memory" },
      remotes: [{ runtime_id: "sec-remote", endpoint: remote.url, token: { env: "SEC_REMOTE_TOKEN" } }]
    },
    env: { SEC_REMOTE_TOKEN: REMOTE_TOKEN }
  })
  await constantTime(runtime.port, backend.port)
  await noRouteWithoutAuth(runtime.port, backend.port)
  await sizeLimits(runtime.port, backend.port)
  await backend.dispose()
  await remote.dispose()
  await runtime.dispose()
  await leaks()
  await refusals()
  figures.total("seconds", Math.round((performance.now() - started) / 1000))
  finish(figures)
}

await main()
