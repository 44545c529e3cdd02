/**
 * Bad input, property-based: every route of the runtime (`yoi-runtime`'s server over a SQLite store) and of the
 * Backend (an embedded runtime and a remote one) gets random and malformed JSON, wrong types, huge strings and
 * arrays, odd unicode, traversal in ids, broken escapes, wrong content types, missing and forged credentials, and
 * abusive headers and request lines. Every answer must be a typed 4xx of the error catalogue with its status (never a
 * 5xx, never a hang, never a reset), the server must stay up, and a fingerprint of the store (summary counts and
 * cursor, every worker, every transcript) must be the same after each batch of rejected requests.
 *
 *   npx tsx scripts/reliability/fuzz.ts [--runs 400] [--seed <n>]
 */
import { echo } from "@yoi/worker-runtime/testing"
import * as fc from "fast-check"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { parseArgs } from "node:util"
import {
  type Abuse,
  badCreateBody,
  badInputBody,
  forgedAuthorization,
  headerAbuse,
  queryValue,
  segment,
  wrongContentType
} from "./lib/arbitraries.js"
import { backendCatalogue, type Catalogue, type Expectation, runtimeCatalogue, violation } from "./lib/catalogue.js"
import { json, type RawReply, send } from "./lib/http.js"
import { Figures, fail, finish, heading } from "./lib/report.js"
import { startBackend, startRuntime } from "./lib/targets.js"

const { values: flags } = parseArgs({
  options: { runs: { type: "string", default: "400" }, seed: { type: "string" } },
  strict: true
})
const RUNS = Number(flags.runs)
const SEED = flags.seed === undefined ? Date.now() % 2 ** 31 : Number(flags.seed)

const RUNTIME_TOKEN = "fuzz-runtime-token-7c1e0f9a2b"
const REMOTE_TOKEN = "fuzz-remote-token-3d8b5a6e41"
const BACKEND_TOKEN = "fuzz-backend-token-95f2c0d7e3"
const FIXTURE_IDS = ["fx-idle", "fx-stopped", "fx-scope"]

interface Target {
  readonly name: string
  readonly port: number
  readonly token: string
  readonly catalogue: Catalogue
  /** The worker route prefixes of this target, e.g. `/v1/workers` or `/api/runtimes/fx-local/workers`. */
  readonly workerBases: ReadonlyArray<string>
  /** Read routes (GET) with query parameters that may be valid or not. */
  readonly reads: ReadonlyArray<{ readonly path: string; readonly params: ReadonlyArray<string> }>
  /** Every authenticated route, with the fixture ids filled in; `body` for the routes that take one. */
  readonly protectedRoutes: ReadonlyArray<readonly [string, string, string?]>
  readonly fingerprint: () => Promise<string>
}

const figures = new Figures()
let tried = 0

const get = async (port: number, token: string, path: string): Promise<any> => {
  const reply = await json(port, "GET", path, { token })
  if (reply.status !== 200) throw new Error(`fingerprint read ${path} answered ${reply.status}: ${reply.body.slice(0, 200)}`)
  return JSON.parse(reply.body)
}

const fingerprintOf = async (port: number, token: string, workersBase: string, summary?: string) => {
  const parts: Array<unknown> = []
  if (summary !== undefined) {
    const s = await get(port, token, summary)
    parts.push(s.counts, s.usage, s.cursor)
  }
  const workers = (await get(port, token, `${workersBase}?limit=500`)).items as Array<{ worker_id: string }>
  parts.push(workers)
  for (const w of workers) parts.push(await get(port, token, `${workersBase}/${w.worker_id}/transcript?limit=500`))
  return JSON.stringify(parts)
}

