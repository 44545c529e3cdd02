import { assert, describe, it } from "@effect/vitest"
import { layerMemory } from "@yoi/worker-runtime"
import { HttpServer } from "@effect/platform"
import { Effect, Layer, Redacted, Schedule } from "effect"
import * as Http from "node:http"
import { Auth, RuntimeServer } from "../src/index.js"
import { request, TOKEN } from "./RawHttp.js"

/** `name{labels} value` lines of a Prometheus text body, by series (name plus its labels as written). */
export const parseMetrics = (text: string) => {
  const series = new Map<string, number>()
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue
    const space = line.lastIndexOf(" ")
    series.set(line.slice(0, space), Number(line.slice(space + 1).replace("+Inf", "Infinity")))
  }
  return series
}

const serve = RuntimeServer.layerTest({ auth: Auth.token(Redacted.make(TOKEN)) }).pipe(
  Layer.provideMerge(layerMemory({ runtimeId: "rt-metrics" }))
)

const scrape = Effect.gen(function*() {
  const reply = yield* request("GET", "/metrics")
  assert.strictEqual(reply.status, 200, reply.text)
  assert.match(String(reply.headers["content-type"]), /^text\/plain; version=0\.0\.4/)
  return parseMetrics(reply.text)
})

const post = (path: string, body: unknown) => request("POST", path, { body: JSON.stringify(body) })

describe("GET /metrics on the runtime", () => {
  it.live("needs the token, and its counters move with a turn", () =>
    Effect.gen(function*() {
      const before = yield* scrape
      const anonymous = yield* request("GET", "/metrics", { token: null })
      assert.strictEqual(anonymous.status, 401)
      assert.strictEqual(anonymous.json._tag, "Unauthorized")
      const at = (series: Map<string, number>, name: string) => series.get(name) ?? 0

      assert.strictEqual((yield* post("/v1/workers", { worker_id: "w-m", display_name: "M" })).status, 201)
      assert.strictEqual((yield* post("/v1/workers/w-m/input", { text: "one two three" })).status, 202)
      yield* request("GET", "/v1/workers/w-m").pipe(
        Effect.filterOrFail((r) => r.json.status === "idle" && r.json.last_turn?.outcome === "completed"),
        Effect.retry(Schedule.spaced("10 millis")),
        Effect.timeout("5 seconds")
      )
      const events = yield* request("GET", "/v1/events?cursor=bogus")
      assert.strictEqual(events.status, 400)

      const after = yield* scrape
      const moved = (name: string) => at(after, name) - at(before, name)
      assert.isAtLeast(moved("yoi_turns_started_total{provider=\"echo\"}"), 1)
      assert.isAtLeast(moved("yoi_turns_ended_total{provider=\"echo\",outcome=\"completed\"}"), 1)
      assert.isAtLeast(moved("yoi_turn_duration_seconds_count{provider=\"echo\"}"), 1)
      assert.isAtLeast(moved("yoi_tokens_total{provider=\"echo\",kind=\"input\"}"), 3)
      assert.isAtLeast(moved("yoi_tokens_total{provider=\"echo\",kind=\"output\"}"), 3)
      // worker.created, input, deltas, usage, turn.completed, status changes: several events, all counted.
      assert.isAtLeast(moved("yoi_events_appended_total"), 5)
      assert.isAtLeast(moved("yoi_store_commit_seconds_count{store=\"memory\"}"), 3)
      assert.strictEqual(at(after, "yoi_workers{runtime_id=\"rt-metrics\",status=\"idle\"}"), 1)
      assert.strictEqual(at(after, "yoi_workers{runtime_id=\"rt-metrics\",status=\"running\"}"), 0)
      const http = (method: string, route: string, status: number) =>
        moved(`yoi_http_requests_total{server="runtime",method="${method}",route="${route}",status="${status}"}`)
      assert.strictEqual(http("POST", "/v1/workers", 201), 1)
      assert.strictEqual(http("POST", "/v1/workers/:worker_id/input", 202), 1)
      assert.isAtLeast(http("GET", "/v1/workers/:worker_id", 200), 1)
      assert.strictEqual(http("GET", "/v1/events", 400), 1)
      assert.strictEqual(http("GET", "/metrics", 401), 1)
      assert.strictEqual(http("GET", "/metrics", 200), 1)
    }).pipe(Effect.provide(serve)))

  it.live("counts event streams: opened, open while they last, closed when their readers go", () =>
    Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      const series = (name: string) => Effect.map(scrape, (m) => m.get(name) ?? 0)
      const open = series("yoi_sse_streams_open{server=\"runtime\"}")
      const opened = series("yoi_sse_streams_opened_total{server=\"runtime\"}")
      const openBefore = yield* open
      const openedBefore = yield* opened
      // Three readers at once, each holding its stream open until it is told to go.
      const readers = yield* Effect.forEach([0, 1, 2], () =>
        Effect.async<Http.ClientRequest>((resume) => {
          const req = Http.get({
            host: "127.0.0.1",
            port,
            path: "/v1/events",
            headers: { authorization: `Bearer ${TOKEN}` },
            agent: false
          }, (res) => {
            assert.strictEqual(res.statusCode, 200)
            res.once("data", () => resume(Effect.succeed(req)))
          })
          req.on("error", (e) => resume(Effect.die(e)))
        }), { concurrency: "unbounded" })
      assert.strictEqual((yield* open) - openBefore, 3)
      assert.strictEqual((yield* opened) - openedBefore, 3)
      for (const req of readers) req.destroy()
      yield* open.pipe(
        Effect.filterOrFail((n) => n === openBefore),
        Effect.retry(Schedule.spaced("10 millis")),
        Effect.timeout("5 seconds")
      )
      assert.strictEqual((yield* opened) - openedBefore, 3)
    }).pipe(Effect.provide(serve)))

  it.live("is listed in the OpenAPI document behind the bearer token", () =>
    Effect.gen(function*() {
      const doc = yield* request("GET", "/openapi.json")
      const operation = doc.json.paths["/metrics"]?.get
      assert.isDefined(operation)
      assert.isDefined(operation.responses["200"].content["text/plain; version=0.0.4; charset=utf-8"])
      assert.isAbove(operation.security.length, 0)
    }).pipe(Effect.provide(serve)))
})
