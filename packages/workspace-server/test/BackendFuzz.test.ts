import { assert, describe, it } from "@effect/vitest"
import { Domain, Runtime } from "@yoi/worker-runtime"
import { Effect, Either } from "effect"
import * as fc from "fast-check"
import { type RawReply, send, startServedBackend, untyped } from "./ReliabilitySupport.js"
import { startFakeServer, startRuntimeServer, TOKEN } from "./support.js"

// The fast subset of scripts/reliability/fuzz.ts for the Backend: bad input on every route, routed to an embedded
// runtime and to a remote one. Every answer is a typed 4xx of the catalogue, and nothing changes in either runtime.

const REMOTE_TOKEN = "backend-fuzz-remote-token-55c1"
const RUNS = 25
const auth = ["authorization", `Bearer ${TOKEN}`] as const
const json = ["content-type", "application/json"] as const
const RUNTIMES = ["fx-local", "fx-remote"] as const

const start = Effect.gen(function*() {
  const remote = yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "fx-remote" })
  const port = yield* startServedBackend({
    embedded: { runtime_id: "fx-local", store: "memory" },
    remotes: [{ runtime_id: "fx-remote", endpoint: remote.url, token: { env: "FX_REMOTE_TOKEN" } }]
  }, { env: { FX_REMOTE_TOKEN: REMOTE_TOKEN } })
  const get = (path: string) =>
    Effect.map(send(port, { path, headers: [auth] }), (r) => {
      assert.strictEqual(r.status, 200, `${path}: ${r.body}`)
      return JSON.parse(r.body)
    })
  yield* Effect.iterate(0, {
    while: (n) => n < 200,
    body: (n) => Effect.map(get("/api/runtimes/fx-remote"), (v) => (v.status === "online" ? 200 : n + 1)).pipe(Effect.delay("20 millis"))
  })
  for (const rt of RUNTIMES) {
    const created = yield* send(port, { method: "POST", path: `/api/runtimes/${rt}/workers`, headers: [auth, json], body: "{\"worker_id\":\"fx\",\"display_name\":\"Fx\"}" })
    assert.strictEqual(created.status, 201, created.body)
    const input = yield* send(port, { method: "POST", path: `/api/runtimes/${rt}/workers/fx/input`, headers: [auth, json], body: "{\"text\":\"one\"}" })
    assert.strictEqual(input.status, 202, input.body)
  }
  yield* Effect.sleep("100 millis")
  const fingerprint = Effect.map(
    Effect.forEach(RUNTIMES, (rt) =>
      Effect.all([get(`/api/runtimes/${rt}/workers?limit=500`), get(`/api/runtimes/${rt}/workers/fx/transcript?limit=500`)])),
    JSON.stringify
  )
  return { port, fingerprint }
})

const holds = <A>(arbitrary: fc.Arbitrary<A>, check: (a: A) => Effect.Effect<void, string>, runs = RUNS) =>
  Effect.promise(() =>
    fc.assert(
      fc.asyncProperty(arbitrary, async (a) => {
        const result = await Effect.runPromise(Effect.either(check(a)))
        if (Either.isLeft(result)) throw new Error(result.left)
      }),
      { numRuns: runs }
    )
  )

const typed = (options: { readonly success?: boolean } = {}) => (reply: RawReply): Effect.Effect<void, string> => {
  const problem = untyped(reply, options)
  return problem === undefined ? Effect.void : Effect.fail(problem)
}

const deep = (n: number) => "[".repeat(n) + "]".repeat(n)
const decodes = (decode: (u: unknown) => Effect.Effect<unknown, unknown>) => (text: string) => {
  const parsed = Either.try(() => JSON.parse(text) as unknown)
  return Either.isRight(parsed) && Either.isRight(Effect.runSync(Effect.either(decode(parsed.right))))
}
const isCreate = decodes(Runtime.decodeInput(Domain.CreateWorker))
const isInput = decodes(Runtime.decodeInput(Domain.SendInput))

