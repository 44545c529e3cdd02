import { echo, testPolicy } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { layerMemory, Runtime } from "@yoi/worker-runtime"
import { Effect, Layer, Redacted } from "effect"
import { Auth, RuntimeServer } from "../src/index.js"
import { type Reply, request, TOKEN } from "./RawHttp.js"

const MAX_BODY = 2048

const serve = (options: { readonly auth?: Auth.AuthMode; readonly runtime?: Layer.Layer<Runtime.Runtime> } = {}) =>
  RuntimeServer.layerTest({
    auth: options.auth ?? Auth.token(Redacted.make(TOKEN)),
    maxBodyBytes: MAX_BODY
  }).pipe(Layer.provideMerge(options.runtime ?? layerMemory({ policy: testPolicy, runtimeId: "rt-http" })))

const post = (path: string, body: unknown, options: { readonly token?: string | null } = {}) =>
  request("POST", path, { ...options, body: JSON.stringify(body) })

/** Every error body is `{_tag, message, ...}` with a readable one-line message. */
const assertError = (reply: Reply, status: number, tag: string) => {
  assert.strictEqual(reply.status, status, reply.text)
  assert.strictEqual(reply.json?._tag, tag, reply.text)
  assert.isString(reply.json.message)
  assert.isAbove(reply.json.message.length, 0)
  assert.notInclude(reply.json.message, "\n")
}

const slow = echo({ delay_ms: 60_000, chunk_size: 1 })

