import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { call, eventually, startBackend, startRuntimeServer } from "./support.js"

const REMOTE_TOKEN = "metrics-remote-token-5521aa"

/** `name{labels} value` lines of a Prometheus text body, by series (name plus its labels as written). */
const parse = (text: string) => {
  const series = new Map<string, number>()
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue
    const space = line.lastIndexOf(" ")
    series.set(line.slice(0, space), Number(line.slice(space + 1).replace("+Inf", "Infinity")))
  }
  return series
}

describe("GET /metrics on the Backend", () => {
  it.scopedLive("needs the token; turns on the embedded runtime, proxy calls and remote health all show", () =>
    Effect.gen(function*() {
      const remote = yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "rt-metrics-remote" })
      const { client } = yield* startBackend({
        embedded: { runtime_id: "rt-metrics-local", store: "memory" },
        remotes: [{ runtime_id: "rt-metrics-remote", endpoint: remote.url, token: { env: "REMOTE_TOKEN" } }]
      }, { env: { REMOTE_TOKEN } })
      yield* eventually(
        call(client, "GET", "/api/runtimes/rt-metrics-remote"),
        (r) => r.json.status === "online",
        "the remote online"
      )
      const scrape = Effect.map(call(client, "GET", "/metrics"), (r) => {
        assert.strictEqual(r.status, 200, r.text)
        assert.match(r.headers["content-type"]!, /^text\/plain; version=0\.0\.4/)
        return parse(r.text)
      })
      const before = yield* scrape
      const anonymous = yield* call(client, "GET", "/metrics", { token: null })
      assert.strictEqual(anonymous.status, 401)

      // A turn on the embedded runtime, through the Backend.
      const created = yield* call(client, "POST", "/api/runtimes/rt-metrics-local/workers", {
        body: { display_name: "Local", initial_input: "alpha beta" }
      })
      assert.strictEqual(created.status, 201)
      const id = created.json.worker.worker_id
      yield* eventually(
        call(client, "GET", `/api/runtimes/rt-metrics-local/workers/${id}`),
        (r) => r.json.last_turn?.outcome === "completed",
        "the local turn"
      )
      // A command on the remote.
      const remoteWorker = yield* call(client, "POST", "/api/runtimes/rt-metrics-remote/workers", {
        body: { display_name: "Remote" }
      })
      assert.strictEqual(remoteWorker.status, 201)
      const cancel = yield* call(
        client,
        "POST",
        `/api/runtimes/rt-metrics-remote/workers/${remoteWorker.json.worker.worker_id}/cancel`
      )
      assert.strictEqual(cancel.status, 200)

      const after = yield* scrape
      const at = (series: Map<string, number>, name: string) => series.get(name) ?? 0
      const moved = (name: string) => at(after, name) - at(before, name)
      assert.isAtLeast(moved("yoi_turns_started_total{provider=\"echo\"}"), 1)
      assert.isAtLeast(moved("yoi_turns_ended_total{provider=\"echo\",outcome=\"completed\"}"), 1)
      assert.isAtLeast(moved("yoi_events_appended_total"), 3)
      assert.isAtLeast(at(after, "yoi_workers{runtime_id=\"rt-metrics-local\",status=\"idle\"}"), 1)
      assert.strictEqual(at(after, "yoi_backend_runtime_status{runtime_id=\"rt-metrics-remote\",status=\"online\"}"), 1)
      assert.strictEqual(at(after, "yoi_backend_runtime_status{runtime_id=\"rt-metrics-remote\",status=\"offline\"}"), 0)
      assert.isAtLeast(moved("yoi_backend_proxy_seconds_count{runtime_id=\"rt-metrics-remote\",outcome=\"ok\"}"), 2)
      const http = (method: string, route: string, status: number) =>
        moved(`yoi_http_requests_total{server="backend",method="${method}",route="${route}",status="${status}"}`)
      assert.strictEqual(http("POST", "/api/runtimes/:runtime_id/workers", 201), 2)
      assert.strictEqual(http("POST", "/api/runtimes/:runtime_id/workers/:worker_id/cancel", 200), 1)
      assert.strictEqual(http("GET", "/metrics", 401), 1)
      // The remote's own server counted the proxied calls.
      assert.isAtLeast(
        moved("yoi_http_requests_total{server=\"runtime\",method=\"POST\",route=\"/v1/workers/:worker_id/cancel\",status=\"200\"}"),
        1
      )
    }))
})
