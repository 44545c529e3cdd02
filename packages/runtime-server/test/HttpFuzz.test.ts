import { testPolicy } from "@yoi/worker-runtime/testing"
import { HttpServer } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Domain, Ids, layerMemory, Runtime } from "@yoi/worker-runtime"
import { Context, Effect, Either, Layer, Redacted } from "effect"
import * as fc from "fast-check"
import { Auth, RuntimeServer } from "../src/index.js"
import { notTyped4xx, type RawReply, send } from "./ReliabilityHttp.js"

// The fast subset of scripts/reliability/fuzz.ts: bad input against the real server on a loopback port, every answer
// a typed 4xx of the catalogue (never a 5xx, a reset or a hang), and the runtime unchanged after each batch.

const TOKEN = "http-fuzz-token-0123456789"
const RUNS = 30
const auth = ["authorization", `Bearer ${TOKEN}`] as const
const json = ["content-type", "application/json"] as const

const start = Effect.gen(function*() {
  const context = yield* Layer.build(
    RuntimeServer.layer({ host: "127.0.0.1", port: 0, auth: Auth.token(Redacted.make(TOKEN)), graceMs: 100 }).pipe(
      Layer.provideMerge(layerMemory({ policy: testPolicy, runtimeId: "fuzz" }))
    )
  )
  const address = Context.get(context, HttpServer.HttpServer).address
  const runtime = Context.get(context, Runtime.Runtime)
  yield* runtime.createWorker({ worker_id: Ids.WorkerId.make("fx"), display_name: "Fixture" })
  yield* runtime.sendInput("fx", { text: "one committed turn" })
  yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
  const fingerprint = Effect.gen(function*() {
    const summary = yield* runtime.summary
    const workers = yield* runtime.listWorkers({ limit: 500 })
    const transcripts = yield* Effect.forEach(workers.items, (w) => runtime.transcript(w.worker_id, { limit: 500 }))
    return JSON.stringify([summary.counts, summary.cursor, workers, transcripts])
  }).pipe(Effect.orDie)
  return { port: address._tag === "TcpAddress" ? address.port : 0, fingerprint }
})

/** Runs a property whose check is an Effect that fails with the reason; fast-check shrinks and reports a failure. */
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
  const problem = notTyped4xx(reply, options)
  return problem === undefined ? Effect.void : Effect.fail(problem)
}

const deep = (n: number) => "[".repeat(n) + "]".repeat(n)

const badBody = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 60 }),
  fc.constantFrom("", "null", "{'a': 1}", "{\"display_name\": NaN}", "{\"text\": 1e999}", "{\"display_name\":\"x\",}"),
  fc.tuple(
    fc.constantFrom("display_name", "engine", "scope", "tools", "metadata", "text", "worker_id", "extra"),
    fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom("", "../x", "\u0000", "\ud800", "x".repeat(1_000_001)))
  ).map(([k, v]) => JSON.stringify({ display_name: "D", text: "T", [k]: v })),
  fc.integer({ min: 65, max: 100_000 }).map(deep),
  fc.integer({ min: 65, max: 20_000 }).map((n) => `{"display_name":"d","metadata":{"k":${deep(n)}}}`)
)
const decodesAs = (decode: (input: unknown) => Effect.Effect<unknown, unknown>) => {
  return (text: string) => {
    const parsed = Either.try(() => JSON.parse(text) as unknown)
    return Either.isRight(parsed) && Either.isRight(Effect.runSync(Effect.either(decode(parsed.right))))
  }
}
const isCreate = decodesAs(Runtime.decodeInput(Domain.CreateWorker))
const isInput = decodesAs(Runtime.decodeInput(Domain.SendInput))

const oddId = fc.oneof(
  fc.constantFrom("..", "..%2F..%2Fetc", "%2e%2e", "a%2Fb", "%00", "%ff", "%E0%A4%A", "%", "%zz", "%ED%A0%80", "a%20b"),
  fc.string({ minLength: 1, maxLength: 30 }).map((s) => Array.from(Buffer.from(s), (b) => `%${b.toString(16).padStart(2, "0")}`).join("")),
  fc.integer({ min: 129, max: 12_000 }).map((n) => "a".repeat(n))
)