/** Three workers per runtime: one idle with a transcript, one stopped, one holding a write scope. */
const seed = async (port: number, token: string, base: string) => {
  const post = async (path: string, body?: unknown) => {
    const reply = await json(port, "POST", path, { token, body })
    if (reply.status >= 300) throw new Error(`fixture ${path} answered ${reply.status}: ${reply.body}`)
  }
  await post(base, { worker_id: "fx-idle", display_name: "Idle", engine: echo() })
  await post(base, { worker_id: "fx-stopped", display_name: "Stopped" })
  await post(base, { worker_id: "fx-scope", display_name: "Scoped", scope: { allow: [{ path: "/srv/fx", access: "write" }] } })
  for (const text of ["first turn", "second turn"]) {
    await post(`${base}/fx-idle/input`, { text })
    for (let i = 0; i < 200; i++) {
      const w = await get(port, token, `${base}/fx-idle`)
      if (w.status === "idle") break
      await new Promise((r) => setTimeout(r, 10))
    }
  }
  await post(`${base}/fx-stopped/stop`)
}

const touchesFixture = (text: string) => FIXTURE_IDS.some((id) => text.toLowerCase().includes(id))

/** Runs one property; a failure is reported with fast-check's shrunk counterexample and the suite goes on. */
const property = async <A>(
  target: Target,
  name: string,
  arbitrary: fc.Arbitrary<A>,
  request: (value: A) => Promise<RawReply>,
  expect: Expectation | ((value: A) => Expectation) = {},
  runs = RUNS
) => {
  const before = await target.fingerprint()
  const details = await fc.check(
    fc.asyncProperty(arbitrary, async (value) => {
      tried += 1
      const reply = await request(value)
      const problem = violation(reply, target.catalogue, typeof expect === "function" ? expect(value) : expect)
      if (problem !== undefined) throw new Error(problem)
    }),
    { numRuns: runs, seed: SEED, endOnFailure: false, interruptAfterTimeLimit: 60_000 }
  )
  const label = `${target.name}: ${name}`
  if (details.failed) {
    const example = JSON.stringify(details.counterexample, (_k, v) => (typeof v === "string" && v.length > 300 ? `${v.slice(0, 300)}…(${v.length})` : v))
    fail(`${label}: ${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)}\n      counterexample: ${example?.slice(0, 800)}`)
  }
  const health = await send(target.port, { method: "GET", path: "/healthz" })
  if (health.status !== 200) fail(`${label}: the server is not healthy afterwards (${health.status} ${health.error ?? ""})`)
  const after = await target.fingerprint()
  if (after !== before) fail(`${label}: the store changed after rejected requests`)
  figures.add(label, details.numRuns)
}

const withAuth = (target: Target, headers: ReadonlyArray<readonly [string, string]> = []) =>
  [["authorization", `Bearer ${target.token}`] as const, ...headers]

