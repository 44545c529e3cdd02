import { assert, describe, it } from "@effect/vitest"
import { assertLintClean, duplicatedIds, lint, validator } from "@yoi/runtime-server/openapi-check"
import { Runtime } from "@yoi/worker-runtime"
import { Effect } from "effect"
import { call, connectSse, eventually, type Reply, startBackend, tempDir } from "./support.js"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"

const config = (dir: string) => ({
  embedded: { runtime_id: "local", store: "memory" as const, tools: ["read_file"] },
  legacy_pods: { runtime_id: "legacy", dir }
})

describe("the Backend's /openapi.json", () => {
  it.scopedLive("is served without a token, lints clean offline, and real responses validate against it", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      NodeFs.mkdirSync(NodePath.join(dir, "alpha"), { recursive: true })
      NodeFs.writeFileSync(NodePath.join(dir, "alpha", "metadata.json"), JSON.stringify({ worker_name: "alpha" }))
      const { client } = yield* startBackend(config(dir))
      const served = yield* call(client, "GET", "/openapi.json", { token: null })
      assert.strictEqual(served.status, 200)
      const doc = served.json as Record<string, any>

      const report = yield* lint(doc)
      assertLintClean(report, [
        // The project is not published under a license, so there is none to name.
        "info-license #/info",
        // GET /login answers 303 (it sets the session cookie and redirects), never 2xx.
        "operation-2xx-response #/paths/~1login/get/responses"
      ])
      assert.strictEqual(doc.info.version, Runtime.VERSION)
      assert.strictEqual(doc.info.title, "yoi-backend")
      assert.deepStrictEqual(doc.servers.map((s: { url: string }) => s.url), ["/"])
      assert.deepStrictEqual(duplicatedIds(doc), [])
      assert.notInclude(JSON.stringify(doc), "HttpApiDecodeError")
      assert.notInclude(Object.keys(doc.paths["/healthz"].get.responses), "401")
      for (const path of ["/api/events", "/api/runtimes/{runtime_id}/workers/{worker_id}/events"]) {
        assert.strictEqual(
          doc.paths[path].get.responses["200"].content["text/event-stream"].schema.$ref,
          "#/components/schemas/RuntimeEvent",
          path
        )
      }

      const check = validator(doc)
      const expect = (reply: Reply, method: string, template: string, status: number) => {
        assert.strictEqual(reply.status, status, `${method} ${template}: ${reply.text.slice(0, 300)}`)
        check.response(method, template, status, reply.json)
      }
      const workers = "/api/runtimes/{runtime_id}/workers"
      const worker = `${workers}/{worker_id}`
      expect(yield* call(client, "GET", "/healthz", { token: null }), "GET", "/healthz", 200)
      expect(yield* call(client, "GET", "/api/runtimes", { token: null }), "GET", "/api/runtimes", 401)
      expect(yield* call(client, "GET", "/api/runtimes"), "GET", "/api/runtimes", 200)
      expect(yield* call(client, "GET", "/api/runtimes/local"), "GET", "/api/runtimes/{runtime_id}", 200)
      expect(yield* call(client, "GET", "/api/runtimes/nowhere"), "GET", "/api/runtimes/{runtime_id}", 404)
      const spec = { worker_id: "w1", display_name: "Ada", metadata: { team: "a" } }
      expect(yield* call(client, "POST", "/api/runtimes/local/workers", { body: spec }), "POST", workers, 201)
      expect(yield* call(client, "POST", "/api/runtimes/local/workers", { body: spec }), "POST", workers, 200)
      const tools = { display_name: "T", tools: ["read_file"] }
      expect(yield* call(client, "POST", "/api/runtimes/local/workers", { body: tools }), "POST", workers, 501)
      expect(yield* call(client, "POST", "/api/runtimes/local/workers", { body: { display_name: "" } }), "POST", workers, 400)
      expect(yield* call(client, "GET", "/api/runtimes/local/workers?limit=5"), "GET", workers, 200)
      expect(yield* call(client, "GET", "/api/runtimes/local/workers/w1"), "GET", worker, 200)
      expect(yield* call(client, "GET", "/api/runtimes/local/workers/nobody"), "GET", worker, 404)
      expect(yield* call(client, "POST", "/api/runtimes/local/workers/w1/input", { body: { text: "hello" } }), "POST",
        `${worker}/input`, 202)
      const transcript = yield* eventually(
        call(client, "GET", "/api/runtimes/local/workers/w1/transcript"),
        (r) => r.json.items.some((e: any) => e.data._tag === "assistant_message"),
        "the echo reply"
      )
      expect(transcript, "GET", `${worker}/transcript`, 200)
      expect(yield* call(client, "POST", "/api/runtimes/local/workers/w1/cancel"), "POST", `${worker}/cancel`, 200)
      expect(yield* call(client, "DELETE", "/api/runtimes/local/workers/w1"), "DELETE", worker, 409)
      expect(yield* call(client, "POST", "/api/runtimes/local/workers/w1/stop"), "POST", `${worker}/stop`, 200)
      expect(yield* call(client, "POST", "/api/runtimes/local/workers/w1/restore"), "POST", `${worker}/restore`, 200)
      expect(yield* call(client, "GET", "/api/runtimes/legacy/workers"), "GET", workers, 200)
      expect(yield* call(client, "POST", "/api/runtimes/legacy/workers/alpha/stop"), "POST", `${worker}/stop`, 501)
      expect(yield* call(client, "GET", "/api/workers"), "GET", "/api/workers", 200)
      expect(yield* call(client, "GET", "/api/hosts"), "GET", "/api/hosts", 200)
      expect(yield* call(client, "GET", "/api/audit?limit=10"), "GET", "/api/audit", 200)
      expect(yield* call(client, "GET", "/api/audit?limit=ten"), "GET", "/api/audit", 400)
      expect(yield* call(client, "GET", "/api/events?cursor=nonsense"), "GET", "/api/events", 400)

      const stream = yield* connectSse(client, "/api/runtimes/local/workers/w1/events?cursor=earliest")
      const frames = yield* stream.waitFor(
        (fs) => fs.some((f) => f.event === "turn.completed"),
        "the turn's events"
      )
      const events = frames.filter((f) => f.event !== "stream.error").map((f) => f.data)
      assert.isAbove(events.length, 3)
      for (const event of events) check.event(event)
      const all = yield* connectSse(client, "/api/events?cursor=earliest")
      for (const event of (yield* all.waitFor((fs) => fs.length >= events.length, "the merged stream"))) {
        check.event(event.data)
      }
    }))
})
