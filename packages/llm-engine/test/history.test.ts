import { assert, describe, it } from "@effect/vitest"
import type { Domain } from "@yoi/worker-runtime"
import * as History from "../src/History.js"

const entries = (datas: ReadonlyArray<Domain.TranscriptEntryData>): Array<Domain.TranscriptEntry> =>
  datas.map((data, index) => ({
    worker_id: "w_1" as Domain.TranscriptEntry["worker_id"],
    index,
    entry_id: `e${index}`,
    at: "2025-01-01T00:00:00.000Z",
    data
  }))

const roles = (built: History.Built) => built.prompt.content.map((m) => m.role)

describe("prompt history", () => {
  it("keeps system prompt, user inputs, assistant messages and paired tool calls in order", () => {
    const built = History.build({
      systemPrompt: "sys",
      history: entries([
        { _tag: "user_input", text: "read a" },
        { _tag: "assistant_message", text: "looking" },
        { _tag: "tool_call", call_id: "c1", name: "read_file", arguments: { path: "a" } },
        { _tag: "tool_result", call_id: "c1", name: "read_file", result: { content: "A" }, is_error: false },
        { _tag: "assistant_message", text: "it is A" },
        { _tag: "notice", code: "turn_failed", message: "x" }
      ]),
      input: "thanks",
      budgetTokens: 10_000
    })
    assert.deepStrictEqual(roles(built), ["system", "user", "assistant", "tool", "assistant", "user"])
    const assistant = built.prompt.content[2]!
    assert.deepStrictEqual(assistant.role === "assistant" ? assistant.content.map((p) => p.type) : [], ["text", "tool-call"])
    assert.strictEqual(built.omitted, 1)
  })

  it("drops tool calls without results (a cancelled turn) and results without calls", () => {
    const built = History.build({
      systemPrompt: undefined,
      history: entries([
        { _tag: "user_input", text: "go" },
        { _tag: "tool_call", call_id: "c1", name: "list_dir", arguments: {} },
        { _tag: "assistant_message", text: "partial", partial: true },
        { _tag: "tool_result", call_id: "c9", name: "list_dir", result: {}, is_error: false }
      ]),
      input: "again",
      budgetTokens: 10_000
    })
    assert.deepStrictEqual(roles(built), ["user", "assistant", "user"])
    assert.strictEqual(built.omitted, 2)
  })

  it("keeps only the newest entries that fit the budget, starting at a user input", () => {
    const long = (tag: string) => `${tag} ${"x".repeat(396)}` // about 100 tokens
    const built = History.build({
      systemPrompt: "sys",
      history: entries([
        { _tag: "user_input", text: long("one") },
        { _tag: "assistant_message", text: "ok one" },
        { _tag: "user_input", text: long("two") },
        { _tag: "assistant_message", text: "ok two" }
      ]),
      input: long("three"),
      budgetTokens: 250
    })
    const text = JSON.stringify(built.prompt.content)
    assert.notInclude(text, "one x")
    assert.include(text, "two x")
    assert.include(text, "three x")
    assert.deepStrictEqual(roles(built), ["system", "user", "assistant", "user"])
  })

  it("always sends the input, even over budget", () => {
    const built = History.build({ systemPrompt: undefined, history: [], input: "x".repeat(1000), budgetTokens: 1 })
    assert.deepStrictEqual(roles(built), ["user"])
  })
})
