import { echo } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { call, closedPort, eventually, fastRemote, startBackend, startFakeServer, startRuntimeServer, tempDir } from "./support.js"

const REMOTE_TOKEN = "remote-runtime-token-77ab10"

const remoteConfig = (endpoint: string, extra: Record<string, unknown> = {}) => ({
  embedded: { runtime_id: "local", store: "memory" },
  remotes: [{
    runtime_id: "gpu-box",
    display_name: "GPU box",
    endpoint,
    token: { env: "GPU_BOX_TOKEN" },
    ...extra
  }]
})

const env = { GPU_BOX_TOKEN: REMOTE_TOKEN }

const runtimeView = (client: Parameters<typeof call>[0], id: string) =>
  Effect.map(call(client, "GET", "/api/runtimes"), (r) => r.json.items.find((v: any) => v.runtime_id === id))

describe("remote runtime routing", () => {
  it.scopedLive("routes every command and query to a real yoi-runtime server over its REST API", () =>
    Effect.gen(function*() {
      const remote = yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "gpu-box" })
      const { client } = yield* startBackend(remoteConfig(remote.url), { env })

      const online = yield* eventually(runtimeView(client, "gpu-box"), (v) => v.status === "online", "gpu-box online")
      assert.strictEqual(online.kind, "remote")
      assert.strictEqual(online.display_name, "GPU box")
      assert.isString(online.last_seen_at)
      assert.strictEqual(online.summary.runtime_id, "gpu-box")

      const created = yield* call(client, "POST", "/api/runtimes/gpu-box/workers", {
        body: { display_name: "Remote Ada", engine: echo() }
      })
      assert.strictEqual(created.status, 201)
      const id = created.json.worker.worker_id
      assert.strictEqual(created.json.worker.display_ref, "Remote Ada@gpu-box")
      // The worker lives in the remote runtime, not the embedded one.
      assert.strictEqual((yield* remote.runtime.getWorker(id)).display_name, "Remote Ada")
      const local = yield* call(client, "GET", `/api/runtimes/local/workers/${id}`)
      assert.strictEqual(local.json._tag, "WorkerNotFound")

      const base = `/api/runtimes/gpu-box/workers/${id}`
      const input = yield* call(client, "POST", `${base}/input`, { body: { text: "over the wire" } })
      assert.strictEqual(input.status, 202)
      const transcript = yield* eventually(
        call(client, "GET", `${base}/transcript?limit=10`),
        (r) => r.json.items.length === 2,
        "the remote echo reply"
      )
      assert.strictEqual(transcript.json.items[1].data.text, "over the wire")

      const busy = yield* call(client, "POST", `${base}/input`, { body: { text: "x" } })
      assert.oneOf(busy.status, [202, 409])
      const cancel = yield* call(client, "POST", `${base}/cancel`)
      assert.strictEqual(cancel.status, 200)
      const stop = yield* call(client, "POST", `${base}/stop`)
      assert.strictEqual(stop.json.status, "stopped")
      const stopped = yield* call(client, "POST", `${base}/input`, { body: { text: "no" } })
      assert.strictEqual(stopped.status, 409)
      assert.strictEqual(stopped.json._tag, "WorkerStopped")
      assert.strictEqual(stopped.json.runtime_id, "gpu-box")
      const restore = yield* call(client, "POST", `${base}/restore`)
      assert.strictEqual(restore.json.status, "idle")
      const conflict = yield* call(client, "DELETE", base)
      assert.strictEqual(conflict.status, 409)
      assert.strictEqual(conflict.json._tag, "WorkerStateConflict")
      yield* call(client, "POST", `${base}/stop`)
      const deleted = yield* call(client, "DELETE", base)
      assert.deepStrictEqual(deleted.json, { worker_id: id, deleted: true })
      const missing = yield* call(client, "GET", base)
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(missing.json._tag, "WorkerNotFound")
      assert.strictEqual(missing.json.runtime_id, "gpu-box")

      const invalid = yield* call(client, "POST", "/api/runtimes/gpu-box/workers", { body: { display_name: 5 } })
      assert.strictEqual(invalid.status, 400)
      assert.strictEqual(invalid.json._tag, "InvalidInput")
      const badStatus = yield* call(client, "GET", "/api/runtimes/gpu-box/workers?status=sleeping")
      assert.strictEqual(badStatus.status, 400)

      const all = yield* call(client, "GET", "/api/workers")
      assert.deepStrictEqual(all.json.unavailable, [])
      const audit = yield* call(client, "GET", "/api/audit?runtime_id=gpu-box&limit=100")
      assert.deepStrictEqual(
        [...audit.json.items].reverse().map((r: any) => `${r.action}:${r.outcome}`),
        ["create:ok", "input:ok", "input:" + (busy.status === 202 ? "ok" : "failed"), "cancel:ok", "stop:ok",
          "input:failed", "restore:ok", "delete:failed", "stop:ok", "delete:ok", "create:failed"]
      )
    }))

  it.scopedLive("reads the remote token from a file reference", () =>
    Effect.gen(function*() {
      const remote = yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "gpu-box" })
      const dir = yield* tempDir()
      const file = NodePath.join(dir, "token")
      NodeFs.writeFileSync(file, `${REMOTE_TOKEN}\n`)
      const { client } = yield* startBackend(remoteConfig(remote.url, { token: { file } }))
      const created = yield* call(client, "POST", "/api/runtimes/gpu-box/workers", { body: { display_name: "F" } })
      assert.strictEqual(created.status, 201)
    }))
})

