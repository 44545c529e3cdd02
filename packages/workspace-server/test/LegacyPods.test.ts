import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as LegacyPods from "../src/LegacyPods.js"
import { call, startBackend, tempDir } from "./support.js"

/** A pid no process has: above Linux's pid_max limit. */
const DEAD_PID = 2_147_483_000

/** Writes a pod metadata directory in the older format; secrets to look for are returned. */
const writePods = (dir: string) => {
  const pod = (name: string, metadata: unknown) => {
    NodeFs.mkdirSync(NodePath.join(dir, name), { recursive: true })
    NodeFs.writeFileSync(
      NodePath.join(dir, name, "metadata.json"),
      typeof metadata === "string" ? metadata : JSON.stringify(metadata)
    )
  }
  pod("alpha", { worker_name: "alpha", active: { session_id: "sess-alpha-1", segment_id: "seg-9" }, workspace_root: "/home/me/projects/alpha" })
  pod("beta", { worker_name: "beta", active: { session_id: "sess-beta-1" } })
  pod("gamma", { worker_name: "gamma", active: null })
  pod("broken", "{ not json")
  pod("bad-name", { worker_name: "../escape" })
  NodeFs.writeFileSync(NodePath.join(dir, "workers.json"), JSON.stringify({
    allocations: [
      {
        worker_name: "alpha",
        pid: process.pid,
        socket: "/run/user/1000/yoi/alpha.sock",
        scope_allow: ["/home/me/projects/alpha"],
        scope_deny: [],
        segment_id: "seg-9"
      },
      {
        worker_name: "beta",
        pid: DEAD_PID,
        socket: "/run/user/1000/yoi/beta.sock",
        scope_allow: [],
        scope_deny: [],
        delegated_from: "alpha"
      }
    ]
  }))
  return ["/run/user/1000", "alpha.sock", "/home/me/projects", "sess-alpha-1", "sess-beta-1", "seg-9", dir]
}

