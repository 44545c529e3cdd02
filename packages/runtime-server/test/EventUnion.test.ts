import { assert, describe, it } from "@effect/vitest"
import { RuntimeEvents } from "@yoi/runtime-api"
import { Domain, EventLog, Ids, layerMemory, Runtime } from "@yoi/worker-runtime"
import { Ajv } from "ajv"
import { Chunk, Effect, Layer, Redacted, Schema, Stream } from "effect"
import { Auth, RuntimeServer } from "../src/index.js"
import { connect, TOKEN } from "./SseTestClient.js"

const serve = () =>
  RuntimeServer.layerTest({ auth: Auth.token(Redacted.make(TOKEN)), docs: false }).pipe(
    Layer.provideMerge(layerMemory({ runtimeId: "rt-union" }))
  )

const at = "2025-01-01T00:00:00.000Z"
const workerId = Ids.WorkerId.make("w_union")
const turnId = Ids.TurnId.make("t_union")
const usage = { input_tokens: 3, output_tokens: 5, cached_tokens: 1 }
const worker: Domain.Worker = {
  runtime_id: Ids.RuntimeId.make("rt-union"),
  worker_id: workerId,
  display_name: "Union",
  display_ref: "Union@rt-union",
  status: "idle",
  engine: { profile: "echo", provider: "echo" },
  tools: [],
  scope: { allow: [{ path: "/srv/repo", access: "write" }], deny: [{ path: "/srv/repo/.git" }] },
  metadata: { team: "a" },
  created_at: at,
  updated_at: at,
  usage: { ...Domain.emptyUsage, last_activity_at: at },
  transcript_length: 0
}
const entry: Domain.TranscriptEntry = {
  worker_id: workerId,
  index: 0,
  entry_id: "e_1",
  turn_id: turnId,
  at,
  data: { _tag: "tool_call", call_id: "c1", name: "read_file", arguments: { path: "/srv/repo/a", lines: [1, null] } }
}
const ended = (outcome: Domain.TurnOutcome): Domain.TurnEnded => ({
  outcome,
  usage,
  reason: outcome,
  ...(outcome === "failed" ? { error: { _tag: "EngineError", code: "http_500", message: "upstream failed" } } : {})
})

/** One `data` for every kind: the type makes this list complete, so a kind added to the union must get a sample. */
const samples: { readonly [K in Domain.EventKind]: Domain.EventOf<K>["data"] } = {
  "worker.created": { worker },
  "worker.status": { status: "running", previous: "idle" },
  "worker.deleted": { worker_id: workerId },
  "turn.started": { input_index: 0, input_id: "i_000001" },
  "input.queued": { input_id: "i_000001", position: 1, queued_at: "2026-01-01T00:00:00.000Z" },
  "input.dequeued": { input_id: "i_000001", reason: "started", turn_id: "t_000001" },
  "turn.delta": { text: "line one\nline \"two\" ✓" },
  "turn.tool_call": { call_id: "c1", name: "read_file", arguments: { path: "/srv/repo/a" } },
  "turn.tool_result": { call_id: "c1", name: "read_file", result: ["a", 1, { b: false }], is_error: false },
  "turn.usage": usage,
  "turn.retry": { attempt: 2, delay_ms: 500, reason: "HTTP 429" },
  "turn.completed": ended("completed"),
  "turn.cancelled": ended("cancelled"),
  "turn.failed": ended("failed"),
  "turn.interrupted": ended("interrupted"),
  "transcript.appended": { entry },
  "runtime.diagnostic": { id: 7, severity: "warning", code: "allocation_not_restored", message: "m", worker_id: workerId },
  "stream.lagged": { resume_cursor: "c1.x", message: "behind" },
  "stream.error": { _tag: "RuntimeUnavailable", message: "the store failed", resume_cursor: "c1.y" },
  "stream.live": { replayed: 3 },
  "stream.bookmark": { resume_cursor: "c1.z" }
}

const draft = <K extends Domain.EventKind>(kind: K): EventLog.EventDraft =>
  ({ worker_id: workerId, turn_id: turnId, kind, data: samples[kind] }) as EventLog.EventDraft

