import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import * as Fakes from "./fakes.js"
import * as H from "./harness.js"

describe("LLM engines in a runtime", () => {
  it.scopedLive("the runtime offers the engines and their tools, and checks its profiles at start", () =>
    Effect.gen(function*() {
      const fake = yield* Fakes.make("chat")
      const rt = yield* H.runtime({ fake })
      const summary = yield* rt.summary
      assert.deepStrictEqual([...summary.capabilities.engines].sort(), ["anthropic", "echo", "openai", "openai-chat"])
      assert.deepStrictEqual([...summary.capabilities.tools].sort(), ["list_dir", "read_file", "write_file"])
      assert.deepStrictEqual(summary.capabilities.profiles.find((p) => p.name === "llm"), {
        name: "llm",
        provider: "openai-chat",
        model: "gpt-test",
        ready: true
      })

      const startWith = (profile: Record<string, unknown>) =>
        Effect.flip(Effect.scoped(H.runtime({ fake, profiles: { bad: profile } })))
      const noBase = yield* startWith({ provider: "openai-chat", base_url: undefined })
      assert.strictEqual(noBase._tag, "RuntimeConfigError")
      assert.match(noBase.message, /^engines\.profiles\.bad\.base_url: /)
      const noModel = yield* startWith({ provider: "anthropic", model: undefined })
      assert.match(noModel.message, /^engines\.profiles\.bad\.model: /)
      const badUrl = yield* startWith({ provider: "openai", base_url: "ftp://x" })
      assert.match(badUrl.message, /^engines\.profiles\.bad\.base_url: /)
      const echoField = yield* startWith({ chunk_size: 3 })
      assert.match(echoField.message, /^engines\.profiles\.bad\.chunk_size: /)
      const unknownProvider = yield* startWith({ provider: "nope" })
      assert.match(unknownProvider.message, /^engines\.profiles\.bad\.provider: this runtime has no nope engine/)

      const badTool = yield* Effect.flip(rt.createWorker({ display_name: "w", engine: { profile: "llm" }, tools: ["rm_rf"] }))
      assert.strictEqual((badTool as { field?: string }).field, "tools")
      const echoTools = yield* Effect.flip(rt.createWorker({
        display_name: "w",
        tools: ["read_file"],
        scope: { allow: [{ path: "/tmp", access: "read" }] }
      }))
      assert.strictEqual(echoTools._tag, "UnsupportedOperation")
      assert.strictEqual((echoTools as { operation?: string }).operation, "tools")
      assert.include(echoTools.message, "profile echo (echo) cannot run tools")

      const echo = yield* rt.createWorker({ display_name: "offline" })
      assert.deepStrictEqual(echo.worker.engine, { profile: "echo", provider: "echo" })
      const created = yield* rt.createWorker({ display_name: "gpt", engine: { profile: "llm" } })
      assert.deepStrictEqual(created.worker.engine, { profile: "llm", provider: "openai-chat", model: "gpt-test" })
    }))

  it.scopedLive("a profile whose key cannot be read is not ready until the key appears", () =>
    Effect.gen(function*() {
      const dir = yield* H.tempDir
      const keyFile = join(dir, "later")
      const fake = yield* Fakes.make("chat")
      const rt = yield* H.runtime({
        fake,
        profiles: { "by-file": { api_key: { file: keyFile } }, "by-env": { api_key: { env: "NOT_SET_ANYWHERE" } } }
      })
      const ready = () =>
        Effect.map(rt.summary, (s) => Object.fromEntries(s.capabilities.profiles.map((p) => [p.name, p.ready])))
      assert.deepInclude(yield* ready(), { "llm": true, "by-file": false, "by-env": false, "echo": true })
      const diagnostics = yield* rt.diagnostics()
      const notReady = diagnostics.filter((d) => d.code === "profile_not_ready").map((d) => d.message)
      assert.strictEqual(notReady.length, 2)
      for (const message of notReady) {
        assert.notInclude(message, keyFile)
        assert.notInclude(message, "NOT_SET_ANYWHERE")
      }
      yield* Effect.promise(() => writeFile(keyFile, "sk-late-key\n"))
      assert.deepInclude(yield* ready(), { "by-file": true, "by-env": false })
    }))

  it.scopedLive("a worker without a tool grant is offered no tools", () =>
    Effect.gen(function*() {
      const dir = yield* H.tempDir
      const fake = yield* Fakes.make("chat")
      const rt = yield* H.runtime({ fake })
      fake.script({ kind: "stream", text: ["hi"] })
      const { worker } = yield* rt.createWorker({
        display_name: "Companion",
        engine: { profile: "llm" },
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
      const rt = yield* H.runtime({
        fake,
        profiles: {
          "file": { api_key: { file: keyFile } },
          "unset": { api_key: { env: "NOT_SET_ANYWHERE" } },
          "local": { api_key: undefined }
        }
      })
      fake.script({ kind: "stream", text: ["ok"] })
      const fromFile = yield* rt.createWorker({ display_name: "file", engine: { profile: "file" } })
      assert.strictEqual((yield* H.turn(rt, fromFile.worker.worker_id, "hi")).end.kind, "turn.completed")
      assert.strictEqual(fake.requests[0]!.headers.authorization, "Bearer sk-from-file-123")

      const unset = yield* rt.createWorker({ display_name: "unset", engine: { profile: "unset" } })
      const { end } = yield* H.turn(rt, unset.worker.worker_id, "hi")
      assert.strictEqual(end.kind, "turn.failed")
      const error = end.data.error!
      assert.strictEqual(error.code, "provider_secret_unavailable")
      assert.include(error.message, "NOT_SET_ANYWHERE")
      assert.strictEqual(fake.requests.length, 1)

      const noKey = yield* rt.createWorker({ display_name: "local", engine: { profile: "local" } })
      fake.script({ kind: "stream", text: ["no key needed"] })
      assert.strictEqual((yield* H.turn(rt, noKey.worker.worker_id, "hi")).end.kind, "turn.completed")
      assert.isUndefined(fake.requests[1]!.headers.authorization)
    }))

  it.scopedLive("stops at max_steps and records the turn as step_limit_reached", () =>
    Effect.gen(function*() {
      const dir = yield* H.tempDir
      yield* Effect.promise(() => writeFile(join(dir, "a.txt"), "a"))
      const fake = yield* Fakes.make("chat")
      const rt = yield* H.runtime({ fake })
      const call = (id: string): Fakes.Reply => ({
        kind: "stream",
        calls: [{ id, name: "read_file", args: "{\"path\":\"a.txt\"}" }],
        usage: { input: 5, output: 1 }
      })
      fake.script(call("c1"), call("c2"))
      const { worker } = yield* rt.createWorker({
        display_name: "Looper",
        engine: { profile: "llm", max_steps: 2 },
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
      const rt = yield* H.runtime({ fake, profiles: { budget: { context_budget_tokens: 250 } } })
      const { worker } = yield* rt.createWorker({
        display_name: "Budget",
        engine: { profile: "budget" },
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
      const rt = yield* H.runtime({
        fake,
        profiles: { slow: { request_timeout_ms: 150 } },
        config: { ...H.testConfig, retry: { maxRetries: 1, initialDelayMs: 1, maxDelayMs: 1 } }
      })
      fake.script({ kind: "stream", hang: true }, { kind: "stream", hang: true })
      const { worker } = yield* rt.createWorker({
        display_name: "Slow",
        engine: { profile: "slow" }
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
      const rt = yield* H.runtime({ fake })
      fake.script({
        kind: "status",
        status: 429,
        type: "rate_limit_exceeded",
        message: "quota",
        headers: { "retry-after": "3600" }
      })
      const { worker } = yield* rt.createWorker({ display_name: "Limited", engine: { profile: "llm" } })
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
      const rt = yield* H.runtime({ fake })
      fake.script(
        { kind: "stream", calls: [{ id: "c1", name: "read_file", args: "{\"path\": \"a.t" }] },
        { kind: "stream", text: ["sorry"] },
        { kind: "stream", calls: [{ id: "c2", name: "write_file", args: "{}" }] }
      )
      const { worker } = yield* rt.createWorker({
        display_name: "Sloppy",
        engine: { profile: "llm" },
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