const queryValue = fc.oneof(
  fc.integer().map(String),
  fc.constantFrom("0", "-1", "501", "1.5", "%ff", "%", "earliest", "c1.AAAA", "c1.%00", "", "idle", "turn.delta,nope"),
  fc.base64String({ maxLength: 40 }).map((s) => encodeURIComponent(s))
)

describe("bad input over the wire (fast-check)", () => {
  it.scopedLive("create and input bodies that must not decode: typed 400/413, nothing changes", () =>
    Effect.gen(function*() {
      const { fingerprint, port } = yield* start
      const before = yield* fingerprint
      yield* holds(badBody.filter((b) => !isCreate(b)), (body) =>
        Effect.flatMap(send(port, { method: "POST", path: "/v1/workers", headers: [auth, json], body }), typed()))
      yield* holds(badBody.filter((b) => !isInput(b)), (body) =>
        Effect.flatMap(send(port, { method: "POST", path: "/v1/workers/fx/input", headers: [auth, json], body }), typed()))
      assert.strictEqual(yield* fingerprint, before)
    }), 60_000)

  it.scopedLive("traversal, broken escapes and overlong ids on every worker route: typed 4xx, nothing changes", () =>
    Effect.gen(function*() {
      const { fingerprint, port } = yield* start
      const before = yield* fingerprint
      const routes = [["GET", ""], ["POST", "/input"], ["POST", "/cancel"], ["POST", "/stop"], ["POST", "/restore"],
        ["DELETE", ""], ["GET", "/transcript"], ["GET", "/events"]] as const
      yield* holds(fc.tuple(oddId, fc.constantFrom(...routes)), ([id, [method, suffix]]) =>
        Effect.flatMap(
          send(port, {
            method,
            path: `/v1/workers/${id}${suffix}`,
            headers: suffix === "/input" ? [auth, json] : [auth],
            ...(suffix === "/input" ? { body: "{\"text\":\"x\"}" } : {})
          }),
          typed()
        ))
      assert.strictEqual(yield* fingerprint, before)
    }), 60_000)

  it.scopedLive("random query parameters on reads and event streams: 200 or a typed 4xx", () =>
    Effect.gen(function*() {
      const { fingerprint, port } = yield* start
      const before = yield* fingerprint
      const reads = [
        ["/v1/workers", ["status", "limit", "page_token"]],
        ["/v1/workers/fx/transcript", ["limit", "page_token"]],
        ["/v1/runtime/usage", ["limit"]],
        ["/v1/runtime/diagnostics", ["limit"]],
        ["/v1/events", ["cursor", "worker_id", "kinds"]],
        ["/v1/workers/fx/events", ["cursor", "kinds"]]
      ] as const
      const query = fc.array(fc.tuple(fc.nat(), queryValue), { minLength: 1, maxLength: 3 })
      yield* holds(fc.tuple(fc.constantFrom(...reads), query), ([[path, params], values]) => {
        const search = values.map(([i, v]) => `${params[i % params.length]}=${v}`).join("&")
        return Effect.flatMap(send(port, { path: `${path}?${search}`, headers: [auth] }), typed({ success: true }))
      })
      assert.strictEqual(yield* fingerprint, before)
    }), 60_000)

  it.scopedLive("form, multipart, XML and text bodies are refused even when they would decode", () =>
    Effect.gen(function*() {
      const { fingerprint, port } = yield* start
      const before = yield* fingerprint
      const bodies = [
        ["application/x-www-form-urlencoded", "display_name=Form", "/v1/workers"],
        ["multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"display_name\"\r\n\r\nM\r\n--b--\r\n", "/v1/workers"],
        ["multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nhi\r\n--b--\r\n", "/v1/workers/fx/input"],
        ["text/plain", "{\"display_name\":\"Plain\"}", "/v1/workers"],
        ["application/xml", "<w/>", "/v1/workers"],
        ["application/jsonx", "{\"text\":\"hi\"}", "/v1/workers/fx/input"]
      ] as const
      for (const [type, body, path] of bodies) {
        const reply = yield* send(port, { method: "POST", path, headers: [auth, ["content-type", type]], body })
        assert.isUndefined(notTyped4xx(reply), `${type}: ${reply.status} ${reply.body}`)
        assert.strictEqual(JSON.parse(reply.body)._tag, "InvalidInput")
      }
      assert.strictEqual(yield* fingerprint, before)
      const ok = yield* send(port, {
        method: "POST",
        path: "/v1/workers",
        headers: [auth, ["content-type", "Application/JSON; charset=utf-8"]],
        body: "{\"display_name\":\"Json\"}"
      })
      assert.strictEqual(ok.status, 201)
    }))
})