const badBody = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 60 }),
  fc.tuple(
    fc.constantFrom("display_name", "engine", "scope", "worker_id", "text", "extra"),
    fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom("", "../x", "a/b", "\u0000", "x".repeat(1_000_001)))
  ).map(([k, v]) => JSON.stringify({ display_name: "D", text: "T", [k]: v })),
  fc.integer({ min: 65, max: 50_000 }).map(deep)
)

const oddSegment = fc.oneof(
  fc.constantFrom("..", "..%2F..%2Fv1%2Fruntime", "a%2F..%2Ffx", "%2e%2e", "%00", "%ff", "%", "%E0%A4%A", "a%3Fb%3Dc"),
  fc.string({ minLength: 1, maxLength: 20 }).map((s) => Array.from(Buffer.from(s), (b) => `%${b.toString(16).padStart(2, "0")}`).join("")),
  fc.integer({ min: 129, max: 5_000 }).map((n) => "a".repeat(n))
).filter((s) => !s.includes("fx"))

describe("the Backend under bad input (fast-check)", () => {
  it.scopedLive("create and input bodies that must not decode, to both runtimes: typed 4xx, nothing changes", () =>
    Effect.gen(function*() {
      const { fingerprint, port } = yield* start
      const before = yield* fingerprint
      yield* holds(fc.tuple(badBody.filter((b) => !isCreate(b)), fc.constantFrom(...RUNTIMES)), ([body, rt]) =>
        Effect.flatMap(send(port, { method: "POST", path: `/api/runtimes/${rt}/workers`, headers: [auth, json], body }), typed()))
      yield* holds(fc.tuple(badBody.filter((b) => !isInput(b)), fc.constantFrom(...RUNTIMES)), ([body, rt]) =>
        Effect.flatMap(
          send(port, { method: "POST", path: `/api/runtimes/${rt}/workers/fx/input`, headers: [auth, json], body }),
          typed()
        ))
      assert.strictEqual(yield* fingerprint, before)
    }), 60_000)

  it.scopedLive("odd runtime and worker ids on every worker route: typed 4xx, nothing changes", () =>
    Effect.gen(function*() {
      const { fingerprint, port } = yield* start
      const before = yield* fingerprint
      const routes = [["GET", ""], ["POST", "/input"], ["POST", "/cancel"], ["POST", "/stop"], ["POST", "/restore"],
        ["DELETE", ""], ["GET", "/transcript"], ["GET", "/events"]] as const
      const runtimeIds = fc.oneof(fc.constantFrom(...RUNTIMES), oddSegment)
      yield* holds(fc.tuple(runtimeIds, oddSegment, fc.constantFrom(...routes)), ([rt, id, [method, suffix]]) =>
        Effect.flatMap(
          send(port, {
            method,
            path: `/api/runtimes/${rt}/workers/${id}${suffix}`,
            headers: [auth, json],
            ...(suffix === "/input" ? { body: "{\"text\":\"x\"}" } : {})
          }),
          typed()
        ), 40)
      assert.strictEqual(yield* fingerprint, before)
    }), 60_000)

  it.scopedLive("random query parameters and cursors on reads and event streams: 200 or a typed 4xx", () =>
    Effect.gen(function*() {
      const { fingerprint, port } = yield* start
      const before = yield* fingerprint
      const value = fc.oneof(
        fc.integer().map(String),
        fc.constantFrom("0", "501", "%ff", "earliest", "", "idle", "c1.AAAA"),
        fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v)).toString("base64url")),
        fc.string({ maxLength: 30 }).map(encodeURIComponent)
      )
      const reads = [
        ["/api/runtimes/fx-local/workers", ["status", "limit", "page_token"]],
        ["/api/runtimes/fx-remote/workers/fx/transcript", ["limit", "page_token"]],
        ["/api/audit", ["limit", "page_token", "runtime_id", "worker_id"]],
        ["/api/audit/streams", ["limit", "page_token", "runtime_id", "worker_id", "actor"]],
        ["/api/events", ["cursor"]],
        ["/api/runtimes/fx-remote/workers/fx/events", ["cursor"]],
        ["/api/runtimes/fx-local/workers/fx/events", ["cursor"]]
      ] as const
      const query = fc.array(fc.tuple(fc.nat(), value), { minLength: 1, maxLength: 3 })
      yield* holds(fc.tuple(fc.constantFrom(...reads), query), ([[path, params], values]) => {
        const search = values.map(([i, v]) => `${params[i % params.length]}=${v}`).join("&")
        return Effect.flatMap(send(port, { path: `${path}?${search}`, headers: [auth] }), typed({ success: true }))
      })
      assert.strictEqual(yield* fingerprint, before)
    }), 60_000)

  it.scopedLive("forged bearer tokens, session cookies and login tokens: 401, no cookie, nothing changes", () =>
    Effect.gen(function*() {
      const { fingerprint, port } = yield* start
      const before = yield* fingerprint
      const forged = fc.oneof(
        fc.nat({ max: TOKEN.length * 2 }).map((n) => TOKEN.slice(0, n) + "q".repeat(Math.max(0, n - TOKEN.length))),
        fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 50 }).map((s) => s.replace(/[^!-~]/g, "q"))
      ).filter((t) => t !== TOKEN)
      yield* holds(fc.tuple(forged, fc.constantFrom("bearer", "cookie", "login")), ([token, how]) =>
        Effect.flatMap(
          how === "login"
            ? send(port, { path: `/login?token=${encodeURIComponent(token)}` })
            : send(port, {
              method: "POST",
              path: "/api/runtimes/fx-local/workers/fx/stop",
              headers: [how === "bearer" ? ["authorization", `Bearer ${token}`] : ["cookie", `yoi_session=${encodeURIComponent(token)}`]]
            }),
          (reply) =>
            reply.status === 401 && JSON.parse(reply.body)._tag === "Unauthorized" && reply.headers["set-cookie"] === undefined
              ? Effect.void
              : Effect.fail(`${how} ${token}: ${reply.status} ${reply.body}`)
        ), 40)
      assert.strictEqual(yield* fingerprint, before)
    }), 60_000)
})

