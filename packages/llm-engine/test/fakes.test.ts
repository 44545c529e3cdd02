import { AnthropicClient } from "@effect/ai-anthropic"
import { OpenAiClient } from "@effect/ai-openai"
import { assert, describe, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as Fakes from "./fakes.js"

// The fakes are only worth something if they speak the wire protocols exactly: check every frame they send against
// the provider clients' own stream schemas (the OpenAI client silently skips frames it cannot decode).
describe("fake provider servers", () => {
  const reply: Extract<Fakes.Reply, { kind: "stream" }> = {
    kind: "stream",
    text: ["Hel", "lo"],
    calls: [{ id: "call_1", name: "read_file", args: "{\"path\":\"a.txt\"}" }],
    usage: { input: 12, output: 7, cached: 4 }
  }

  it("sends OpenAI Responses events the OpenAI client decodes", () => {
    const decode = Schema.decodeUnknownEither(OpenAiClient.ResponseStreamEvent)
    const frames = Fakes.frames("responses", reply)
    for (const frame of frames) {
      const decoded = decode(frame.data)
      assert.isTrue(Either.isRight(decoded), `${frame.event}: ${Either.isLeft(decoded) ? decoded.left.message : ""}`)
      assert.strictEqual((frame.data as { type: string }).type, frame.event)
    }
    assert.include(frames.map((f) => f.event), "response.completed")
  })

  it("sends Anthropic Messages events the Anthropic client decodes", () => {
    const decode = Schema.decodeUnknownEither(AnthropicClient.MessageStreamEvent)
    const frames = Fakes.frames("anthropic", reply)
    for (const frame of frames) {
      const decoded = decode(frame.data)
      assert.isTrue(Either.isRight(decoded), `${frame.event}: ${Either.isLeft(decoded) ? decoded.left.message : ""}`)
    }
    assert.deepStrictEqual(frames.map((f) => f.event).slice(-2), ["message_delta", "message_stop"])
  })

  it("sends Chat Completions chunks ending in [DONE] with usage in the last chunk", () => {
    const frames = Fakes.frames("chat", reply)
    assert.strictEqual(frames[frames.length - 1]!.data, "[DONE]")
    const usage = frames[frames.length - 2]!.data as { choices: Array<unknown>; usage: { prompt_tokens: number } }
    assert.deepStrictEqual(usage.choices, [])
    assert.strictEqual(usage.usage.prompt_tokens, 12)
  })
})
