import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule, Stream } from "effect"
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import * as Fakes from "./fakes.js"
import * as H from "./harness.js"

const protocols: ReadonlyArray<Fakes.Protocol> = ["chat", "responses", "anthropic"]

/** The tool results a follow-up request carries, in each protocol's own shape. */
const toolResultsSent = (protocol: Fakes.Protocol, body: any): Array<{ id: string; content: string }> => {
  switch (protocol) {
    case "chat":
      return body.messages.filter((m: any) => m.role === "tool").map((m: any) => ({ id: m.tool_call_id, content: m.content }))
    case "responses":
      return body.input.filter((i: any) => i.type === "function_call_output").map((i: any) => ({ id: i.call_id, content: i.output }))
    case "anthropic":
      return body.messages.flatMap((m: any) =>
        Array.isArray(m.content)
          ? m.content.filter((c: any) => c.type === "tool_result").map((c: any) => ({ id: c.tool_use_id, content: c.content }))
          : []
      )
  }
}

const toolNamesOffered = (protocol: Fakes.Protocol, body: any): Array<string> =>
  (body.tools ?? []).map((t: any) => (protocol === "chat" ? t.function.name : t.name)).sort()

const stringify = (u: unknown) => JSON.stringify(u)

for (const protocol of protocols) {
  describe(`${H.provider[protocol]} engine: tool loop, retries and failures`, () => {
    it.scopedLive("runs a tool call split across deltas and parallel calls, and sends the results back", () =>
      Effect.gen(function*() {
        const dir = yield* H.tempDir
        yield* Effect.promise(async () => {
          await writeFile(join(dir, "a.txt"), "alpha")
          await mkdir(join(dir, "sub"))
        })
        const fake = yield* Fakes.make(protocol)
        const rt = yield* H.runtime({ fake })
        fake.script(
          {
            kind: "stream",
            text: ["Let me look."],
            calls: [
              { id: "call_a", name: "read_file", args: "{\"path\": \"a.txt\"}", pieces: 5 },
              { id: "call_b", name: "list_dir", args: "{\"path\": \".\"}" }
            ],
            usage: { input: 30, output: 10 }
          },
          { kind: "stream", text: ["It says alpha."], usage: { input: 50, output: 4 } }
        )
        const { worker } = yield* rt.createWorker({
          display_name: "Coder",
          engine: { profile: "llm" },
          tools: ["read_file", "list_dir"],
          scope: { allow: [{ path: dir, access: "write" }] }
        })
        const { end, turnEvents } = yield* H.turn(rt, worker.worker_id, "What is in a.txt?")
        assert.strictEqual(end.kind, "turn.completed", stringify(end.data))

        const entries = yield* H.transcript(rt, worker.worker_id)
        assert.deepStrictEqual(entries.map((e) => e._tag), [
          "user_input",
          "assistant_message",
          "tool_call",
          "tool_result",
          "tool_call",
          "tool_result",
          "assistant_message"
        ])
        assert.deepStrictEqual(entries[2], { _tag: "tool_call", call_id: "call_a", name: "read_file", arguments: { path: "a.txt" } })
        const read = entries[3] as { result: any; is_error: boolean }
        assert.isFalse(read.is_error)
        assert.strictEqual(read.result.content, "alpha")
        assert.strictEqual(read.result.path, join(dir, "a.txt"))
        const listed = entries[5] as { result: any; is_error: boolean }
        assert.deepStrictEqual(listed.result.entries, [{ name: "a.txt", type: "file" }, { name: "sub", type: "dir" }])
        assert.deepStrictEqual(entries[6], { _tag: "assistant_message", text: "It says alpha." })
        assert.deepStrictEqual(
          turnEvents.filter((e) => e.kind === "turn.tool_call").flatMap((e) => (e.kind === "turn.tool_call" ? [e.data.call_id] : [])),
          ["call_a", "call_b"]
        )

        const detail = yield* rt.getWorker(worker.worker_id)
        assert.strictEqual(detail.usage.input_tokens, 80)
        assert.strictEqual(detail.usage.output_tokens, 14)

        assert.strictEqual(fake.requests.length, 2)
        assert.deepStrictEqual(toolNamesOffered(protocol, fake.requests[0]!.body), ["list_dir", "read_file"])
        const sent = toolResultsSent(protocol, fake.requests[1]!.body)
        assert.deepStrictEqual(sent.map((r) => r.id), ["call_a", "call_b"])
        assert.include(sent[0]!.content, "alpha")
      }))

    it.scopedLive("returns an escape attempt to the model as a typed tool error", () =>
      Effect.gen(function*() {
        const dir = yield* H.tempDir
        const fake = yield* Fakes.make(protocol)
        const rt = yield* H.runtime({ fake })
        fake.script(
          { kind: "stream", calls: [{ id: "call_x", name: "read_file", args: "{\"path\": \"../../../etc/passwd\"}" }] },
          { kind: "stream", text: ["I may not read that."] }
        )
        const { worker } = yield* rt.createWorker({
          display_name: "Coder",
          engine: { profile: "llm" },
          tools: ["read_file"],
          scope: { allow: [{ path: dir, access: "read" }] }
        })
        const { end } = yield* H.turn(rt, worker.worker_id, "Read /etc/passwd")
        assert.strictEqual(end.kind, "turn.completed")
        const entries = yield* H.transcript(rt, worker.worker_id)
        const result = entries.find((e) => e._tag === "tool_result") as { result: any; is_error: boolean }
        assert.isTrue(result.is_error)
        assert.strictEqual(result.result._tag, "ToolError")
        assert.strictEqual(result.result.code, "outside_scope")
        const sent = toolResultsSent(protocol, fake.requests[1]!.body)
        assert.include(sent[0]!.content, "outside_scope")
        assert.notInclude(sent[0]!.content, "root:")
      }))

    it.scopedLive("retries a 500 and a 429 (honouring Retry-After) and a connection cut before output", () =>
      Effect.gen(function*() {
        const fake = yield* Fakes.make(protocol)
        const rt = yield* H.runtime({ fake })
        fake.script(
          { kind: "status", status: 500, type: "server_error", message: "internal error" },
          { kind: "status", status: 429, type: "rate_limit_error", message: "slow down", headers: { "retry-after": "1" } },
          { kind: "stream", cut: true },
          { kind: "stream", text: ["Recovered."] }
        )
        const { worker } = yield* rt.createWorker({ display_name: "Companion", engine: { profile: "llm" } })
        const { end, turnEvents } = yield* H.turn(rt, worker.worker_id, "Hi")
        assert.strictEqual(end.kind, "turn.completed", stringify(end.data))
        const retries = turnEvents.flatMap((e) => (e.kind === "turn.retry" ? [e.data] : []))
        assert.deepStrictEqual(retries.map((r) => r.attempt), [1, 2, 3])
        assert.isAtMost(retries[0]!.delay_ms, 20)
        assert.strictEqual(retries[1]!.delay_ms, 1000)
        assert.include(retries[1]!.reason, "429")
        assert.include(retries[2]!.reason, "stream")
        assert.strictEqual(fake.requests.length, 4)
        const entries = yield* H.transcript(rt, worker.worker_id)
        assert.deepStrictEqual(entries[entries.length - 1], { _tag: "assistant_message", text: "Recovered." })
      }))

    it.scopedLive("fails on an error mid-stream after text, keeps the partial answer, and stays usable", () =>
      Effect.gen(function*() {
        const fake = yield* Fakes.make(protocol)
        const rt = yield* H.runtime({ fake })
        fake.script(
          {
            kind: "stream",
            text: ["Partial ", "answer"],
            errorAfterText: { type: protocol === "anthropic" ? "overloaded_error" : "server_error", message: "boom" }
          },
          { kind: "stream", text: ["Second try works."] }
        )
        const { worker } = yield* rt.createWorker({ display_name: "Companion", engine: { profile: "llm" } })
        const first = yield* H.turn(rt, worker.worker_id, "Hi")
        assert.strictEqual(first.end.kind, "turn.failed")
        const error = first.end.data.error!
        assert.strictEqual(error._tag, "EngineError")
        assert.strictEqual(error.code, "provider_unavailable")
        assert.include(error.message, "boom")
        assert.strictEqual(fake.requests.length, 1)
        const entries = yield* H.transcript(rt, worker.worker_id)
        assert.deepStrictEqual(entries[1], { _tag: "assistant_message", text: "Partial answer", partial: true })
        assert.strictEqual(entries[2]!._tag, "notice")

        const second = yield* H.turn(rt, worker.worker_id, "Again")
        assert.strictEqual(second.end.kind, "turn.completed")
        // The failed turn's partial answer went back to the model as history.
        assert.include(stringify(fake.requests[1]!.body), "Partial answer")
      }))

    it.scopedLive("fails a 401 at once with a typed error that never carries the key", () =>
      Effect.gen(function*() {
        const fake = yield* Fakes.make(protocol)
        const rt = yield* H.runtime({ fake })
        fake.script(
          {
            kind: "status",
            status: 401,
            type: protocol === "anthropic" ? "authentication_error" : "invalid_api_key",
            message: `Incorrect API key provided: ${H.KEY}`
          },
          { kind: "status", status: 404, type: "not_found_error", message: "model 'gpt-test' not found" },
          { kind: "status", status: 400, type: "invalid_request_error", message: "messages: at least one message is required" }
        )
        const { worker } = yield* rt.createWorker({ display_name: "Companion", engine: { profile: "llm" } })
        const first = yield* H.turn(rt, worker.worker_id, "Hi")
        assert.strictEqual(first.end.kind, "turn.failed")
        const error = first.end.data.error!
        assert.strictEqual(error.code, "provider_unauthorized")
        assert.include(error.message, "401")
        assert.strictEqual(fake.requests.length, 1)

        const second = yield* H.turn(rt, worker.worker_id, "Hi again")
        const notFound = second.end.data.error!
        assert.strictEqual(notFound.code, "provider_bad_request")
        assert.include(notFound.message, "model 'gpt-test' not found")
        const third = yield* H.turn(rt, worker.worker_id, "And again")
        const badRequest = third.end.data.error!
        assert.strictEqual(badRequest.code, "provider_bad_request")
        assert.include(badRequest.message, "HTTP 400")
        assert.include(badRequest.message, "at least one message is required")
        assert.strictEqual(fake.requests.length, 3)

        const everything = stringify([
          first.events,
          second.events,
          third.events,
          yield* H.transcript(rt, worker.worker_id),
          yield* rt.getWorker(worker.worker_id),
          yield* rt.summary
        ])
        assert.notInclude(everything, H.KEY)
        assert.include(everything, "[redacted]")
        const detail = yield* rt.getWorker(worker.worker_id)
        assert.strictEqual(detail.status, "idle")
        assert.notInclude(stringify(detail), "TEST_LLM_KEY")
      }))

    it.scopedLive("cancel closes the provider connection at once and records the partial answer", () =>
      Effect.gen(function*() {
        const fake = yield* Fakes.make(protocol)
        const rt = yield* H.runtime({ fake })
        fake.script({ kind: "stream", text: ["Thinking", " slowly"], hang: true })
        const { worker } = yield* rt.createWorker({ display_name: "Companion", engine: { profile: "llm" } })
        const accepted = yield* rt.sendInput(worker.worker_id, { text: "Think" })
        yield* Effect.promise(() => fake.hanging())
        // Wait until both deltas reached the runtime, so the partial answer is known.
        yield* Effect.scoped(Effect.gen(function*() {
          const stream = yield* rt.subscribe({ cursor: "earliest", worker_id: worker.worker_id, kinds: ["turn.delta"] })
          yield* Stream.runDrain(Stream.take(stream, 2))
        }))
        const cancelled = yield* rt.cancel(worker.worker_id)
        assert.isTrue(cancelled.cancelled)
        const events = yield* H.awaitTurn(rt, worker.worker_id, accepted.turn_id)
        assert.strictEqual(events[events.length - 1]!.kind, "turn.cancelled")
        const entries = yield* H.transcript(rt, worker.worker_id)
        assert.deepStrictEqual(entries[1], { _tag: "assistant_message", text: "Thinking slowly", partial: true })
        const closed = yield* Effect.sync(() => fake.closedEarly()).pipe(
          Effect.repeat({ until: (n) => n > 0, schedule: Schedule.spaced("10 millis") }),
          Effect.timeout("5 seconds")
        )
        assert.strictEqual(closed, 1)
        assert.strictEqual((yield* rt.getWorker(worker.worker_id)).status, "idle")
      }))
  })
}
