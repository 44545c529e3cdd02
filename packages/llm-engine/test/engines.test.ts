import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import * as Fakes from "./fakes.js"
import * as H from "./harness.js"

describe("LLM engines in a runtime", () => {
  it.scopedLive("the runtime offers the engines and their tools, and validates specs at create", () =>
    Effect.gen(function*() {
      const rt = yield* H.runtime()
      const summary = yield* rt.summary
      assert.deepStrictEqual([...summary.capabilities.engines].sort(), ["anthropic", "echo", "openai", "openai-chat"])
      assert.deepStrictEqual([...summary.capabilities.tools].sort(), ["list_dir", "read_file", "write_file"])

      const create = (engine: any, extra: Record<string, unknown> = {}) =>
        Effect.flip(rt.createWorker({ display_name: "w", engine, ...extra }))
      const noBase = yield* create({ provider: "openai-chat", model: "llama3.1" })
      assert.strictEqual(noBase._tag, "InvalidInput")
      assert.strictEqual((noBase as any).field, "engine.base_url")
      const noModel = yield* create({ provider: "anthropic" })
      assert.strictEqual((noModel as any).field, "engine.model")
      const badUrl = yield* create({ provider: "openai", model: "m", base_url: "ftp://x" })
      assert.strictEqual((badUrl as any).field, "engine.base_url")
      const echoField = yield* create({ provider: "openai", model: "m", chunk_size: 3 })
      assert.strictEqual((echoField as any).field, "engine.chunk_size")
      const badTool = yield* create({ provider: "openai", model: "m" }, { tools: ["rm_rf"] })
      assert.strictEqual((badTool as any).field, "tools")

      const echo = yield* rt.createWorker({ display_name: "offline" })
      assert.strictEqual(echo.worker.engine.provider, "echo")
      const created = yield* rt.createWorker({
        display_name: "gpt",
        engine: { provider: "openai", model: "gpt-test", api_key: { env: "TEST_LLM_KEY" } }
      })
      assert.deepStrictEqual(created.worker.engine, { provider: "openai", model: "gpt-test" })
    }))

  it.scopedLive("a worker without a tool grant is offered no tools", () =>
    Effect.gen(function*() {
      const dir = yield* H.tempDir
      const fake = yield* Fakes.make("chat")
      const rt = yield* H.runtime()
      fake.script({ kind: "stream", text: ["hi"] })
      const { worker } = yield* rt.createWorker({
        display_name: "Companion",
        engine: H.specFor(fake),
        scope: { allow: [{ path: dir, access: "read" }] }
      })
      const { end } = yield* H.turn(rt, worker.worker_id, "hello")
      assert.strictEqual(end.kind, "turn.completed")
      assert.isUndefined(fake.requests[0]!.body.tools)
    }))

  it.scopedLive("reads the key from a file reference, and fails typed when an env reference is unset", () =>
    Effect.gen(function*() {
      const dir = yield* H.tempDir
      const keyFile = join(dir, "key")
      yield* Effect.promise(() => writeFile(keyFile, "sk-from-file-123\n"))
      const fake = yield* Fakes.make("chat")
      const rt = yield* H.runtime()
      fake.script({ kind: "stream", text: ["ok"] })
      const fromFile = yield* rt.createWorker({
        display_name: "file",
        engine: H.specFor(fake, { api_key: { file: keyFile } })
      })
      assert.strictEqual((yield* H.turn(rt, fromFile.worker.worker_id, "hi")).end.kind, "turn.completed")
      assert.strictEqual(fake.requests[0]!.headers.authorization, "Bearer sk-from-file-123")

      const unset = yield* rt.createWorker({
        display_name: "unset",
        engine: H.specFor(fake, { api_key: { env: "NOT_SET_ANYWHERE" } })
      })
      const { end } = yield* H.turn(rt, unset.worker.worker_id, "hi")
      assert.strictEqual(end.kind, "turn.failed")
      const error = end.data.error!
      assert.strictEqual(error.code, "provider_secret_unavailable")
      assert.include(error.message, "NOT_SET_ANYWHERE")
      assert.strictEqual(fake.requests.length, 1)

      const noKey = yield* rt.createWorker({ display_name: "local", engine: H.specFor(fake, { api_key: undefined }) })
      fake.script({ kind: "stream", text: ["no key needed"] })
      assert.strictEqual((yield* H.turn(rt, noKey.worker.worker_id, "hi")).end.kind, "turn.completed")
      assert.isUndefined(fake.requests[1]!.headers.authorization)
    }))

  it.scopedLive("stops at max_steps and records the turn as step_limit_reached", () =>
    Effect.gen(function*() {
      const dir = yield* H.tempDir
      yield* Effect.promise(() => writeFile(join(dir, "a.txt"), "a"))
      const fake = yield* Fakes.make("chat")
      const rt = yield* H.runtime()
      const call = (id: string): Fakes.Reply => ({
        kind: "stream",
        calls: [{ id, name: "read_file", args: "{\"path\":\"a.txt\"}" }],
        usage: { input: 5, output: 1 }
      })
      fake.script(call("c1"), call("c2"))
      const { worker } = yield* rt.createWorker({
        display_name: "Looper",
        engine: H.specFor(fake, { max_steps: 2 }),
        tools: ["read_file"],
        scope: { allow: [{ path: dir, access: "read" }] }
      })
      const { end } = yield* H.turn(rt, worker.worker_id, "loop")
      assert.strictEqual(end.kind, "turn.failed")
      assert.strictEqual(end.data.error?.code, "step_limit_reached")
      assert.strictEqual(fake.requests.length, 2)
      const entries = yield* H.transcript(rt, worker.worker_id)
      assert.deepStrictEqual(entries.map((e) => e._tag), ["user_input", "tool_call", "tool_result", "notice"])
      const detail = yield* rt.getWorker(worker.worker_id)
      assert.strictEqual(detail.usage.input_tokens, 10)
      assert.strictEqual(detail.status, "idle")
    }))

  it.scopedLive("bounds the history sent to the model by the context budget", () =>
    Effect.gen(function*() {
      const fake = yield* Fakes.make("chat")
      const rt = yield* H.runtime()
      const { worker } = yield* rt.createWorker({
        display_name: "Budget",
        engine: H.specFor(fake, { context_budget_tokens: 250 }),
        system_prompt: "sys"
      })
      for (const tag of ["one", "two", "three"]) {
        fake.script({ kind: "stream", text: [`ok ${tag}`] })
        const { end } = yield* H.turn(rt, worker.worker_id, `${tag} ${"x".repeat(396)}`)
        assert.strictEqual(end.kind, "turn.completed")
      }
      const third = fake.requests[2]!.body.messages as Array<{ role: string; content: string }>
      assert.deepStrictEqual(third.map((m) => m.role), ["system", "user", "assistant", "user"])
      assert.isTrue(third[1]!.content.startsWith("two "))
      assert.isTrue(third[3]!.content.startsWith("three "))
      assert.strictEqual(fake.requests[1]!.body.messages.length, 4)
    }))

  it.scopedLive("waits out the provider's request timeout and fails typed when retries run out", () =>
    Effect.gen(function*() {
      const fake = yield* Fakes.make("anthropic")
      const rt = yield* H.runtime({ ...H.testConfig, retry: { maxRetries: 1, initialDelayMs: 1, maxDelayMs: 1 } })
      fake.script({ kind: "stream", hang: true }, { kind: "stream", hang: true })
      const { worker } = yield* rt.createWorker({
        display_name: "Slow",
        engine: H.specFor(fake, { request_timeout_ms: 150 })
      })
      const { end, turnEvents } = yield* H.turn(rt, worker.worker_id, "hi")
      assert.strictEqual(end.kind, "turn.failed")
      const error = end.data.error!
      assert.strictEqual(error.code, "provider_timeout")
      assert.include(error.message, "gave up after 2 attempts")
      assert.strictEqual(turnEvents.filter((e) => e.kind === "turn.retry").length, 1)
      assert.strictEqual(fake.requests.length, 2)
    }))

  it.scopedLive("gives up when Retry-After exceeds the retry budget", () =>
    Effect.gen(function*() {
      const fake = yield* Fakes.make("responses")
      const rt = yield* H.runtime()
      fake.script({
        kind: "status",
        status: 429,
        type: "rate_limit_exceeded",
        message: "quota",
        headers: { "retry-after": "3600" }
      })
      const { worker } = yield* rt.createWorker({ display_name: "Limited", engine: H.specFor(fake) })
      const { end, turnEvents } = yield* H.turn(rt, worker.worker_id, "hi")
      const error = end.data.error!
      assert.strictEqual(error.code, "provider_rate_limited")
      assert.include(error.message, "retry budget")
      assert.strictEqual(turnEvents.filter((e) => e.kind === "turn.retry").length, 0)
      assert.strictEqual(fake.requests.length, 1)
    }))

  it.scopedLive("malformed tool arguments go back to the model; a call to a tool it was not offered fails typed", () =>
    Effect.gen(function*() {
      const dir = yield* H.tempDir
      const fake = yield* Fakes.make("chat")
      const rt = yield* H.runtime()
      fake.script(
        { kind: "stream", calls: [{ id: "c1", name: "read_file", args: "{\"path\": \"a.t" }] },
        { kind: "stream", text: ["sorry"] },
        { kind: "stream", calls: [{ id: "c2", name: "write_file", args: "{}" }] }
      )
      const { worker } = yield* rt.createWorker({
        display_name: "Sloppy",
        engine: H.specFor(fake),
        tools: ["read_file"],
        scope: { allow: [{ path: dir, access: "read" }] }
      })
      const first = yield* H.turn(rt, worker.worker_id, "read")
      assert.strictEqual(first.end.kind, "turn.completed")
      const entries = yield* H.transcript(rt, worker.worker_id)
      assert.strictEqual(entries[1]!._tag, "tool_call")
      assert.isUndefined((entries[1] as { arguments: { path?: unknown } }).arguments.path)
      const result = entries[2] as { result: any; is_error: boolean }
      assert.isTrue(result.is_error)
      assert.strictEqual(result.result.code, "invalid_arguments")

      const second = yield* H.turn(rt, worker.worker_id, "write")
      assert.strictEqual(second.end.kind, "turn.failed")
      assert.strictEqual(second.end.data.error?.code, "provider_bad_response")
      assert.strictEqual((yield* rt.getWorker(worker.worker_id)).status, "idle")
    }))
})
