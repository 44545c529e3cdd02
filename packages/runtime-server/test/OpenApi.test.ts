import { assert, describe, it } from "@effect/vitest"
import { type Engine, layerMemory, Runtime } from "@yoi/worker-runtime"
import { testPolicy } from "@yoi/worker-runtime/testing"
import { HttpServer } from "@effect/platform"
import { Effect, Layer, Redacted, Stream } from "effect"
import { Auth, RuntimeServer } from "../src/index.js"
import { send } from "../src/testing.js"
import { assertLintClean, duplicatedIds, lint, validator } from "./OpenApiCheck.js"
import { type Reply, request, TOKEN } from "./RawHttp.js"
import { connect } from "./SseTestClient.js"

/** An engine that offers a tool, so the runtime can offer it while the default (echo) profile cannot run it. */
const toolish: Engine.Engine = {
  provider: "toolish",
  tools: ["read_file"],
  validate: () => Effect.void,
  turn: () => Stream.empty
}

/** The real server (with its own `node:http` server and `onClientError`) on a free loopback port. */
const serve = () =>
  RuntimeServer.layer({ host: "127.0.0.1", port: 0, auth: Auth.token(Redacted.make(TOKEN)), graceMs: 200 }).pipe(
    Layer.provideMerge(layerMemory({
      runtimeId: "rt-openapi",
      engines: [toolish],
      policy: { ...testPolicy, tools: ["read_file"] }
    }))
  )

const post = (path: string, body?: unknown) =>
  request("POST", path, body === undefined ? {} : { body: JSON.stringify(body) })

const document = Effect.map(request("GET", "/openapi.json"), (reply) => reply.json as Record<string, any>)

const operations = (doc: Record<string, any>) =>
  Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ path, method, op }))
  )