/** The kinds a runtime publishes as log events; `stream.*` end a stream and are written by the SSE layer. */
const logKinds = Domain.EventKind.literals.filter((k) => !k.startsWith("stream."))

describe("the event union on the wire", () => {
  it.scopedLive("every kind round-trips through the real SSE wire: raw frames and the RuntimeEvents client", () =>
    Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const log = yield* EventLog.EventLog
      const start = yield* rt.headCursor
      const marks = ["stream.bookmark", "stream.live"] as const
      const appended = yield* log.append([...logKinds, ...marks, "stream.lagged" as const].map(draft))
      assert.strictEqual(appended.length, Domain.EventKind.literals.length - 1)

      // Raw frames, each decoded with the union (SseTestClient decodes every envelope with it).
      const raw = yield* connect(`/v1/events?cursor=${start}`)
      yield* raw.waitFor(() => raw.all().length >= appended.length, "every kind")
      assert.deepStrictEqual(raw.all().slice(0, appended.length), appended)
      assert.deepStrictEqual(
        raw.items().flatMap((i) => (i._tag === "Event" ? [i.event] : [])).slice(0, appended.length),
        appended.map((e) => e.kind)
      )

      // The SSE client: it consumes `stream.lagged` itself, so it gets every log kind, typed, and with `markers` the
      // position marks too.
      const events = yield* RuntimeEvents.make({ token: Redacted.make(TOKEN) })
      const count = logKinds.length + marks.length
      const got = yield* Stream.runCollect(Stream.take(events.stream({ cursor: start, markers: true }), count))
      assert.deepStrictEqual(Chunk.toArray(got), appended.slice(0, count))
      const first = Chunk.unsafeGet(got, 0)
      assert.strictEqual(first.kind === "worker.created" ? first.data.worker.display_name : first.kind, "Union")
    }).pipe(Effect.provide(serve())))

  it("the exported JSON Schema of the union accepts every encoded kind and an unknown one, and refuses bad data", () => {
    const ajv = new Ajv({ strict: false, allErrors: true })
    const validate = ajv.compile(Domain.runtimeEventJsonSchema())
    const encode = Schema.encodeSync(Domain.RuntimeEvent)
    for (const kind of Domain.EventKind.literals) {
      const event = { cursor: "c1.a", seq: 1, runtime_id: "rt", ...draft(kind), at } as Domain.RuntimeEvent
      assert.isTrue(validate(encode(event)), `${kind}: ${ajv.errorsText(validate.errors)}`)
    }
    assert.isTrue(validate({ cursor: "c", seq: 1, runtime_id: "rt", kind: "worker.renamed", at, data: [1] }))
    assert.isFalse(validate({ cursor: "c", seq: 1, runtime_id: "rt", kind: "turn.delta", at, data: { txt: "x" } }))
  })

  it("a stream.error frame's data (the error alone) decodes with the union's stream.error data schema", () => {
    const data = Schema.decodeUnknownSync(Domain.StreamErrorData)(samples["stream.error"])
    assert.deepStrictEqual(data, samples["stream.error"])
    assert.strictEqual(Domain.EventData["stream.error"], Domain.StreamErrorData)
  })

  it("an unknown future kind decodes as \"other\" with its envelope and data, and encodes back unchanged", () => {
    const wire = {
      cursor: "c1.z",
      seq: 9,
      runtime_id: "rt",
      worker_id: "w_1",
      kind: "worker.renamed",
      at,
      data: { from: "a", to: "b" }
    }
    const decoded = Schema.decodeUnknownSync(Domain.RuntimeEvent)(wire)
    assert.strictEqual(decoded.kind, "other")
    if (decoded.kind === "other") {
      assert.strictEqual(decoded.other_kind, "worker.renamed")
      assert.deepStrictEqual(decoded.data, { from: "a", to: "b" })
    }
    assert.deepStrictEqual(Schema.encodeSync(Domain.RuntimeEvent)(decoded), wire)
    // A known kind with the wrong data is an error, not "other".
    const bad = Schema.decodeUnknownEither(Domain.RuntimeEvent)({ ...wire, kind: "turn.delta", data: { txt: "x" } })
    assert.strictEqual(bad._tag, "Left")
  })
})