const run = async (target: Target) => {
  heading(`${target.name}`)
  // An empty id addresses another route (the list), so it is not an id at all.
  const ids = segment.filter((s) =>
    s.encoded.length > 0 && !touchesFixture(s.text) && !touchesFixture(decodeURIComponentSafe(s.encoded)))
  const base = target.workerBases[0]!

  await property(target, "create: bodies that must not decode", badCreateBody, (body) =>
    send(target.port, { method: "POST", path: base, headers: withAuth(target, [["content-type", "application/json"]]), body }), { tags: ["InvalidInput", "PayloadTooLarge"] })

  await property(target, "input: bodies that must not decode", badInputBody, (body) =>
    send(target.port, {
      method: "POST",
      path: `${base}/fx-idle/input`,
      headers: withAuth(target, [["content-type", "application/json"]]),
      body
    }), { tags: ["InvalidInput", "PayloadTooLarge"] })

  await property(target, "create and input: wrong content types", fc.tuple(wrongContentType, fc.boolean()), ([wrong, create]) =>
    send(target.port, {
      method: "POST",
      path: create ? base : `${base}/fx-idle/input`,
      headers: withAuth(target, [["content-type", wrong.contentType]]),
      body: wrong.body
    }), { tags: ["InvalidInput"] })

  const workerRoutes = [
    ["GET", ""],
    ["POST", "/input"],
    ["POST", "/cancel"],
    ["POST", "/stop"],
    ["POST", "/restore"],
    ["DELETE", ""],
    ["GET", "/transcript"],
    ["GET", "/events"]
  ] as const
  await property(target, "worker routes: traversal, escapes and odd unicode in ids", fc.tuple(fc.constantFrom(...target.workerBases), ids, fc.constantFrom(...workerRoutes)), ([b, id, [method, suffix]]) =>
    send(target.port, {
      method,
      path: `${b}/${id.encoded}${suffix}`,
      headers: withAuth(target, suffix === "/input" ? [["content-type", "application/json"]] : []),
      body: suffix === "/input" ? JSON.stringify({ text: "fuzz" }) : undefined
    }), { tags: ["InvalidInput", "WorkerNotFound", "RouteNotFound", "RuntimeNotFound", "RequestHeadersTooLarge"] })

  await property(target, "reads and event streams: random query parameters", fc.tuple(
    fc.constantFrom(...target.reads),
    fc.array(fc.tuple(fc.nat(), queryValue), { minLength: 1, maxLength: 4 }),
    fc.boolean()
  ), ([read, values, lastEventId]) => {
    const query = values.map(([i, v]) => `${read.params[i % read.params.length]}=${v}`).join("&")
    return send(target.port, {
      method: "GET",
      path: `${read.path}?${query}`,
      headers: withAuth(target, lastEventId ? [["last-event-id", values[0]![1]]] : [])
    })
  }, { success: true })

  await property(target, "every protected route: missing and forged credentials", fc.tuple(
    fc.constantFrom(...target.protectedRoutes),
    forgedAuthorization(target.token),
    fc.constantFrom("", "?token=", "?access_token=")
  ), ([[method, path, body], authorization, queryToken]) =>
    send(target.port, {
      method,
      path: queryToken === "" ? path : `${path}${path.includes("?") ? "&" : queryToken.slice(0, 1)}${queryToken.slice(1)}${target.token}`,
      headers: [
        ...(authorization === undefined ? [] : [["authorization", authorization] as const]),
        ...(body === undefined ? [] : [["content-type", "application/json"] as const])
      ],
      body
    }), { tags: ["Unauthorized", "RequestHeadersTooLarge"] })

  await property(target, "every protected route: other spellings of the path, without credentials", fc.tuple(
    fc.constantFrom(...target.protectedRoutes),
    fc.constantFrom("slash", "double", "upper", "escape", "semicolon", "fragment", "dot", "leading")
  ), ([[method, path, body], how]) => {
    const q = path.indexOf("?")
    const p = q === -1 ? path : path.slice(0, q)
    const rest = q === -1 ? "" : path.slice(q)
    const spelled = how === "slash" ? `${p}/` : how === "double" ? p.replace(/\//g, "//") : how === "upper" ? p.toUpperCase()
      : how === "escape" ? p.replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`) : how === "semicolon" ? `${p};x=1`
        : how === "fragment" ? `${p}#x` : how === "dot" ? `${p}/.` : `/${p}`
    return send(target.port, {
      method,
      path: spelled + rest,
      headers: body === undefined ? [] : [["content-type", "application/json"]],
      body
    })
  }, { tags: ["Unauthorized", "RouteNotFound", "InvalidInput"] })

  await property(target, "header and request-line abuse", fc.tuple(headerAbuse, fc.boolean()), ([abuse, post]: [Abuse, boolean]) =>
    send(target.port, abuse.rawHead === undefined
      ? {
        method: abuse.method ?? (post ? "POST" : "GET"),
        path: post ? `${base}/fx-idle/input` : target.protectedRoutes[0]![1],
        headers: [...withAuth(target, post ? [["content-type", "application/json"]] : []), ...(abuse.headers ?? [])],
        body: post ? "{\"text\": 5}" : undefined,
        autoLength: !(abuse.headers ?? []).some(([k]) => k === "content-length" || k === "transfer-encoding")
      }
      : { method: "GET", path: "/", rawHead: abuse.rawHead }), ([abuse]) => ({
    success: true,
    // Node answers an HTTP/1.1 request without Host with an empty 400 before any handler runs (RFC 9112 requires
    // the 400); that one refusal is Node's, not ours.
    emptyBodyAllowed: abuse.name === "no host"
  }), Math.max(60, Math.round(RUNS / 2)))

  // Body size limits: fixed cases, each must be refused quickly and typed.
  const limit = target.name.startsWith("runtime") ? 4 * 1024 * 1024 : 8 * 1024 * 1024
  const before = await target.fingerprint()
  const big = `{"text":"${"x".repeat(limit)}"}`
  const chunked = (size: number) => {
    const part = Buffer.alloc(64 * 1024, 120)
    const parts: Array<Buffer> = [Buffer.from("{\"text\":\"")]
    for (let n = 0; n < size; n += part.length) parts.push(part)
    parts.push(Buffer.from("\"}"))
    const whole = Buffer.concat(parts)
    return Buffer.concat([Buffer.from(`${whole.length.toString(16)}\r\n`), whole, Buffer.from("\r\n0\r\n\r\n")])
  }
  const cases: Array<[string, () => Promise<RawReply>, ReadonlyArray<string>]> = [
    ["a body over the limit", () => send(target.port, { method: "POST", path: `${base}/fx-idle/input`, headers: withAuth(target, [["content-type", "application/json"]]), body: big, timeoutMs: 15_000 }), ["PayloadTooLarge"]],
    ["a Content-Length over the limit with a short body", () => send(target.port, { method: "POST", path: base, headers: withAuth(target, [["content-type", "application/json"], ["content-length", String(limit + 1)]]), body: "{}" }), ["PayloadTooLarge"]],
    ["a chunked body over the limit", () => send(target.port, { method: "POST", path: `${base}/fx-idle/input`, headers: withAuth(target, [["content-type", "application/json"], ["transfer-encoding", "chunked"]]), body: chunked(limit + 1), timeoutMs: 15_000 }), ["InvalidInput", "PayloadTooLarge"]],
    ["a small chunked body", () => send(target.port, { method: "POST", path: base, headers: withAuth(target, [["content-type", "application/json"], ["transfer-encoding", "chunked"]]), body: "2\r\n{}\r\n0\r\n\r\n" }), ["InvalidInput"]],
    ["an unauthenticated body over the limit", () => send(target.port, { method: "POST", path: base, headers: [["content-type", "application/json"]], body: big, timeoutMs: 15_000 }), ["PayloadTooLarge", "Unauthorized"]],
    ["headers over the limit", () => send(target.port, { method: "GET", path: target.protectedRoutes[0]![1], headers: withAuth(target, [["x-big", "b".repeat(64 * 1024)]]) }), ["RequestHeadersTooLarge"]]
  ]
  for (const [name, request, tags] of cases) {
    tried += 1
    const problem = violation(await request(), target.catalogue, { tags })
    if (problem !== undefined) fail(`${target.name}: size limits: ${name}: ${problem}`)
  }
  if ((await target.fingerprint()) !== before) fail(`${target.name}: size limits: the store changed`)
  figures.add(`${target.name}: size limits (fixed cases)`, cases.length)

  // A burst of concurrent junk: the server answers all of it and stays up.
  const junk = fc.sample(fc.tuple(badCreateBody, ids), { numRuns: 200, seed: SEED })
  const burst = await Promise.all(junk.map(([body, id], i) =>
    i % 2 === 0
      ? send(target.port, { method: "POST", path: base, headers: withAuth(target, [["content-type", "application/json"]]), body, timeoutMs: 20_000 })
      : send(target.port, { method: "POST", path: `${base}/${id.encoded}/stop`, headers: withAuth(target), timeoutMs: 20_000 })))
  tried += burst.length
  const problems = burst.map((r) => violation(r, target.catalogue)).filter((p) => p !== undefined)
  if (problems.length > 0) fail(`${target.name}: concurrent burst: ${problems.length} bad answers, first: ${problems[0]}`)
  figures.add(`${target.name}: concurrent burst of 200`, burst.length)
}

const decodeURIComponentSafe = (text: string) => {
  const out = text.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))
  return Buffer.from(out, "latin1").toString("utf8")
}

