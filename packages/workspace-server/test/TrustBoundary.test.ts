import { assert, describe, it } from "@effect/vitest"
import { writeTestConfig } from "@yoi/runtime-server/testing"
import { Effect } from "effect"
import fc from "fast-check"
import * as NodeChild from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeHttp from "node:http"
import * as NodePath from "node:path"
import { call, connectSse, eventually, startBackend, tempDir } from "./support.js"

const RUNTIME_BIN = NodePath.join(import.meta.dirname, "..", "..", "runtime-server", "bin", "yoi-runtime.mjs")
const REMOTE_TOKEN = "remote-runtime-token-5be0c1"
const MODEL_KEY = "sk-fake-model-key-93d1"

interface Capture {
  readonly url: string
  readonly requests: Array<
    { readonly method: string; readonly url: string; readonly authorization: string | undefined }
  >
}

/**
 * A local server that speaks just enough Chat Completions to stream a reply ("Hello from the model") and records
 * every request it gets: the fake model, and (never answered usefully) the attacker's capture server.
 */
const startModelServer = Effect.acquireRelease(
  Effect.async<Capture & { readonly server: NodeHttp.Server }>((resume) => {
    const requests: Capture["requests"] = []
    const server = NodeHttp.createServer((req, res) => {
      requests.push({ method: req.method ?? "", url: req.url ?? "", authorization: req.headers.authorization })
      req.resume()
      req.on("end", () => {
        res.writeHead(200, { "content-type": "text/event-stream" })
        const chunk = (delta: object, extra: object = {}) =>
          `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta, ...extra }] })}\n\n`
        res.write(chunk({ role: "assistant", content: "Hello " }))
        res.write(chunk({ content: "from the model" }))
        res.write(chunk({}, { finish_reason: "stop" }))
        res.write(`data: ${JSON.stringify({ id: "c1", choices: [], usage: { prompt_tokens: 7, completion_tokens: 4 } })}\n\n`)
        res.end("data: [DONE]\n\n")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ server, url: `http://127.0.0.1:${port}`, requests }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
)

/** The real `yoi-runtime` binary with a config file and the given environment; resolves to its URL once ready. */
const startRuntimeBinary = (dir: string, config: Record<string, unknown>, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.async<{ readonly child: NodeChild.ChildProcess; readonly url: string }>((resume) => {
      const configFile = writeTestConfig(dir, config)
      NodeFs.writeFileSync(NodePath.join(dir, "token"), REMOTE_TOKEN)
      const child = NodeChild.spawn(process.execPath, [
        RUNTIME_BIN,
        "--runtime-id",
        "gpu-box",
        "--bind",
        "127.0.0.1:0",
        "--store",
        "memory",
        "--token-file",
        NodePath.join(dir, "token"),
        "--config",
        configFile
      ], { env: { PATH: process.env.PATH ?? "", HOME: "/root/home-secret", ...env }, stdio: ["ignore", "pipe", "pipe"] })
      let out = ""
      let err = ""
      child.stderr!.on("data", (d) => (err += String(d)))
      child.stdout!.on("data", (d) => {
        out += String(d)
        const ready = /listening on (http:\/\/\S+)/.exec(out)
        if (ready !== null) resume(Effect.succeed({ child, url: ready[1]! }))
      })
      child.once("exit", (code) => resume(Effect.die(`yoi-runtime exited ${code}: ${err}`)))
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

const attacks = (capture: string): ReadonlyArray<readonly [Record<string, unknown>, string]> => [
  [{ provider: "openai-chat", model: "m", base_url: `${capture}/v1`, api_key: { env: "HOME" } }, "engine.provider"],
  [{ base_url: `${capture}/v1`, api_key: { file: "/etc/hostname" } }, "engine.base_url"],
  [{ profile: "echo", api_key: { env: "GPU_BOX_TOKEN" } }, "engine.api_key"],
  [{ profile: "echo", base_url: `${capture}/v1` }, "engine.base_url"],
  [{ profile: "llama", model: "other" }, "engine.model"]
]

describe("the trust boundary", () => {
  it.scopedLive("no request names an endpoint or a key: the attack fails with 400 on the Backend and on a runtime", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const capture = yield* startModelServer
      const remote = yield* startRuntimeBinary(dir, {}, {})
      const { client } = yield* startBackend({
        embedded: { runtime_id: "local", store: "memory" },
        remotes: [{ runtime_id: "gpu-box", endpoint: remote.url, token: { env: "GPU_BOX_TOKEN" } }]
      }, { env: { GPU_BOX_TOKEN: REMOTE_TOKEN } })
      yield* eventually(call(client, "GET", "/api/runtimes/gpu-box"), (r) => r.json.status === "online", "remote online")

      for (const [engine, field] of attacks(capture.url)) {
        for (const runtime of ["local", "gpu-box"]) {
          const reply = yield* call(client, "POST", `/api/runtimes/${runtime}/workers`, {
            body: { worker_id: "victim", display_name: "V", engine, initial_input: "leak it" }
          })
          assert.strictEqual(reply.status, 400, `${runtime} ${JSON.stringify(engine)}`)
          assert.strictEqual(reply.json._tag, "InvalidInput")
          assert.strictEqual(reply.json.field, field)
        }
        const direct = yield* Effect.promise(() =>
          fetch(`${remote.url}/v1/workers`, {
            method: "POST",
            headers: { authorization: `Bearer ${REMOTE_TOKEN}`, "content-type": "application/json" },
            body: JSON.stringify({ worker_id: "victim", display_name: "V", engine, initial_input: "leak it" })
          }).then(async (r) => ({ status: r.status, json: await r.json() as any }))
        )
        assert.strictEqual(direct.status, 400)
        assert.strictEqual(direct.json.field, field)
      }
      for (const runtime of ["local", "gpu-box"]) {
        const list = yield* call(client, "GET", `/api/runtimes/${runtime}/workers`)
        assert.deepStrictEqual(list.json.items, [])
      }
      assert.deepStrictEqual(capture.requests, [])
    }), 120_000)

  it.scopedLive("fuzzed create bodies never send a request to an address the config did not name", () =>
    Effect.gen(function*() {
      const capture = yield* startModelServer
      const { client } = yield* startBackend({ embedded: { runtime_id: "local", store: "memory" } })
      const member = fc.oneof(
        fc.constant(["base_url", `${capture.url}/v1`] as const),
        fc.constant(["api_key", { env: "HOME" }] as const),
        fc.constant(["api_key", { file: "/etc/hostname" }] as const),
        fc.constant(["provider", "openai-chat"] as const),
        fc.constant(["model", "m"] as const),
        fc.tuple(fc.constant("profile"), fc.constantFrom("echo", "echo-c1", "nope", 7)),
        fc.tuple(fc.constant("temperature"), fc.oneof(fc.double({ min: -1, max: 3, noNaN: true }), fc.string())),
        fc.tuple(fc.constant("max_steps"), fc.integer({ min: -2, max: 40 })),
        fc.tuple(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }))
      )
      const scope = fc.option(fc.record({
        allow: fc.array(fc.record({ path: fc.constantFrom("/", "/etc", "/tmp/x", "rel", capture.url), access: fc.constantFrom("read", "write", "x") }), { maxLength: 2 })
      }), { nil: undefined })
      const body = fc.record({
        display_name: fc.constant("F"),
        engine: fc.array(member, { maxLength: 4 }).map((pairs) => Object.fromEntries(pairs)),
        scope,
        tools: fc.option(fc.subarray(["read_file", "write_file", "shell"]), { nil: undefined }),
        initial_input: fc.constant("hello")
      })
      const statuses = new Set<number>()
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(body, async (b) => {
            const reply = await Effect.runPromise(call(client, "POST", "/api/runtimes/local/workers", { body: b }))
            statuses.add(reply.status)
            // 409: a scope that overlaps an earlier fuzzed worker's write scope (ScopeConflict).
            return [201, 400, 403, 409, 501].includes(reply.status) && typeof reply.json?._tag === (reply.status === 201 ? "undefined" : "string")
          }),
          { numRuns: 150 }
        )
      )
      assert.isTrue(statuses.has(400))
      // Whatever was accepted has run its initial turn on echo; nothing reached the capture server.
      yield* Effect.sleep("300 millis")
      assert.deepStrictEqual(capture.requests, [])
    }), 120_000)

  it.scopedLive("a remote runtime thinks with its configured model: browser → Backend → runtime → model → browser", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const model = yield* startModelServer
      const remote = yield* startRuntimeBinary(dir, {
        engines: {
          default: "llama",
          profiles: {
            llama: { provider: "openai-chat", model: "llama3.1", base_url: `${model.url}/v1`, api_key: { env: "MODEL_KEY" } }
          }
        }
      }, { MODEL_KEY })
      const { client } = yield* startBackend({
        embedded: { runtime_id: "local", store: "memory" },
        remotes: [{ runtime_id: "gpu-box", endpoint: remote.url, token: { env: "GPU_BOX_TOKEN" } }]
      }, { env: { GPU_BOX_TOKEN: REMOTE_TOKEN } })
      const view = yield* eventually(
        call(client, "GET", "/api/runtimes/gpu-box"),
        (r) => r.json.status === "online",
        "remote online"
      )
      const capabilities = view.json.summary.capabilities
      assert.strictEqual(capabilities.kind, "process")
      assert.strictEqual(capabilities.default_profile, "llama")
      assert.deepInclude(capabilities.profiles, { name: "llama", provider: "openai-chat", model: "llama3.1", ready: true })
      assert.notInclude(view.text, model.url.replace("http://", ""))
      assert.notInclude(view.text, "MODEL_KEY")

      const events = yield* connectSse(client, "/api/events")
      const created = yield* call(client, "POST", "/api/runtimes/gpu-box/workers", { body: { display_name: "Thinker" } })
      assert.strictEqual(created.status, 201)
      assert.deepStrictEqual(created.json.worker.engine, { profile: "llama", provider: "openai-chat", model: "llama3.1" })
      const id = created.json.worker.worker_id
      const input = yield* call(client, "POST", `/api/runtimes/gpu-box/workers/${id}/input`, { body: { text: "hi" } })
      assert.strictEqual(input.status, 202)
      const frames = yield* events.waitFor(
        (fs) => fs.some((f) => f.event === "turn.completed" && f.data.worker_id === id),
        "the remote turn to complete"
      )
      const deltas = frames.filter((f) => f.event === "turn.delta" && f.data.worker_id === id).map((f) => f.data.data.text)
      assert.strictEqual(deltas.join(""), "Hello from the model")
      assert.isTrue(frames.some((f) => f.event === "turn.usage" && f.data.data.input_tokens === 7))
      assert.strictEqual(model.requests.length, 1)
      assert.strictEqual(model.requests[0]!.url, "/v1/chat/completions")
      assert.strictEqual(model.requests[0]!.authorization, `Bearer ${MODEL_KEY}`)
      assert.notInclude(events.raw(), MODEL_KEY)
    }), 120_000)
})