describe("statuses and error bodies over the wire", () => {
  it.live("success statuses: 201 create, 200 repeat, 202 input, 200 reads", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* post("/v1/workers", { worker_id: "w1", display_name: "W" })).status, 201)
      const repeat = yield* post("/v1/workers", { worker_id: "w1", display_name: "W" })
      assert.strictEqual(repeat.status, 200)
      assert.isFalse(repeat.json.created)
      const input = yield* post("/v1/workers/w1/input", { text: "hi" })
      assert.strictEqual(input.status, 202)
      assert.match(input.json.turn_id, /^t_/)
      assert.strictEqual((yield* request("GET", "/v1/workers/w1")).status, 200)
      assert.strictEqual((yield* request("GET", "/v1/runtime")).json.runtime_id, "rt-http")
    }).pipe(Effect.provide(serve())))

  it.live("every worker error tag with its status", () =>
    Effect.gen(function*() {
      assertError(yield* request("GET", "/v1/workers/missing"), 404, "WorkerNotFound")
      yield* post("/v1/workers", { worker_id: "slow", display_name: "S", engine: slow })
      yield* post("/v1/workers/slow/input", { text: "one" })
      const busy = yield* post("/v1/workers/slow/input", { text: "two" })
      assertError(busy, 409, "WorkerBusy")
      assert.match(busy.json.turn_id, /^t_/)
      assertError(yield* post("/v1/workers", { worker_id: "slow", display_name: "Other" }), 409, "WorkerAlreadyExists")
      assertError(yield* request("DELETE", "/v1/workers/slow"), 409, "WorkerStateConflict")
      yield* post("/v1/workers/slow/stop", undefined)
      assertError(yield* post("/v1/workers/slow/input", { text: "three" }), 409, "WorkerStopped")
      const scope = { allow: [{ path: "/srv", access: "write" }] }
      yield* post("/v1/workers", { display_name: "A", scope })
      const clash = yield* post("/v1/workers", { display_name: "B", scope })
      assertError(clash, 409, "ScopeConflict")
      assert.strictEqual(clash.json.path, "/srv")
    }).pipe(Effect.provide(serve())))

  it.live("bad JSON, wrong types, unknown fields and empty bodies are a readable InvalidInput and change nothing", () =>
    Effect.gen(function*() {
      const badJson = yield* request("POST", "/v1/workers", { body: "{\"display_name\": " })
      assertError(badJson, 400, "InvalidInput")
      assert.strictEqual(badJson.json.message, "the request body is not valid JSON")

      const wrongType = yield* post("/v1/workers", { display_name: 42 })
      assertError(wrongType, 400, "InvalidInput")
      assert.strictEqual(wrongType.json.field, "display_name")
      assert.strictEqual(wrongType.json.message, "display_name: Expected string, actual 42")

      const nested = yield* post("/v1/workers", { display_name: "N", scope: { allow: [{ path: "relative", access: "x" }] } })
      assertError(nested, 400, "InvalidInput")
      assert.strictEqual(nested.json.field, "scope.allow.0.path")

      const unknown = yield* post("/v1/workers", { display_name: "U", colour: "red" })
      assertError(unknown, 400, "InvalidInput")
      assert.strictEqual(unknown.json.field, "colour")

      const empty = yield* request("POST", "/v1/workers/w/input", { body: "" })
      assertError(empty, 400, "InvalidInput")
      assert.strictEqual(empty.json.message, "the request body must be a JSON object")

      const emptyText = yield* post("/v1/workers", { display_name: "" })
      assertError(emptyText, 400, "InvalidInput")
      assert.include(emptyText.json.message, "display_name must not be empty")

      const badLimit = yield* request("GET", "/v1/workers?limit=ten")
      assertError(badLimit, 400, "InvalidInput")
      assert.strictEqual(badLimit.json.field, "limit")
      assertError(yield* request("GET", "/v1/workers?status=sleeping"), 400, "InvalidInput")
      assertError(yield* request("GET", "/v1/workers/bad..id"), 400, "InvalidInput")

      assert.strictEqual((yield* request("GET", "/v1/runtime")).json.counts.total, 0)
    }).pipe(Effect.provide(serve())))

  it.live("oversize bodies get 413 PayloadTooLarge; chunked bodies are refused with InvalidInput", () =>
    Effect.gen(function*() {
      const big = JSON.stringify({ display_name: "x".repeat(MAX_BODY) })
      const tooLarge = yield* request("POST", "/v1/workers", { body: big })
      assertError(tooLarge, 413, "PayloadTooLarge")
      assert.strictEqual(tooLarge.json.limit_bytes, MAX_BODY)
      const chunked = yield* request("POST", "/v1/workers", { body: big, chunked: true })
      assertError(chunked, 400, "InvalidInput")
      assert.include(chunked.json.message, "Content-Length")
      const small = yield* request("POST", "/v1/workers", { body: JSON.stringify({ display_name: "ok" }), chunked: true })
      assertError(small, 400, "InvalidInput")
      assert.strictEqual((yield* request("GET", "/v1/runtime")).json.counts.total, 0)
    }).pipe(Effect.provide(serve())))

  it.live("unknown routes and methods get 404 RouteNotFound in the same error shape", () =>
    Effect.gen(function*() {
      const unknown = yield* request("GET", "/v2/nothing?x=1")
      assertError(unknown, 404, "RouteNotFound")
      assert.deepStrictEqual(unknown.json, {
        _tag: "RouteNotFound",
        method: "GET",
        path: "/v2/nothing",
        message: "no route for GET /v2/nothing"
      })
      assertError(yield* request("PUT", "/v1/workers"), 404, "RouteNotFound")
      assertError(yield* request("GET", "/v1/workers/w/nothing"), 404, "RouteNotFound")
    }).pipe(Effect.provide(serve())))

  it.live("auth: missing, wrong, or non-bearer credentials get 401; probes answer without a token", () =>
    Effect.gen(function*() {
      const missing = yield* request("GET", "/v1/runtime", { token: null })
      assertError(missing, 401, "Unauthorized")
      assert.include(missing.json.message, "required")
      const wrong = yield* request("GET", "/v1/workers", { token: "nearly-the-token-0123456789" })
      assertError(wrong, 401, "Unauthorized")
      assert.include(wrong.json.message, "not valid")
      const basic = yield* request("GET", "/v1/runtime", {
        token: null,
        headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString("base64")}` }
      })
      assertError(basic, 401, "Unauthorized")
      const prefix = yield* request("GET", "/v1/runtime", { token: TOKEN.slice(0, -1) })
      assertError(prefix, 401, "Unauthorized")
      assertError(yield* post("/v1/workers", { display_name: "X" }, { token: "" }), 401, "Unauthorized")
      assertError(yield* request("GET", "/openapi.json", { token: null }), 401, "Unauthorized")
      assertError(yield* request("GET", "/docs", { token: "wrong-token-0123456789" }), 401, "Unauthorized")
      assert.strictEqual((yield* request("GET", "/healthz", { token: null })).status, 200)
      assert.strictEqual((yield* request("GET", "/readyz", { token: null })).status, 200)
      assert.strictEqual((yield* request("GET", "/v1/runtime", { token: null })).status, 401)
      const bearer = yield* request("GET", "/v1/runtime", { token: null, headers: { authorization: `bearer ${TOKEN}` } })
      assert.strictEqual(bearer.status, 200)
      assert.strictEqual((yield* request("GET", "/v1/runtime")).json.counts.total, 0)
    }).pipe(Effect.provide(serve())))

  it.live("without auth (the loopback-only mode) no token is needed", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* request("GET", "/v1/runtime", { token: null })).status, 200)
      assert.strictEqual((yield* post("/v1/workers", { display_name: "Open" }, { token: null })).status, 201)
    }).pipe(Effect.provide(serve({ auth: Auth.none }))))

  it.live("/openapi.json is generated from RuntimeApi and /docs is an offline reference page", () =>
    Effect.gen(function*() {
      const spec = yield* request("GET", "/openapi.json")
      assert.strictEqual(spec.status, 200)
      assert.strictEqual(spec.json.info.title, "yoi-runtime")
      assert.includeMembers(Object.keys(spec.json.paths), [
        "/healthz",
        "/readyz",
        "/v1/runtime",
        "/v1/runtime/diagnostics",
        "/v1/workers",
        "/v1/workers/{worker_id}",
        "/v1/workers/{worker_id}/input",
        "/v1/workers/{worker_id}/transcript",
        "/v1/events"
      ])
      const docs = yield* request("GET", "/docs")
      assert.strictEqual(docs.status, 200)
      assert.match(String(docs.headers["content-type"]), /^text\/html/)
      // Offline: the reference UI is inlined, nothing is fetched from a CDN.
      assert.notMatch(docs.text, /<script[^>]*\ssrc=/)
      assert.isAbove(docs.text.length, 100_000)
    }).pipe(Effect.provide(serve())))

  it.live("a defect becomes a typed 500 InternalError that does not leak the cause", () => {
    const broken = Layer.effect(
      Runtime.Runtime,
      Effect.map(Runtime.Runtime, (rt) => ({ ...rt, summary: Effect.die(new Error("secret internals")) }))
    ).pipe(Layer.provide(layerMemory({ policy: testPolicy, runtimeId: "rt-broken" })), Layer.orDie)
    return Effect.gen(function*() {
      const reply = yield* request("GET", "/v1/runtime")
      assertError(reply, 500, "InternalError")
      assert.notInclude(reply.text, "secret")
      assert.strictEqual((yield* request("GET", "/healthz")).status, 200)
    }).pipe(Effect.provide(serve({ runtime: broken })))
  })
})
