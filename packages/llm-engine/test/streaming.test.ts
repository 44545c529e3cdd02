import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fakes from "./fakes.js"
import * as H from "./harness.js"

const protocols: ReadonlyArray<Fakes.Protocol> = ["chat", "responses", "anthropic"]

for (const protocol of protocols) {
  describe(`${H.provider[protocol]} engine`, () => {
    it.scopedLive("streams text deltas, commits the assistant message and adds usage to the totals", () =>
      Effect.gen(function*() {
        const fake = yield* Fakes.make(protocol)
        const rt = yield* H.runtime({ fake })
        fake.script({ kind: "stream", text: ["Hello", ", ", "world"], usage: { input: 21, output: 3, cached: 8, cacheWrite: 2 } })
        const { worker } = yield* rt.createWorker({
          display_name: "Companion",
          engine: { profile: "llm", temperature: 0.2, max_output_tokens: 256 },
          system_prompt: "Be brief."
        })
        const { end, turnEvents } = yield* H.turn(rt, worker.worker_id, "Say hello")

        assert.strictEqual(end.kind, "turn.completed")
        const deltas = turnEvents.flatMap((e) => (e.kind === "turn.delta" ? [e.data.text] : []))
        assert.deepStrictEqual(deltas, ["Hello", ", ", "world"])
        const usage = turnEvents.filter((e) => e.kind === "turn.usage").map((e) => e.data)
        assert.deepStrictEqual(usage, [{ input_tokens: 21, output_tokens: 3, cached_tokens: 8 }])

        const entries = yield* H.transcript(rt, worker.worker_id)
        assert.deepStrictEqual(entries, [
          { _tag: "user_input", text: "Say hello" },
          { _tag: "assistant_message", text: "Hello, world" }
        ])
        const detail = yield* rt.getWorker(worker.worker_id)
        assert.deepStrictEqual(
          { input: detail.usage.input_tokens, output: detail.usage.output_tokens, cached: detail.usage.cached_tokens },
          { input: 21, output: 3, cached: 8 }
        )
        const summary = yield* rt.summary
        assert.strictEqual(summary.usage.input_tokens, 21)
        assert.strictEqual(summary.usage.output_tokens, 3)

        const request = fake.requests[0]!
        assert.strictEqual(request.path, H.endpoint[protocol])
        if (protocol === "anthropic") assert.strictEqual(request.headers["x-api-key"], H.KEY)
        else assert.strictEqual(request.headers.authorization, `Bearer ${H.KEY}`)
        assert.strictEqual(request.body.stream, true)
        assert.strictEqual(request.body.model, H.specFor(fake).model)
        assert.strictEqual(request.body.temperature, 0.2)
        const limit = { chat: "max_tokens", responses: "max_output_tokens", anthropic: "max_tokens" }[protocol]
        assert.strictEqual(request.body[limit], 256)
        if (protocol === "chat") assert.deepStrictEqual(request.body.stream_options, { include_usage: true })
        assert.include(JSON.stringify(request.body), "Be brief.")
        assert.include(JSON.stringify(request.body), "Say hello")
      }))
  })
}
