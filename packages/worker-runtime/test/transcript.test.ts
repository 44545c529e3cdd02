import { echo, testPolicy } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream } from "effect"
import { type Domain, Engine } from "@yoi/worker-runtime"
import { eventsSince, fullTranscript, runTurn, textOf, withRuntime } from "./utils.js"

/** An engine that calls a tool mid-turn, so the runtime commits entries before the turn ends. */
const toolUser: Engine.Engine = {
  provider: "tool-user",
  tools: ["read_file"],
  validate: () => Effect.void,
  turn: (context) =>
    Stream.fromIterable<Engine.EngineEvent>([
      { _tag: "TextDelta", text: "let me " },
      { _tag: "TextDelta", text: "look" },
      { _tag: "ToolCall", call_id: "c1", name: "read_file", arguments: { path: "/repo/README.md" } },
      { _tag: "ToolResult", call_id: "c1", name: "read_file", result: "# Readme", is_error: false },
      { _tag: "TextDelta", text: `done: ${context.input}` },
      { _tag: "Usage", input_tokens: 10, output_tokens: 5, cached_tokens: 2 },
      { _tag: "Finish", reason: "stop" }
    ])
}

/** An engine that answers with the history it was given, to show what a turn sees. */
const historian: Engine.Engine = {
  provider: "historian",
  tools: [],
  validate: () => Effect.void,
  turn: (context) =>
    Stream.fromEffect(context.history(3)).pipe(
      Stream.map((history): Engine.EngineEvent => ({
        _tag: "TextDelta",
        text: JSON.stringify(history.map((e) => [e.index, textOf(e) ?? e.data._tag]))
      }))
    )
}

describe("transcript pages", () => {
  it.effect("pages through every entry in order with page tokens", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "Pager" })
        for (let i = 0; i < 6; i++) yield* runTurn(rt, worker.worker_id, `message ${i}`)
        const sizes: Array<number> = []
        const items: Array<Domain.TranscriptEntry> = []
        let token: string | undefined
        do {
          const query = token === undefined ? { limit: 5 } : { limit: 5, page_token: token }
          const page = yield* rt.transcript(worker.worker_id, query)
          sizes.push(page.items.length)
          items.push(...page.items)
          token = page.next_page_token
          assert.strictEqual(page.cursor, yield* rt.headCursor)
        } while (token !== undefined)
        assert.deepStrictEqual(sizes, [5, 5, 2])
        assert.deepStrictEqual(items.map((e) => e.index), Array.from({ length: 12 }, (_, i) => i))
        assert.strictEqual(new Set(items.map((e) => e.entry_id)).size, 12)
        assert.deepStrictEqual(items.map(textOf), Array.from({ length: 12 }, (_, i) => `message ${Math.floor(i / 2)}`))
        for (let i = 0; i < 12; i += 2) assert.strictEqual(items[i]!.turn_id, items[i + 1]!.turn_id)
        const whole = yield* rt.transcript(worker.worker_id, { limit: 500 })
        assert.deepStrictEqual(whole.items, items)
        assert.isUndefined(whole.next_page_token)
        const exact = yield* rt.transcript(worker.worker_id, { limit: 12 })
        assert.isUndefined(exact.next_page_token)
        const defaults = yield* rt.transcript(worker.worker_id)
        assert.strictEqual(defaults.items.length, 12)
      })))

  it.effect("the entries of transcript.appended events are the transcript's entries", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "W" })
        const before = yield* rt.headCursor
        yield* runTurn(rt, worker.worker_id, "first")
        yield* runTurn(rt, worker.worker_id, "second")
        const appended = (yield* eventsSince(rt, before))
          .flatMap((e) => (e.kind === "transcript.appended" ? [e.data.entry] : []))
        assert.deepStrictEqual(appended, (yield* fullTranscript(rt, worker.worker_id)).items)
      })))

  it.effect("commits tool calls and results mid-turn, each after the text streamed before it", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({
          display_name: "Tooler",
          engine: { profile: "tool-user" },
          tools: ["read_file"],
          scope: { allow: [{ path: "/repo", access: "read" }] }
        })
        const before = yield* rt.headCursor
        const { accepted, end } = yield* runTurn(rt, worker.worker_id, "go")
        assert.strictEqual(end.kind, "turn.completed")
        const { items } = yield* fullTranscript(rt, worker.worker_id)
        assert.deepStrictEqual(items.map((e) => e.data), [
          { _tag: "user_input", text: "go" },
          { _tag: "assistant_message", text: "let me look" },
          { _tag: "tool_call", call_id: "c1", name: "read_file", arguments: { path: "/repo/README.md" } },
          { _tag: "tool_result", call_id: "c1", name: "read_file", result: "# Readme", is_error: false },
          { _tag: "assistant_message", text: "done: go" }
        ])
        assert.isTrue(items.every((e) => e.turn_id === accepted.turn_id))
        const kinds = (yield* eventsSince(rt, before)).map((e) => e.kind).filter((k) => k !== "turn.delta")
        assert.deepStrictEqual(kinds, [
          "turn.started",
          "transcript.appended",
          "worker.status",
          "transcript.appended",
          "transcript.appended",
          "turn.tool_call",
          "transcript.appended",
          "turn.tool_result",
          "turn.usage",
          "transcript.appended",
          "turn.completed",
          "worker.status"
        ])
        const usage = (yield* rt.getWorker(worker.worker_id)).usage
        assert.deepStrictEqual([usage.input_tokens, usage.output_tokens, usage.cached_tokens], [10, 5, 2])
      }), { engines: [toolUser], policy: { ...testPolicy, tools: ["read_file"] } }))

  it.effect("tools: one the engine does not offer is InvalidInput, any on an engine without tools UnsupportedOperation", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const unknown = yield* Effect.flip(
          rt.createWorker({ display_name: "T", engine: { profile: "tool-user" }, tools: ["read_file", "rm_rf"] })
        )
        assert.strictEqual(unknown._tag, "InvalidInput")
        if (unknown._tag === "InvalidInput") assert.strictEqual(unknown.field, "tools")
        const none = yield* Effect.flip(rt.createWorker({ display_name: "E", tools: ["read_file"] }))
        assert.strictEqual(none._tag, "UnsupportedOperation")
        if (none._tag === "UnsupportedOperation") assert.strictEqual(none.operation, "tools")
        assert.strictEqual((yield* rt.listWorkers()).items.length, 0)
      }), { engines: [toolUser], policy: { ...testPolicy, tools: ["read_file"] } }))

  it.effect("an engine sees the committed history before its input, newest entries first cut", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "H", engine: { profile: "historian" } })
        yield* runTurn(rt, worker.worker_id, "one")
        yield* runTurn(rt, worker.worker_id, "two")
        yield* runTurn(rt, worker.worker_id, "three")
        const { items } = yield* fullTranscript(rt, worker.worker_id)
        assert.deepStrictEqual(items.filter((e) => e.data._tag === "assistant_message").map(textOf), [
          "[]",
          JSON.stringify([[0, "one"], [1, "[]"]]),
          JSON.stringify([[1, "[]"], [2, "two"], [3, JSON.stringify([[0, "one"], [1, "[]"]])]])
        ])
      }), { engines: [historian] }))
})