describe("the runtime's /openapi.json", () => {
  it.live("lints with 0 errors under redocly's recommended rules, offline, and says what the server sends", () =>
    Effect.gen(function*() {
      const doc = yield* document
      const report = yield* lint(doc)
      // info-license: the project is not published under a license, so there is none to name.
      assertLintClean(report, ["info-license #/info"])

      assert.strictEqual(doc.info.version, Runtime.VERSION)
      assert.strictEqual(doc.info.title, "yoi-runtime")
      assert.isAbove(doc.info.description.length, 0)
      assert.deepStrictEqual(doc.servers.map((s: { url: string }) => s.url), ["/"])
      assert.deepStrictEqual(duplicatedIds(doc), [])
      assert.notInclude(JSON.stringify(doc), "HttpApiDecodeError")
      const ops = operations(doc)
      // 19 operations and GET /metrics.
      assert.strictEqual(ops.length, 20)
      assert.match(Object.keys(doc.paths["/metrics"].get.responses["200"].content)[0]!, /^text\/plain/)
      assert.includeMembers(Object.keys(doc.paths["/metrics"].get.responses), ["401"])
      for (const { method, op, path } of ops) {
        assert.isString(op.summary, `${method} ${path} has a summary`)
        assert.includeMembers(Object.keys(op.responses), ["408", "431"], `${method} ${path}`)
        for (const p of op.parameters.filter((p: { name: string }) => p.name === "limit")) {
          assert.strictEqual(p.schema.type, "integer", `${method} ${path} limit`)
          assert.strictEqual(p.schema.minimum, 1)
          assert.isAbove(p.schema.maximum, 1)
        }
      }
      for (const path of ["/healthz", "/readyz"]) {
        assert.notIncludeMembers(Object.keys(doc.paths[path].get.responses), ["401", "413"], path)
      }
      assert.strictEqual(doc.paths["/v1/workers"].post.responses["501"].content["application/json"].schema.$ref,
        "#/components/schemas/UnsupportedOperation")
      for (const path of ["/v1/events", "/v1/workers/{worker_id}/events"]) {
        assert.strictEqual(
          doc.paths[path].get.responses["200"].content["text/event-stream"].schema.$ref,
          "#/components/schemas/RuntimeEvent",
          path
        )
      }
    }).pipe(Effect.provide(serve())))

  it.live("real responses of a real server validate against the document's schemas (ajv)", () =>
    Effect.gen(function*() {
      const doc = yield* document
      const check = validator(doc)
      const expect = (reply: Reply, method: string, template: string, status: number) => {
        assert.strictEqual(reply.status, status, `${method} ${template}: ${reply.text.slice(0, 300)}`)
        check.response(method, template, status, reply.json)
      }
      expect(yield* request("GET", "/healthz", { token: null }), "GET", "/healthz", 200)
      expect(yield* request("GET", "/readyz", { token: null }), "GET", "/readyz", 200)
      expect(yield* request("GET", "/v1/runtime"), "GET", "/v1/runtime", 200)
      const scope = { allow: [{ path: "/srv/repo", access: "write" }], deny: [{ path: "/srv/repo/.git" }] }
      const spec = { worker_id: "w1", display_name: "W", scope, metadata: { team: "a" }, initial_input: "hello" }
      expect(yield* post("/v1/workers", spec), "POST", "/v1/workers", 201)
      expect(yield* post("/v1/workers", spec), "POST", "/v1/workers", 200)
      expect(yield* post("/v1/workers", { display_name: "T", tools: ["read_file"] }), "POST", "/v1/workers", 501)
      expect(yield* post("/v1/workers", { display_name: "" }), "POST", "/v1/workers", 400)
      expect(yield* post("/v1/workers", { display_name: "Other", scope }), "POST", "/v1/workers", 409)
      expect(yield* request("GET", "/v1/workers?limit=10"), "GET", "/v1/workers", 200)
      expect(yield* request("GET", "/v1/workers?limit=0"), "GET", "/v1/workers", 400)
      expect(yield* request("GET", "/v1/workers/w1"), "GET", "/v1/workers/{worker_id}", 200)
      expect(yield* request("GET", "/v1/workers/nobody"), "GET", "/v1/workers/{worker_id}", 404)
      expect(yield* request("GET", "/v1/workers/w1", { token: null }), "GET", "/v1/workers/{worker_id}", 401)
      // The initial turn may still be running: wait for it through the transcript, then send more input.
      for (let i = 0; i < 200; i++) {
        const worker = yield* request("GET", "/v1/workers/w1")
        if (worker.json.status === "idle") break
        yield* Effect.sleep(10)
      }
      expect(yield* post("/v1/workers/w1/input", { text: "more" }), "POST", "/v1/workers/{worker_id}/input", 202)
      expect(yield* post("/v1/workers/w1/cancel"), "POST", "/v1/workers/{worker_id}/cancel", 200)
      expect(yield* request("GET", "/v1/workers/w1/transcript?limit=1"), "GET", "/v1/workers/{worker_id}/transcript", 200)
      const transcript = yield* request("GET", "/v1/workers/w1/transcript")
      expect(transcript, "GET", "/v1/workers/{worker_id}/transcript", 200)
      assert.isAbove(transcript.json.items.length, 1)
      expect(yield* request("DELETE", "/v1/workers/w1"), "DELETE", "/v1/workers/{worker_id}", 409)
      expect(yield* post("/v1/workers/w1/stop"), "POST", "/v1/workers/{worker_id}/stop", 200)
      expect(yield* post("/v1/workers/w1/input", { text: "x" }), "POST", "/v1/workers/{worker_id}/input", 409)
      expect(yield* post("/v1/workers/w1/restore"), "POST", "/v1/workers/{worker_id}/restore", 200)
      expect(yield* request("GET", "/v1/runtime/usage"), "GET", "/v1/runtime/usage", 200)
      expect(yield* request("GET", "/v1/runtime/diagnostics"), "GET", "/v1/runtime/diagnostics", 200)
      expect(yield* request("GET", "/v1/events?cursor=nonsense"), "GET", "/v1/events", 400)
      expect(yield* request("GET", "/v1/events?kinds=worker.renamed"), "GET", "/v1/events", 400)
      expect(yield* request("GET", "/v1/workers/nobody/events"), "GET", "/v1/workers/{worker_id}/events", 404)

      // Refused by the HTTP parser before any route: still in the document.
      const server = yield* HttpServer.HttpServer
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      const huge = yield* send(port, { path: "/v1/runtime", headers: [["x-filler", "x".repeat(20_000)]] })
      assert.strictEqual(huge.status, 431)
      check.response("GET", "/v1/runtime", 431, JSON.parse(huge.body))
    }).pipe(Effect.provide(serve())))

  it.scopedLive("every event on the wire validates against the document's RuntimeEvent schema", () =>
    Effect.gen(function*() {
      const doc = yield* document
      const check = validator(doc)
      const scope = { allow: [{ path: "/srv/repo", access: "write" }] }
      yield* post("/v1/workers", { worker_id: "w2", display_name: "E", scope, initial_input: "some text to echo" })
      yield* post("/v1/workers", { worker_id: "w3", display_name: "E3" })
      yield* post("/v1/workers/w3/stop")
      yield* request("DELETE", "/v1/workers/w3")
      const stream = yield* connect("/v1/events?cursor=earliest", { token: TOKEN })
      yield* stream.waitFor(
        () => stream.events().some((e) => e.kind === "worker.deleted") &&
          stream.events().some((e) => e.kind === "turn.completed"),
        "the events of both workers"
      )
      const events = stream.items().flatMap((item) => item._tag === "Event" ? [JSON.parse(item.data)] : [])
      assert.isAbove(events.length, 5)
      for (const event of events) check.event(event)
      assert.includeMembers(
        events.map((e: { kind: string }) => e.kind),
        ["worker.created", "turn.started", "turn.delta", "transcript.appended", "turn.completed", "worker.deleted"]
      )
    }).pipe(Effect.provide(serve())))
})

describe("/docs", () => {
  it.live("is served with Scalar's default web fonts off and no script or stylesheet from another origin", () =>
    Effect.gen(function*() {
      const docs = yield* request("GET", "/docs")
      assert.strictEqual(docs.status, 200)
      const html = docs.text
      // Scalar reads its configuration from this element; `withDefaultFonts: false` keeps it off fonts.scalar.com.
      const config = /dataset\.configuration = JSON\.stringify\((\{.*?\})\)/.exec(html)
      assert.isNotNull(config)
      assert.deepStrictEqual(JSON.parse(config![1]!), { _integration: "html", withDefaultFonts: false })
      // No element loads anything by URL: no `src=`/`href=` with an origin, no CSS import, no preconnect.
      assert.notMatch(html, /<(script|link|img|iframe)[^>]*\s(src|href)=["']?(https?:)?\/\//i)
      assert.notMatch(html, /@import\s+url\(["']?(https?:)?\/\//i)
      assert.notMatch(html, /<script[^>]*\ssrc=/i)
    }).pipe(Effect.provide(serve())))
})