describe("regressions found by the reliability suites", () => {
  it.scopedLive("deeply nested JSON bodies are a typed 400, not a stack overflow answered 500", () =>
    Effect.gen(function*() {
      const { fingerprint, port } = yield* start
      const before = yield* fingerprint
      for (const [path, body] of [
        ["/v1/workers", deep(200_000)],
        ["/v1/workers", `{"display_name":"d","metadata":${"{\"a\":".repeat(100_000)}1${"}".repeat(100_000)}}`],
        ["/v1/workers/fx/input", `{"text":${deep(50_000)}}`]
      ] as const) {
        const reply = yield* send(port, { method: "POST", path, headers: [auth, json], body })
        assert.strictEqual(reply.status, 400, reply.body)
        assert.include(JSON.parse(reply.body).message, "nests deeper than 64 levels")
      }
      const shallow = yield* send(port, { method: "POST", path: "/v1/workers", headers: [auth, json], body: `{"display_name":"d","metadata":${deep(60)}}` })
      assert.strictEqual(shallow.status, 400)
      assert.strictEqual(JSON.parse(shallow.body).field, "metadata")
      assert.strictEqual(yield* fingerprint, before)
    }))

  it.scopedLive("GET paths the router cannot match (broken escapes, an id over its length limit) are typed, not 500", () =>
    Effect.gen(function*() {
      const { port } = yield* start
      for (const path of ["/v1/workers/%ff", "/v1/workers/%E0%A4%A", `/v1/workers/${"a".repeat(10_000)}`, "/v1/workers/%ff/transcript", "/%ff"]) {
        const reply = yield* send(port, { path, headers: [auth] })
        assert.isUndefined(notTyped4xx(reply), `${path.slice(0, 40)}: ${reply.status} ${reply.body}`)
      }
    }))

  it.scopedLive("the docs routes need the token under every spelling the router accepts", () =>
    Effect.gen(function*() {
      const { port } = yield* start
      for (const path of ["/docs", "/docs/", "/DOCS", "//docs", "/docs;x", "/openapi.json", "/openapi.json/", "/OpenAPI.json", "//openapi.json//"]) {
        const without = yield* send(port, { path })
        assert.strictEqual(without.status, 401, `${path}: ${without.status} ${without.body.slice(0, 80)}`)
        assert.strictEqual(JSON.parse(without.body)._tag, "Unauthorized")
        assert.strictEqual((yield* send(port, { path, headers: [auth] })).status, 200, path)
      }
    }))

  it.scopedLive("what Node's HTTP parser refuses is answered with a typed JSON error too", () =>
    Effect.gen(function*() {
      const { port } = yield* start
      const cases = [
        ["GARBAGE\r\n\r\n", 400, "InvalidInput"],
        ["GET /v1/runtime HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n", 400, "InvalidInput"],
        [`GET /v1/runtime HTTP/1.1\r\nhost: x\r\nx-big: ${"b".repeat(20_000)}\r\n\r\n`, 431, "RequestHeadersTooLarge"],
        ["CONNECT evil.example:443 HTTP/1.1\r\nhost: evil.example:443\r\n\r\n", 404, "RouteNotFound"],
        [`GET /v1/runtime HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\nexpect: teapot\r\n\r\n`, 400, "InvalidInput"]
      ] as const
      for (const [raw, status, tag] of cases) {
        const reply = yield* send(port, { raw })
        assert.strictEqual(reply.status, status, `${raw.slice(0, 30)}: ${reply.status} ${reply.body}`)
        assert.strictEqual(JSON.parse(reply.body)._tag, tag)
      }
      assert.strictEqual((yield* send(port, { path: "/healthz" })).status, 200)
    }))
})