describe("list then watch", () => {
  it.effect("a transcript listing plus the events after its cursor is the whole transcript, once", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const { worker } = yield* rt.createWorker({ display_name: "Watched", engine: echo({ chunk_size: 2 }) })
        const other = (yield* rt.createWorker({ display_name: "Noise" })).worker.worker_id
        const producer = yield* Effect.fork(Effect.all([
          Effect.forEach(Array.from({ length: 15 }, (_, i) => i), (i) => runTurn(rt, worker.worker_id, `turn ${i}`)),
          Effect.forEach(Array.from({ length: 15 }, (_, i) => i), (i) => runTurn(rt, other, `noise ${i}`))
        ], { concurrency: "unbounded" }))
        const watchers: Array<{
          listed: ReadonlyArray<Domain.TranscriptEntry>
          fiber: Fiber.Fiber<Array<Domain.RuntimeEvent>, unknown>
        }> = []
        for (let round = 0; round < 8; round++) {
          for (let i = 0; i < round * 9; i++) yield* Effect.yieldNow()
          const { items, cursor } = yield* fullTranscript(rt, worker.worker_id, 3)
          const stream = yield* rt.subscribe({ cursor, worker_id: worker.worker_id })
          const fiber = yield* Effect.fork(stream.pipe(
            Stream.takeUntil((e) => e.kind === "worker.status" && e.data.status === "stopped"),
            Stream.runCollect,
            Effect.map(Chunk.toArray)
          ))
          watchers.push({ listed: items, fiber })
        }
        yield* Fiber.join(producer)
        yield* rt.stop(worker.worker_id)
        const truth = (yield* fullTranscript(rt, worker.worker_id)).items
        assert.strictEqual(truth.length, 30)
        const listedSizes = new Set<number>()
        for (const { listed, fiber } of watchers) {
          const events = yield* Fiber.join(fiber)
          const watched = events
            .flatMap((e) => (e.kind === "transcript.appended" ? [e.data.entry] : []))
          assert.deepStrictEqual([...listed, ...watched], truth)
          listedSizes.add(listed.length)
        }
        assert.isAbove(listedSizes.size, 1, "every listing happened at the same point; the test proves little")
      }).pipe(Effect.scoped), { subscriberBuffer: 100_000 }))
})