const main = async () => {
  const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "yoi-fuzz-"))
  const started = performance.now()
  console.log(`fuzz: seed ${SEED}, ${RUNS} runs per property`)
  const runtime = await startRuntime({ token: RUNTIME_TOKEN, runtimeId: "fuzz", sqlite: NodePath.join(dir, "runtime.db") })
  const remote = await startRuntime({ token: REMOTE_TOKEN, runtimeId: "fx-remote" })
  const backend = await startBackend({
    token: BACKEND_TOKEN,
    config: {
      embedded: { runtime_id: "fx-local", store: "memory" },
      remotes: [{ runtime_id: "fx-remote", endpoint: remote.url, token: { env: "FX_REMOTE_TOKEN" } }]
    },
    env: { FX_REMOTE_TOKEN: REMOTE_TOKEN }
  })
  await seed(runtime.port, RUNTIME_TOKEN, "/v1/workers")
  await seed(backend.port, BACKEND_TOKEN, "/api/runtimes/fx-local/workers")
  await seed(backend.port, BACKEND_TOKEN, "/api/runtimes/fx-remote/workers")

  const runtimeWorker = "/v1/workers/fx-idle"
  await run({
    name: "runtime (SQLite)",
    port: runtime.port,
    token: RUNTIME_TOKEN,
    catalogue: runtimeCatalogue,
    workerBases: ["/v1/workers"],
    reads: [
      { path: "/v1/workers", params: ["status", "limit", "page_token"] },
      { path: `${runtimeWorker}/transcript`, params: ["limit", "page_token"] },
      { path: "/v1/runtime/usage", params: ["limit"] },
      { path: "/v1/runtime/diagnostics", params: ["limit"] },
      { path: "/v1/events", params: ["cursor", "worker_id", "kinds"] },
      { path: `${runtimeWorker}/events`, params: ["cursor", "kinds"] }
    ],
    protectedRoutes: [
      ["GET", "/v1/runtime"],
      ["GET", "/v1/runtime/usage"],
      ["GET", "/v1/runtime/diagnostics"],
      ["GET", "/v1/workers"],
      ["POST", "/v1/workers", "{\"display_name\":\"Forged\"}"],
      ["GET", runtimeWorker],
      ["POST", `${runtimeWorker}/input`, "{\"text\":\"forged\"}"],
      ["POST", `${runtimeWorker}/cancel`],
      ["POST", `${runtimeWorker}/stop`],
      ["POST", "/v1/workers/fx-stopped/restore"],
      ["DELETE", "/v1/workers/fx-stopped"],
      ["GET", `${runtimeWorker}/transcript`],
      ["GET", "/v1/events"],
      ["GET", `${runtimeWorker}/events?cursor=earliest`],
      ["GET", "/openapi.json"],
      ["GET", "/docs"]
    ],
    fingerprint: () => fingerprintOf(runtime.port, RUNTIME_TOKEN, "/v1/workers", "/v1/runtime")
  })

  const backendFingerprint = async () =>
    JSON.stringify([
      await fingerprintOf(backend.port, BACKEND_TOKEN, "/api/runtimes/fx-local/workers"),
      await fingerprintOf(backend.port, BACKEND_TOKEN, "/api/runtimes/fx-remote/workers"),
      await fingerprintOf(remote.port, REMOTE_TOKEN, "/v1/workers", "/v1/runtime")
    ])
  const w = (rt: string) => `/api/runtimes/${rt}/workers/fx-idle`
  await run({
    name: "backend (embedded + remote)",
    port: backend.port,
    token: BACKEND_TOKEN,
    catalogue: backendCatalogue,
    workerBases: ["/api/runtimes/fx-local/workers", "/api/runtimes/fx-remote/workers", "/api/runtimes/fx-missing/workers"],
    reads: [
      { path: "/api/runtimes/fx-local/workers", params: ["status", "limit", "page_token"] },
      { path: "/api/runtimes/fx-remote/workers", params: ["status", "limit", "page_token"] },
      { path: `${w("fx-local")}/transcript`, params: ["limit", "page_token"] },
      { path: `${w("fx-remote")}/transcript`, params: ["limit", "page_token"] },
      { path: "/api/audit", params: ["limit", "page_token", "runtime_id", "worker_id"] },
      { path: "/api/events", params: ["cursor"] },
      { path: `${w("fx-local")}/events`, params: ["cursor"] },
      { path: `${w("fx-remote")}/events`, params: ["cursor"] },
      { path: "/login", params: ["token"] }
    ],
    protectedRoutes: [
      ["GET", "/api/runtimes"],
      ["GET", "/api/runtimes/fx-remote"],
      ["GET", "/api/runtimes/fx-local/workers"],
      ["POST", "/api/runtimes/fx-remote/workers", "{\"display_name\":\"Forged\"}"],
      ["GET", w("fx-remote")],
      ["POST", `${w("fx-local")}/input`, "{\"text\":\"forged\"}"],
      ["POST", `${w("fx-remote")}/cancel`],
      ["POST", `${w("fx-local")}/stop`],
      ["POST", "/api/runtimes/fx-remote/workers/fx-stopped/restore"],
      ["DELETE", "/api/runtimes/fx-local/workers/fx-stopped"],
      ["GET", `${w("fx-remote")}/transcript`],
      ["GET", `${w("fx-local")}/events`],
      ["GET", "/api/events"],
      ["GET", "/api/workers"],
      ["GET", "/api/hosts"],
      ["GET", "/api/audit"]
    ],
    fingerprint: backendFingerprint
  })

  // Login and session cookies: forged tokens never set a cookie, forged sessions never authenticate.
  const beforeLogin = await backendFingerprint()
  const forgedLogin = fc.tuple(forgedAuthorization(BACKEND_TOKEN), fc.string({ maxLength: 60 }))
  const login = await fc.check(fc.asyncProperty(forgedLogin, async ([forged, cookie]) => {
    tried += 2
    const token = (forged ?? "").replace(/^Bearer /, "")
    if (token === BACKEND_TOKEN) return
    const reply = await send(backend.port, { method: "GET", path: `/login?token=${encodeURIComponent(token)}` })
    if (reply.status !== 401 || reply.headers["set-cookie"] !== undefined) throw new Error(`login with a forged token answered ${reply.status} ${reply.headers["set-cookie"] ?? ""}`)
    const forgedSession = await send(backend.port, {
      method: "POST",
      path: `${w("fx-local")}/stop`,
      headers: [["cookie", `yoi_session=${encodeURIComponent(cookie)}`]]
    })
    const problem = violation(forgedSession, backendCatalogue, { tags: ["Unauthorized"] })
    if (problem !== undefined) throw new Error(`a forged session cookie: ${problem}`)
  }), { numRuns: RUNS, seed: SEED })
  if (login.failed) fail(`backend: login and sessions: ${String(login.errorInstance)}`)
  if ((await backendFingerprint()) !== beforeLogin) fail("backend: login and sessions: the store changed")
  figures.add("backend: forged login tokens and session cookies", login.numRuns * 2)

  await backend.dispose()
  await remote.dispose()
  await runtime.dispose()
  NodeFs.rmSync(dir, { recursive: true, force: true })
  figures.total("inputs tried", tried)
  figures.total("seconds", Math.round((performance.now() - started) / 1000))
  finish(figures)
}

await main()
