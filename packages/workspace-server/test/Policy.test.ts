import { assert, describe, it } from "@effect/vitest"
import { layerMemory, Runtime } from "@yoi/worker-runtime"
import { Context, Effect, Layer } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { defaultWorkspaceId } from "../src/Config.js"
import { ensureCompanion } from "../src/Runtimes.js"
import { call, connectSse, eventually, startBackend, startRuntimeServer, tempDir } from "./support.js"

const REMOTE_TOKEN = "shared-remote-token-1e2d3c"
const env = { SHARED_TOKEN: REMOTE_TOKEN }
const range = (n: number) => Array.from({ length: n }, (_, i) => i)

describe("Backend policy", () => {
  it.scopedLive("per runtime: create may be refused, and tools a browser may grant are limited; refusals are audited", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const repo = NodeFs.realpathSync(dir)
      const remote = yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "shared" })
      const { client } = yield* startBackend({
        embedded: {
          runtime_id: "local",
          store: "memory",
          tools: ["read_file", "list_dir"],
          scope_roots: [{ path: repo, access: "read" }],
          engines: { default: "llm", profiles: { llm: { provider: "openai-chat", model: "m", base_url: "http://127.0.0.1:9/v1" } } },
          grantable_tools: ["list_dir"]
        },
        remotes: [{ runtime_id: "shared", endpoint: remote.url, token: { env: "SHARED_TOKEN" }, allow_create: false }]
      }, { env })
      const local = yield* call(client, "GET", "/api/runtimes/local")
      assert.deepStrictEqual(local.json.summary.capabilities.tools, ["read_file", "list_dir"])
      assert.strictEqual(local.json.summary.capabilities.scopes, "read")
      assert.notInclude(local.text, repo)

      const scope = { allow: [{ path: repo, access: "read" }] }
      const withheld = yield* call(client, "POST", "/api/runtimes/local/workers", {
        body: { display_name: "R", tools: ["read_file"], scope }
      })
      assert.strictEqual(withheld.status, 403)
      assert.strictEqual(withheld.json._tag, "Forbidden")
      const granted = yield* call(client, "POST", "/api/runtimes/local/workers", {
        body: { display_name: "L", tools: ["list_dir"], scope }
      })
      assert.strictEqual(granted.status, 201)
      const wider = yield* call(client, "POST", "/api/runtimes/local/workers", {
        body: { display_name: "W", tools: ["list_dir"], scope: { allow: [{ path: repo, access: "write" }] } }
      })
      assert.strictEqual(wider.status, 403)
      assert.strictEqual(wider.json._tag, "ScopeNotPermitted")
      assert.strictEqual(wider.json.field, "scope.allow[0].access")
      assert.notInclude(wider.text, repo)

      const refused = yield* Effect.forEach(range(10), (i) =>
        call(client, "POST", "/api/runtimes/shared/workers", { body: { display_name: `S${i}` } }), { concurrency: 10 })
      assert.isTrue(refused.every((r) => r.status === 403 && r.json._tag === "Forbidden"))
      assert.deepStrictEqual((yield* remote.runtime.listWorkers({})).items, [])

      const audit = yield* call(client, "GET", "/api/audit?limit=100")
      const denied = audit.json.items.filter((r: any) => r.outcome === "denied")
      assert.strictEqual(denied.filter((r: any) => r.runtime_id === "shared").length, 10)
      assert.strictEqual(denied.filter((r: any) => r.runtime_id === "local").length, 1)
    }))

  it.scopedLive("a metadata key under yoi. is reserved: 400, nothing created", () =>
    Effect.gen(function*() {
      const { client } = yield* startBackend({ embedded: { runtime_id: "local", store: "memory" } })
      const forged = yield* call(client, "POST", "/api/runtimes/local/workers", {
        body: { display_name: "F", metadata: { "yoi.workspace": "someone-else" } }
      })
      assert.strictEqual(forged.status, 400)
      assert.strictEqual(forged.json.field, "metadata.yoi.workspace")
      assert.deepStrictEqual((yield* call(client, "GET", "/api/runtimes/local/workers")).json.items, [])
    }))
})

