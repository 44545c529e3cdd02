import { echo } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { call, eventually, startBackend } from "./support.js"

const embeddedOnly = { embedded: { runtime_id: "local", store: "memory" } }

describe("embedded runtime routing", () => {
  it.scopedLive("routes the worker lifecycle by runtime_id + worker_id through direct calls", () =>
    Effect.gen(function*() {
      const { client } = yield* startBackend(embeddedOnly)

      const runtimes = yield* call(client, "GET", "/api/runtimes")
      assert.strictEqual(runtimes.status, 200)
      assert.deepStrictEqual(runtimes.json.items.map((r: any) => [r.runtime_id, r.kind, r.status]), [
        ["local", "embedded", "online"]
      ])

      const created = yield* call(client, "POST", "/api/runtimes/local/workers", {
        body: { display_name: "Ada", engine: echo({ chunk_size: 4 }) }
      })
      assert.strictEqual(created.status, 201)
      const worker = created.json.worker
      assert.strictEqual(worker.runtime_id, "local")
      assert.strictEqual(worker.display_ref, "Ada@local")
      const base = `/api/runtimes/local/workers/${worker.worker_id}`

      const again = yield* call(client, "POST", "/api/runtimes/local/workers", {
        body: { worker_id: worker.worker_id, display_name: "Ada", engine: echo({ chunk_size: 4 }) }
      })
      assert.strictEqual(again.status, 200)
      assert.strictEqual(again.json.created, false)

      const detail = yield* call(client, "GET", base)
      assert.strictEqual(detail.status, 200)
      assert.strictEqual(detail.json.worker_id, worker.worker_id)

      const list = yield* call(client, "GET", "/api/runtimes/local/workers?limit=10")
      assert.deepStrictEqual(list.json.items.map((w: any) => w.worker_id), [worker.worker_id])

      const input = yield* call(client, "POST", `${base}/input`, { body: { text: "hello there" } })
      assert.strictEqual(input.status, 202)
      assert.match(input.json.turn_id, /^t_/)

      const transcript = yield* eventually(
        call(client, "GET", `${base}/transcript`),
        (r) => r.json.items.some((e: any) => e.data._tag === "assistant_message"),
        "the echo reply"
      )
      assert.deepStrictEqual(transcript.json.items.map((e: any) => e.data._tag), ["user_input", "assistant_message"])
      assert.strictEqual(transcript.json.items[1].data.text, "hello there")
      assert.isString(transcript.json.cursor)

      const cancel = yield* call(client, "POST", `${base}/cancel`)
      assert.strictEqual(cancel.status, 200)
      assert.strictEqual(cancel.json.cancelled, false)

      const notStopped = yield* call(client, "DELETE", base)
      assert.strictEqual(notStopped.status, 409)
      assert.strictEqual(notStopped.json._tag, "WorkerStateConflict")
      assert.strictEqual(notStopped.json.runtime_id, "local")

      const stopped = yield* call(client, "POST", `${base}/stop`)
      assert.strictEqual(stopped.json.status, "stopped")
      const refused = yield* call(client, "POST", `${base}/input`, { body: { text: "again" } })
      assert.strictEqual(refused.status, 409)
      assert.strictEqual(refused.json._tag, "WorkerStopped")

      const restored = yield* call(client, "POST", `${base}/restore`)
      assert.strictEqual(restored.json.status, "idle")
      yield* call(client, "POST", `${base}/stop`)
      const deleted = yield* call(client, "DELETE", base)
      assert.deepStrictEqual(deleted.json, { worker_id: worker.worker_id, deleted: true })
      const gone = yield* call(client, "GET", base)
      assert.strictEqual(gone.status, 404)
      assert.strictEqual(gone.json._tag, "WorkerNotFound")
    }))

  it.scopedLive("tells an unknown runtime from an unknown worker, and answers bad input with a readable 400", () =>
    Effect.gen(function*() {
      const { client } = yield* startBackend(embeddedOnly)
      const noRuntime = yield* call(client, "GET", "/api/runtimes/elsewhere/workers/w_1")
      assert.strictEqual(noRuntime.status, 404)
      assert.strictEqual(noRuntime.json._tag, "RuntimeNotFound")
      assert.strictEqual(noRuntime.json.runtime_id, "elsewhere")
      const noRuntimeInfo = yield* call(client, "GET", "/api/runtimes/elsewhere")
      assert.strictEqual(noRuntimeInfo.json._tag, "RuntimeNotFound")

      const noWorker = yield* call(client, "GET", "/api/runtimes/local/workers/w_missing")
      assert.strictEqual(noWorker.status, 404)
      assert.deepStrictEqual(noWorker.json, {
        _tag: "WorkerNotFound",
        runtime_id: "local",
        worker_id: "w_missing",
        message: "worker w_missing does not exist in runtime local"
      })

      const malformed = yield* call(client, "POST", "/api/runtimes/local/workers", { rawBody: "{\"display_name\":" })
      assert.strictEqual(malformed.status, 400)
      assert.strictEqual(malformed.json._tag, "InvalidInput")

      const wrongShape = yield* call(client, "POST", "/api/runtimes/local/workers", { body: { display_name: "" } })
      assert.strictEqual(wrongShape.status, 400)
      assert.strictEqual(wrongShape.json._tag, "InvalidInput")
      assert.strictEqual(wrongShape.json.field, "display_name")

      const badLimit = yield* call(client, "GET", "/api/runtimes/local/workers?limit=lots")
      assert.strictEqual(badLimit.status, 400)
      assert.strictEqual(badLimit.json.field, "limit")

      const badId = yield* call(client, "GET", "/api/runtimes/local/workers/..%2Fetc")
      assert.strictEqual(badId.status, 400)
      assert.strictEqual(badId.json._tag, "InvalidInput")

      const unknownRoute = yield* call(client, "GET", "/api/nope")
      assert.strictEqual(unknownRoute.status, 404)
      assert.strictEqual(unknownRoute.json._tag, "RouteNotFound")

      const listed = yield* call(client, "GET", "/api/runtimes/local/workers")
      assert.deepStrictEqual(listed.json.items, [])
    }))

  it.scopedLive("serves the older listings on the new model", () =>
    Effect.gen(function*() {
      const { client } = yield* startBackend(embeddedOnly)
      yield* call(client, "POST", "/api/runtimes/local/workers", { body: { display_name: "One" } })
      yield* call(client, "POST", "/api/runtimes/local/workers", { body: { display_name: "Two" } })
      const workers = yield* call(client, "GET", "/api/workers")
      assert.strictEqual(workers.status, 200)
      assert.deepStrictEqual(workers.json.items.map((w: any) => w.display_ref).sort(), ["One@local", "Two@local"])
      assert.deepStrictEqual(workers.json.unavailable, [])
      const hosts = yield* call(client, "GET", "/api/hosts")
      assert.deepStrictEqual(hosts.json.items.map((h: any) => [h.host_id, h.kind, h.status, h.worker_count]), [
        ["local", "embedded", "online", 2]
      ])
    }))
})