describe("Backend regressions found by the reliability suites", () => {
  it.scopedLive("deeply nested JSON bodies are a typed 400 for both runtimes, not a stack overflow answered 500", () =>
    Effect.gen(function*() {
      const { fingerprint, port } = yield* start
      const before = yield* fingerprint
      for (const rt of RUNTIMES) {
        for (const [path, body] of [
          [`/api/runtimes/${rt}/workers`, deep(200_000)],
          [`/api/runtimes/${rt}/workers`, `{"display_name":"d","metadata":${"{\"a\":".repeat(50_000)}1${"}".repeat(50_000)}}`],
          [`/api/runtimes/${rt}/workers/fx/input`, `{"text":${deep(50_000)}}`]
        ] as const) {
          const reply = yield* send(port, { method: "POST", path, headers: [auth, json], body })
          assert.strictEqual(reply.status, 400, `${path}: ${reply.body}`)
          assert.include(JSON.parse(reply.body).message, "nests deeper than 64 levels")
        }
      }
      assert.strictEqual(yield* fingerprint, before)
    }))

  it.scopedLive("a worker id with .. or / never reaches a remote's URL, and the remote's own fields are scrubbed", () =>
    Effect.gen(function*() {
      let busy = false
      const remote = yield* startFakeServer((req, res) => {
        if (req.url === "/readyz") {
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify({ status: "ready", runtime_id: "fake" }))
          return
        }
        if (busy && req.method === "GET" && req.url === "/v1/workers/w1") {
          // The worker belongs to this Backend's workspace, so the input goes on to the remote.
          const at = new Date().toISOString()
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify({
            runtime_id: "fake",
            worker_id: "w1",
            display_name: "W",
            display_ref: "W@fake",
            status: "running",
            engine: { profile: "echo", provider: "echo" },
            tools: [],
            metadata: { "yoi.workspace": "ws-fuzz" },
            created_at: at,
            updated_at: at,
            usage: { input_tokens: 0, output_tokens: 0, cached_tokens: 0, turns: 0 },
            transcript_length: 0
          }))
          return
        }
        res.writeHead(busy ? 409 : 404, { "content-type": "application/json" })
        res.end(JSON.stringify(busy
          ? { _tag: "WorkerBusy", worker_id: `w ${REMOTE_TOKEN}`, turn_id: `t ${REMOTE_TOKEN}`, message: "busy" }
          : { _tag: "WorkerNotFound", worker_id: "victim", message: "no" }))
      })
      const port = yield* startServedBackend({
        workspace_id: "ws-fuzz",
        embedded: null,
        remotes: [{ runtime_id: "fake", endpoint: remote.url, token: { env: "FAKE_TOKEN" } }]
      }, { env: { FAKE_TOKEN: REMOTE_TOKEN } })
      for (const [method, path] of [
        ["GET", "/api/runtimes/fake/workers/..%2F..%2Fv1%2Fruntime"],
        ["POST", "/api/runtimes/fake/workers/a%2F..%2Fvictim/stop"],
        ["DELETE", "/api/runtimes/fake/workers/x%2F..%2F..%2Fopenapi.json"],
        ["GET", "/api/runtimes/fake/workers/w%3Fstatus%3Dstopped/transcript"]
      ] as const) {
        const reply = yield* send(port, { method, path, headers: [auth] })
        assert.strictEqual(reply.status, 400, `${path}: ${reply.body}`)
        assert.strictEqual(JSON.parse(reply.body).field, "worker_id")
      }
      assert.isTrue(remote.requests().every((r) => !r.includes("..") && !r.includes("victim") && !r.includes("?status")), remote.requests().join("\n"))
      busy = true
      const reply = yield* send(port, { method: "POST", path: "/api/runtimes/fake/workers/w1/input", headers: [auth, json], body: "{\"text\":\"x\"}" })
      assert.strictEqual(JSON.parse(reply.body)._tag, "WorkerBusy")
      assert.notInclude(reply.body, REMOTE_TOKEN)
    }))

  it.scopedLive("chunked and non-JSON bodies are refused, typed; the parser's own refusals are typed too", () =>
    Effect.gen(function*() {
      const { fingerprint, port } = yield* start
      const before = yield* fingerprint
      const chunk = "x".repeat(1024 * 1024)
      const huge = Array.from({ length: 9 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join("") + "0\r\n\r\n"
      const chunked = yield* send(port, {
        method: "POST",
        path: "/api/runtimes/fx-local/workers/fx/input",
        headers: [auth, json, ["transfer-encoding", "chunked"]],
        body: huge
      })
      assert.strictEqual(chunked.status, 400, chunked.body)
      assert.include(JSON.parse(chunked.body).message, "Content-Length")
      for (const [type, body] of [["text/plain", "{\"display_name\":\"Plain\"}"], ["application/x-www-form-urlencoded", "display_name=F"]]) {
        const reply = yield* send(port, { method: "POST", path: "/api/runtimes/fx-remote/workers", headers: [auth, ["content-type", type!]], body: body! })
        assert.strictEqual(reply.status, 400, `${type}: ${reply.body}`)
      }
      assert.strictEqual(yield* fingerprint, before)
      const garbage = yield* send(port, { raw: "GARBAGE\r\n\r\n" })
      assert.strictEqual(garbage.status, 400)
      assert.strictEqual(JSON.parse(garbage.body)._tag, "InvalidInput")
      const big = yield* send(port, { path: "/api/runtimes", headers: [auth, ["x-filler", "f".repeat(20_000)]] })
      assert.strictEqual(big.status, 431)
      assert.strictEqual(JSON.parse(big.body)._tag, "RequestHeadersTooLarge")
    }))
})