describe("workspaces on a shared remote", () => {
  it.scopedLive("each Backend lists, reads, commands and streams only its own workspace's workers", () =>
    Effect.gen(function*() {
      const remote = yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "shared" })
      const configOf = (workspace: string) => ({
        workspace_id: workspace,
        embedded: null,
        remotes: [{ runtime_id: "shared", endpoint: remote.url, token: { env: "SHARED_TOKEN" } }]
      })
      const a = yield* startBackend(configOf("team-a"), { env })
      const b = yield* startBackend(configOf("team-b"), { env })
      for (const backend of [a, b]) {
        yield* eventually(call(backend.client, "GET", "/api/runtimes/shared"), (r) => r.json.status === "online", "online")
      }
      const streamB = yield* connectSse(b.client, "/api/events")
      const created = yield* Effect.forEach(range(6), (i) =>
        call(a.client, "POST", "/api/runtimes/shared/workers", { body: { worker_id: `a${i}`, display_name: `A${i}` } }), {
        concurrency: "unbounded"
      })
      assert.isTrue(created.every((r) => r.status === 201))
      assert.strictEqual(created[0]!.json.worker.metadata["yoi.workspace"], "team-a")
      const mine = yield* call(b.client, "POST", "/api/runtimes/shared/workers", { body: { worker_id: "b0", display_name: "B" } })
      assert.strictEqual(mine.status, 201)

      const listA = yield* call(a.client, "GET", "/api/runtimes/shared/workers")
      assert.deepStrictEqual(listA.json.items.map((w: any) => w.worker_id).sort(), range(6).map((i) => `a${i}`))
      const listB = yield* call(b.client, "GET", "/api/runtimes/shared/workers")
      assert.deepStrictEqual(listB.json.items.map((w: any) => w.worker_id), ["b0"])
      const all = yield* call(b.client, "GET", "/api/workers")
      assert.deepStrictEqual(all.json.items.map((w: any) => w.worker_id), ["b0"])

      for (
        const [method, path, body] of [
          ["GET", "/api/runtimes/shared/workers/a0", undefined],
          ["GET", "/api/runtimes/shared/workers/a0/transcript", undefined],
          ["POST", "/api/runtimes/shared/workers/a0/input", { text: "hi" }],
          ["POST", "/api/runtimes/shared/workers/a0/stop", undefined],
          ["DELETE", "/api/runtimes/shared/workers/a0", undefined]
        ] as const
      ) {
        const reply = yield* call(b.client, method, path, body === undefined ? {} : { body })
        assert.strictEqual(reply.status, 404, `${method} ${path}`)
        assert.strictEqual(reply.json._tag, "WorkerNotFound")
      }
      assert.strictEqual((yield* remote.runtime.getWorker("a0")).status, "idle")

      yield* call(a.client, "POST", "/api/runtimes/shared/workers/a1/input", { body: { text: "for a only" } })
      yield* call(b.client, "POST", "/api/runtimes/shared/workers/b0/input", { body: { text: "for b" } })
      const frames = yield* streamB.waitFor(
        (fs) => fs.some((f) => f.event === "turn.completed" && f.data.worker_id === "b0"),
        "b0's turn"
      )
      yield* Effect.sleep("200 millis")
      assert.isTrue(streamB.frames().every((f) => f.data.worker_id === undefined || f.data.worker_id === "b0"))
      assert.isAbove(frames.length, 2)
    }))
})

describe("the Companion", () => {
  it.scopedLive("is created tool-less when absent, with the configured profile and prompt, and left alone when present", () =>
    Effect.gen(function*() {
      const { client } = yield* startBackend({
        embedded: { runtime_id: "local", store: "memory" },
        companion: { display_name: "Kit", profile: "echo-c2", system_prompt: "Be kind." }
      })
      const companion = yield* call(client, "GET", "/api/runtimes/local/workers/companion")
      assert.strictEqual(companion.json.display_name, "Kit")
      assert.deepStrictEqual(companion.json.engine, { profile: "echo-c2", provider: "echo" })
      assert.deepStrictEqual(companion.json.tools, [])
      const input = yield* call(client, "POST", "/api/runtimes/local/workers/companion/input", { body: { text: "hey" } })
      assert.strictEqual(input.status, 202)

      // Against one runtime: an existing (stopped) Companion is left stopped, with its transcript.
      const context = yield* Layer.build(layerMemory({ runtimeId: "solo" }))
      const rt = Context.get(context, Runtime.Runtime)
      yield* ensureCompanion(rt, {})
      yield* rt.stop("companion")
      yield* Effect.forEach(range(5), () => ensureCompanion(rt, { display_name: "Other" }), { concurrency: "unbounded" })
      const kept = yield* rt.getWorker("companion")
      assert.strictEqual(kept.status, "stopped")
      assert.strictEqual(kept.display_name, "Companion")
      assert.strictEqual((yield* rt.listWorkers({})).items.length, 1)

      const badProfile = yield* Effect.flip(ensureCompanion(
        Context.get(yield* Layer.build(layerMemory({ runtimeId: "other" })), Runtime.Runtime),
        { profile: "ghost" }
      ))
      assert.match(badProfile.message, /^invalid config: companion\.profile: unknown engine profile "ghost"/)
    }))

  it.scopedLive("a data directory keeps its workspace id; another directory gets another", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      assert.strictEqual(defaultWorkspaceId(NodePath.join(dir, "a")), defaultWorkspaceId(NodePath.join(dir, "a")))
      assert.notStrictEqual(defaultWorkspaceId(NodePath.join(dir, "a")), defaultWorkspaceId(NodePath.join(dir, "b")))
      assert.match(defaultWorkspaceId(dir), /^ws-[0-9a-f]{12}$/)
    }))
})