describe("policy and audit", () => {
  it.scopedLive("writes one audit record per command, allowed or denied, with actor and request id", () =>
    Effect.gen(function*() {
      const { client } = yield* startBackend({
        embedded: { runtime_id: "local", store: "memory" },
        remotes: []
      })
      const created = yield* call(client, "POST", "/api/runtimes/local/workers", {
        body: { display_name: "Audited" },
        headers: { "x-request-id": "req-create-1" }
      })
      assert.strictEqual(created.headers["x-request-id"], "req-create-1")
      const id = created.json.worker.worker_id
      const base = `/api/runtimes/local/workers/${id}`
      yield* call(client, "POST", `${base}/input`, { body: { text: "hi" } })
      yield* call(client, "POST", `${base}/cancel`)
      yield* call(client, "POST", `${base}/stop`)
      yield* call(client, "POST", `${base}/restore`)
      yield* call(client, "DELETE", base)
      yield* call(client, "POST", "/api/runtimes/local/workers/w_nobody/stop")
      yield* call(client, "POST", "/api/runtimes/ghost/workers/w_x/cancel")
      yield* call(client, "POST", `${base}/input`, { rawBody: "not json" })

      const audit = yield* call(client, "GET", "/api/audit?limit=100")
      assert.strictEqual(audit.status, 200)
      const rows = [...audit.json.items].reverse()
      assert.deepStrictEqual(rows.map((r: any) => [r.action, r.runtime_id, r.outcome, r.error_tag]), [
        ["create", "local", "ok", null],
        ["input", "local", "ok", null],
        ["cancel", "local", "ok", null],
        ["stop", "local", "ok", null],
        ["restore", "local", "ok", null],
        ["delete", "local", "failed", "WorkerStateConflict"],
        ["stop", "local", "failed", "WorkerNotFound"],
        ["cancel", "ghost", "failed", "RuntimeNotFound"],
        ["input", "local", "failed", "InvalidInput"]
      ])
      assert.strictEqual(rows[0].worker_id, id)
      assert.strictEqual(rows[0].request_id, "req-create-1")
      assert.isTrue(rows.every((r: any) => r.actor === "token" && r.request_id.length > 0 && r.at.length > 0))
      assert.strictEqual(new Set(rows.map((r: any) => r.request_id)).size, rows.length)

      const page = yield* call(client, "GET", "/api/audit?limit=4")
      assert.strictEqual(page.json.items.length, 4)
      const next = yield* call(client, "GET", `/api/audit?limit=100&page_token=${page.json.next_page_token}`)
      assert.strictEqual(next.json.items.length, 5)
      assert.isUndefined(next.json.next_page_token)
      const filtered = yield* call(client, "GET", "/api/audit?runtime_id=ghost")
      assert.deepStrictEqual(filtered.json.items.map((r: any) => r.action), ["cancel"])
      const badToken = yield* call(client, "GET", "/api/audit?page_token=zzz")
      assert.strictEqual(badToken.status, 400)
    }))

  it.scopedLive("refuses commands on a read-only runtime with a typed 403, audited as denied; hides hidden ones", () =>
    Effect.gen(function*() {
      const { client } = yield* startBackend({
        embedded: { runtime_id: "local", store: "memory", read_only: true },
        legacy_pods: { runtime_id: "secret", dir: "/nonexistent-pods", hidden: true }
      })
      const view = yield* call(client, "GET", "/api/runtimes/local")
      assert.strictEqual(view.json.read_only, true)
      const denied = yield* call(client, "POST", "/api/runtimes/local/workers", { body: { display_name: "Nope" } })
      assert.strictEqual(denied.status, 403)
      assert.strictEqual(denied.json._tag, "Forbidden")
      assert.strictEqual(denied.json.action, "create")
      const deniedStop = yield* call(client, "POST", "/api/runtimes/local/workers/w_any/stop")
      assert.strictEqual(deniedStop.status, 403)
      const list = yield* call(client, "GET", "/api/runtimes/local/workers")
      assert.strictEqual(list.status, 200)

      const audit = yield* call(client, "GET", "/api/audit")
      assert.deepStrictEqual(audit.json.items.map((r: any) => [r.action, r.outcome, r.error_tag]), [
        ["stop", "denied", "Forbidden"],
        ["create", "denied", "Forbidden"]
      ])

      const runtimes = yield* call(client, "GET", "/api/runtimes")
      assert.deepStrictEqual(runtimes.json.items.map((r: any) => r.runtime_id), ["local"])
      const hidden = yield* call(client, "GET", "/api/runtimes/secret/workers")
      assert.strictEqual(hidden.status, 404)
      assert.strictEqual(hidden.json._tag, "RuntimeNotFound")
    }))
})
