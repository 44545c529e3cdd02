import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { call, eventually, startBackend, startFakeServer } from "./support.js"

const WORKSPACE = "team-relay"

const worker = (runtimeId: string, extra: Record<string, unknown> = {}) => ({
  runtime_id: runtimeId,
  worker_id: "w_1",
  display_name: "Relayed",
  display_ref: `Relayed@${runtimeId}`,
  status: "idle",
  engine: { profile: "echo", provider: "echo" },
  tools: [],
  created_at: "2026-01-01T00:00:00.000Z",
  updated_at: "2026-01-01T00:00:00.000Z",
  usage: { input_tokens: 0, output_tokens: 0, cached_tokens: 0, turns: 0 },
  transcript_length: 0,
  // This Backend's workspace: a remote's worker of another workspace is not its to show.
  metadata: { "yoi.workspace": WORKSPACE },
  ...extra
})

/** A fake runtime that answers the probes and serves `GET /v1/workers/w_1` with the body `worker` gives. */
const fakeRuntime = (body: () => string) =>
  startFakeServer((req, res) => {
    const json = (status: number, text: string) => {
      res.writeHead(status, { "content-type": "application/json" })
      res.end(text)
    }
    if (req.url === "/readyz") return json(200, JSON.stringify({ status: "ready", runtime_id: "gpu-box" }))
    if (req.url === "/v1/workers/w_1") return json(200, body())
    if (req.url === "/v1/workers/w_1/cancel") {
      return json(409, JSON.stringify({ _tag: "UpstreamTimeout", message: "leak http://10.0.0.7:1 and its token" }))
    }
    json(404, JSON.stringify({ _tag: "RouteNotFound", message: "no" }))
  })

const backendFor = (url: string) =>
  startBackend({
    workspace_id: WORKSPACE,
    embedded: { runtime_id: "local", store: "memory" },
    remotes: [{ runtime_id: "gpu-box", endpoint: url, token: { env: "GPU_TOKEN" } }]
  }, { env: { GPU_TOKEN: "relay-remote-token-9f8e7d" } })

describe("the Backend relays a remote's answers", () => {
  it.scopedLive("an answer that is exactly the Backend's view goes out as the runtime's own bytes", () =>
    Effect.gen(function*() {
      // Spaces and key order that re-encoding would not reproduce: only a byte-for-byte relay keeps them.
      const text = ` ${JSON.stringify(worker("gpu-box"), null, 1)}`
      const fake = yield* fakeRuntime(() => text)
      const { client } = yield* backendFor(fake.url)
      const reply = yield* eventually(
        call(client, "GET", "/api/runtimes/gpu-box/workers/w_1"),
        (r) => r.status === 200,
        "the relayed worker"
      )
      assert.strictEqual(reply.text, text)
      assert.match(reply.headers["content-type"]!, /^application\/json/)
      assert.strictEqual(reply.headers["x-content-type-options"], "nosniff")
    }))

  it.scopedLive("an answer with fields the view does not have is decoded and re-encoded without them", () =>
    Effect.gen(function*() {
      const fake = yield* fakeRuntime(() => JSON.stringify(worker("gpu-box", { endpoint: "http://10.0.0.7:9999" })))
      const { client } = yield* backendFor(fake.url)
      const reply = yield* eventually(
        call(client, "GET", "/api/runtimes/gpu-box/workers/w_1"),
        (r) => r.status === 200,
        "the worker"
      )
      assert.notInclude(reply.text, "10.0.0.7")
      assert.isUndefined(reply.json.endpoint)
      assert.strictEqual(reply.json.display_ref, "Relayed@gpu-box")
    }))

  it.scopedLive("a worker under another runtime id is rebased, not relayed", () =>
    Effect.gen(function*() {
      const fake = yield* fakeRuntime(() => JSON.stringify(worker("its-own-name")))
      const { client } = yield* backendFor(fake.url)
      const reply = yield* eventually(
        call(client, "GET", "/api/runtimes/gpu-box/workers/w_1"),
        (r) => r.status === 200,
        "the worker"
      )
      assert.strictEqual(reply.json.runtime_id, "gpu-box")
      assert.strictEqual(reply.json.display_ref, "Relayed@gpu-box")
    }))

  it.scopedLive("an error body may not pose as the Backend's own timeout: it is mapped and names nothing", () =>
    Effect.gen(function*() {
      const fake = yield* fakeRuntime(() => JSON.stringify(worker("gpu-box")))
      const { client } = yield* backendFor(fake.url)
      yield* eventually(call(client, "GET", "/api/runtimes/gpu-box/workers/w_1"), (r) => r.status === 200, "online")
      const reply = yield* call(client, "POST", "/api/runtimes/gpu-box/workers/w_1/cancel")
      assert.strictEqual(reply.status, 503)
      assert.strictEqual(reply.json._tag, "RuntimeUnavailable")
      assert.notInclude(reply.text, "10.0.0.7")
    }))

  it.scopedLive("a remote's worker of another workspace is not relayed: it answers WorkerNotFound", () =>
    Effect.gen(function*() {
      const foreign = worker("gpu-box", { metadata: { "yoi.workspace": "someone-else", secret: "their-data-42" } })
      const fake = yield* fakeRuntime(() => JSON.stringify(foreign))
      const { client } = yield* backendFor(fake.url)
      const reply = yield* eventually(
        call(client, "GET", "/api/runtimes/gpu-box/workers/w_1"),
        (r) => r.status === 404,
        "the refusal"
      )
      assert.strictEqual(reply.json._tag, "WorkerNotFound")
      assert.notInclude(reply.text, "their-data-42")
      const cancel = yield* call(client, "POST", "/api/runtimes/gpu-box/workers/w_1/cancel")
      assert.strictEqual(cancel.status, 404)
      assert.notInclude(cancel.text, "10.0.0.7")
    }))
})