describe("a remote that misbehaves", () => {
  it.scopedLive("down: RuntimeUnavailable (503), offline in /api/runtimes, and the other runtimes list at once", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const { client } = yield* startBackend(remoteConfig(`http://127.0.0.1:${port}`), { env })
      const offline = yield* eventually(
        runtimeView(client, "gpu-box"),
        (v) => v.status === "offline" && v.status_reason === "the runtime cannot be reached",
        "gpu-box offline"
      )
      assert.isUndefined(offline.last_seen_at)

      const list = yield* call(client, "GET", "/api/runtimes/gpu-box/workers")
      assert.strictEqual(list.status, 503)
      assert.strictEqual(list.json._tag, "RuntimeUnavailable")
      assert.strictEqual(list.json.runtime_id, "gpu-box")
      const create = yield* call(client, "POST", "/api/runtimes/gpu-box/workers", { body: { display_name: "X" } })
      assert.strictEqual(create.status, 503)

      yield* call(client, "POST", "/api/runtimes/local/workers", { body: { display_name: "Here" } })
      const all = yield* call(client, "GET", "/api/workers")
      assert.deepStrictEqual(all.json.items.map((w: any) => w.display_ref), ["Here@local"])
      assert.deepStrictEqual(all.json.unavailable.map((u: any) => [u.runtime_id, u._tag]), [
        ["gpu-box", "RuntimeUnavailable"]
      ])
      const hosts = yield* call(client, "GET", "/api/hosts")
      assert.deepStrictEqual(hosts.json.items.map((h: any) => [h.host_id, h.status]), [
        ["local", "online"],
        ["gpu-box", "offline"]
      ])
    }))

  it.scopedLive("slow: UpstreamTimeout (504) for commands; the listing of runtimes does not wait for it", () =>
    Effect.gen(function*() {
      // Answers the readiness probe, then never answers anything else.
      const slow = yield* startFakeServer((req, res) => {
        if (req.url === "/readyz") {
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify({ status: "ready", runtime_id: "gpu-box" }))
        }
      })
      const { client } = yield* startBackend(remoteConfig(slow.url, { timeout_ms: 300 }), {
        env,
        runtimes: { ...fastRemote, remote: { ...fastRemote.remote, timeout: undefined } }
      })
      const view = yield* eventually(runtimeView(client, "gpu-box"), (v) => v.status === "degraded", "gpu-box degraded")
      assert.strictEqual(view.status_reason, "the runtime is ready but its summary could not be read")

      const get = yield* call(client, "GET", "/api/runtimes/gpu-box/workers/w_1")
      assert.strictEqual(get.status, 504)
      assert.strictEqual(get.json._tag, "UpstreamTimeout")
      assert.strictEqual(get.json.timeout_ms, 300)
      const input = yield* call(client, "POST", "/api/runtimes/gpu-box/workers/w_1/input", { body: { text: "hi" } })
      assert.strictEqual(input.status, 504)

      // The listing answers from the last probe: with a request to the remote hanging, it still answers at once
      // (the bound is generous; waiting on the remote would take the whole command timeout or longer).
      const runtimes = yield* call(client, "GET", "/api/runtimes").pipe(
        Effect.timeoutFail({ duration: Duration.seconds(5), onTimeout: () => "the listing waited on the remote" })
      )
      assert.strictEqual(runtimes.json.items.length, 2)
      const audit = yield* call(client, "GET", "/api/audit")
      assert.deepStrictEqual(audit.json.items.map((r: any) => [r.action, r.error_tag]), [["input", "UpstreamTimeout"]])
    }))

  it.scopedLive("answering errors: 5xx, 401 and garbage become typed errors that name nothing of the remote", () =>
    Effect.gen(function*() {
      let mode: "500" | "401" | "garbage" | "404" = "500"
      const bad = yield* startFakeServer((req, res) => {
        if (req.url === "/readyz") {
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify({ status: "ready", runtime_id: "gpu-box" }))
          return
        }
        if (mode === "500") {
          res.writeHead(500, { "content-type": "application/json" })
          res.end(JSON.stringify({ _tag: "InternalError", message: `crash at /srv/secret/path ${REMOTE_TOKEN}` }))
        } else if (mode === "401") {
          res.writeHead(401, { "content-type": "application/json" })
          res.end(JSON.stringify({ _tag: "Unauthorized", message: "the bearer token is not valid for this runtime" }))
        } else if (mode === "404") {
          res.writeHead(404, { "content-type": "application/json" })
          res.end(JSON.stringify({ _tag: "WorkerNotFound", worker_id: "w_1", message: "worker w_1 does not exist at /x" }))
        } else {
          res.writeHead(200, { "content-type": "application/json" })
          res.end("{\"not\": \"a worker\"")
        }
      })
      const { client } = yield* startBackend(remoteConfig(bad.url), { env })
      const path = "/api/runtimes/gpu-box/workers/w_1"
      const e500 = yield* call(client, "GET", path)
      assert.strictEqual(e500.status, 503)
      assert.strictEqual(e500.json._tag, "RuntimeUnavailable")
      assert.notInclude(e500.text, "/srv/secret")
      assert.notInclude(e500.text, REMOTE_TOKEN)
      mode = "401"
      const e401 = yield* call(client, "GET", path)
      assert.strictEqual(e401.status, 503)
      assert.strictEqual(e401.json.message, "runtime gpu-box refused the Backend's credentials")
      mode = "garbage"
      const garbage = yield* call(client, "GET", path)
      assert.strictEqual(garbage.status, 503)
      assert.strictEqual(garbage.json._tag, "RuntimeUnavailable")
      mode = "404"
      const notFound = yield* call(client, "GET", path)
      assert.strictEqual(notFound.status, 404)
      assert.deepStrictEqual(notFound.json, {
        _tag: "WorkerNotFound",
        runtime_id: "gpu-box",
        worker_id: "w_1",
        message: "worker w_1 does not exist in runtime gpu-box"
      })
      for (const reply of [e500, e401, garbage, notFound]) assert.notInclude(reply.text, bad.url)
    }))

  it.scopedLive("comes back: a remote that starts late turns online and serves", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const { client } = yield* startBackend(remoteConfig(`http://127.0.0.1:${port}`), { env })
      yield* eventually(runtimeView(client, "gpu-box"), (v) => v.status === "offline", "gpu-box offline")
      yield* Effect.scoped(Effect.gen(function*() {
        yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "gpu-box" }, port)
        yield* eventually(runtimeView(client, "gpu-box"), (v) => v.status === "online", "gpu-box online")
        const created = yield* call(client, "POST", "/api/runtimes/gpu-box/workers", { body: { display_name: "Late" } })
        assert.strictEqual(created.status, 201)
      }))
    }))
})