describe("legacy pod adapter", () => {
  it.scopedLive("lists pods with liveness from the allocation table's pids; commands answer UnsupportedOperation", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("yoi-pods-")
      const secrets = writePods(dir)
      const { client } = yield* startBackend({
        embedded: { runtime_id: "local", store: "memory" },
        legacy_pods: { runtime_id: "legacy", dir }
      })
      const replies: Array<string> = []
      const get = (method: "GET" | "POST" | "DELETE", path: string, body?: unknown) =>
        Effect.tap(call(client, method, path, { body }), (r) => Effect.sync(() => replies.push(r.text)))

      const view = yield* get("GET", "/api/runtimes/legacy")
      assert.strictEqual(view.json.kind, "legacy")
      assert.strictEqual(view.json.compatibility, true)
      assert.strictEqual(view.json.read_only, true)
      assert.strictEqual(view.json.status, "online")
      assert.deepStrictEqual(view.json.counts, { idle: 1, running: 0, stopped: 2, total: 3 })

      const list = yield* get("GET", "/api/runtimes/legacy/workers")
      assert.deepStrictEqual(list.json.items.map((w: any) => [w.worker_id, w.status, w.liveness, w.compatibility]), [
        ["alpha", "idle", "alive", true],
        ["beta", "stopped", "stale", true],
        ["gamma", "stopped", "inactive", true]
      ])
      assert.deepStrictEqual(list.json.items[1].metadata, { delegated_from: "alpha" })
      const page = yield* get("GET", "/api/runtimes/legacy/workers?limit=2")
      assert.strictEqual(page.json.items.length, 2)
      const rest = yield* get("GET", `/api/runtimes/legacy/workers?limit=2&page_token=${page.json.next_page_token}`)
      assert.deepStrictEqual(rest.json.items.map((w: any) => w.worker_id), ["gamma"])
      const alive = yield* get("GET", "/api/runtimes/legacy/workers?status=idle")
      assert.deepStrictEqual(alive.json.items.map((w: any) => w.worker_id), ["alpha"])

      const detail = yield* get("GET", "/api/runtimes/legacy/workers/alpha")
      assert.strictEqual(detail.json.display_ref, "alpha@legacy")
      const missing = yield* get("GET", "/api/runtimes/legacy/workers/zeta")
      assert.strictEqual(missing.json._tag, "WorkerNotFound")

      const commands: ReadonlyArray<readonly ["POST" | "DELETE", string, unknown?]> = [
        ["POST", "/api/runtimes/legacy/workers", { display_name: "new" }],
        ["POST", "/api/runtimes/legacy/workers/alpha/input", { text: "hi" }],
        ["POST", "/api/runtimes/legacy/workers/alpha/cancel"],
        ["POST", "/api/runtimes/legacy/workers/alpha/stop"],
        ["POST", "/api/runtimes/legacy/workers/alpha/restore"],
        ["DELETE", "/api/runtimes/legacy/workers/alpha"]
      ]
      for (const [method, path, body] of commands) {
        const reply = yield* get(method, path, body)
        assert.strictEqual(reply.status, 501, `${method} ${path}`)
        assert.strictEqual(reply.json._tag, "UnsupportedOperation")
        assert.strictEqual(reply.json.runtime_id, "legacy")
      }
      const transcript = yield* get("GET", "/api/runtimes/legacy/workers/alpha/transcript")
      assert.strictEqual(transcript.status, 501)
      const events = yield* get("GET", "/api/runtimes/legacy/workers/alpha/events")
      assert.strictEqual(events.status, 501)

      const audit = yield* get("GET", "/api/audit?runtime_id=legacy")
      assert.deepStrictEqual([...audit.json.items].reverse().map((r: any) => [r.action, r.outcome, r.error_tag]), [
        ["create", "failed", "UnsupportedOperation"],
        ["input", "failed", "UnsupportedOperation"],
        ["cancel", "failed", "UnsupportedOperation"],
        ["stop", "failed", "UnsupportedOperation"],
        ["restore", "failed", "UnsupportedOperation"],
        ["delete", "failed", "UnsupportedOperation"]
      ])

      yield* call(client, "POST", "/api/runtimes/local/workers", { body: { display_name: "Modern" } })
      const all = yield* get("GET", "/api/workers")
      assert.deepStrictEqual(all.json.items.map((w: any) => w.display_ref), [
        "Modern@local",
        "alpha@legacy",
        "beta@legacy",
        "gamma@legacy"
      ])
      const hosts = yield* get("GET", "/api/hosts")
      assert.deepStrictEqual(hosts.json.items.map((h: any) => [h.host_id, h.kind, h.compatibility, h.worker_count]), [
        ["local", "embedded", false, 1],
        ["legacy", "legacy", true, 3]
      ])

      for (const text of replies) {
        for (const secret of secrets) assert.notInclude(text, secret)
      }
    }))

  it.scopedLive("is offline, not failing, when its directory cannot be read", () =>
    Effect.gen(function*() {
      const { client } = yield* startBackend({
        embedded: null,
        legacy_pods: { runtime_id: "legacy", dir: "/nonexistent/pods/dir" }
      })
      const view = yield* call(client, "GET", "/api/runtimes/legacy")
      assert.strictEqual(view.json.status, "offline")
      assert.notInclude(view.text, "/nonexistent")
      const list = yield* call(client, "GET", "/api/runtimes/legacy/workers")
      assert.strictEqual(list.status, 503)
      assert.strictEqual(list.json._tag, "RuntimeUnavailable")
      assert.notInclude(list.text, "/nonexistent")
    }))

  it("checks liveness with the kernel", () => {
    assert.isTrue(LegacyPods.processAlive(process.pid))
    assert.isFalse(LegacyPods.processAlive(DEAD_PID))
    assert.isFalse(LegacyPods.processAlive(0))
    assert.isFalse(LegacyPods.processAlive(-1))
  })

  it.scopedLive("reads the fixture without a server too (the handle alone)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("yoi-pods-")
      writePods(dir)
      const handle = yield* LegacyPods.make({ runtimeId: "legacy", dir, isAlive: () => false }).pipe(
        Effect.provide(NodeContext.layer)
      )
      const page = yield* handle.listWorkers({})
      assert.deepStrictEqual(page.items.map((w) => w.liveness), ["stale", "stale", "inactive"])
      const head = yield* handle.headCursor
      assert.isTrue(head._tag === "None")
    }))
})
