import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { join } from "node:path"
import { Cursor, type Domain, Ids, WorkerStore } from "@yoi/worker-runtime"
import { layerWorkerStore, SCHEMA_VERSION, SEQ_GAP_AFTER_CRASH } from "@yoi/worker-runtime/sqlite"
import { tempDir } from "./fixtures/sqlite.js"

const at = "2025-01-02T03:04:05.000Z"
const wid = (s: string) => Ids.WorkerId.make(s)
const tid = (s: string) => Ids.TurnId.make(s)

const record = (id: string, patch: Partial<Domain.WorkerRecord> = {}): Domain.WorkerRecord => ({
  worker_id: wid(id),
  spec: {
    worker_id: wid(id),
    display_name: `Worker ${id}`,
    engine: { profile: "llama", temperature: 0.5, max_steps: 4 },
    system_prompt: "be brief",
    tools: ["read_file"],
    scope: { allow: [{ path: "/repo", access: "write" }], deny: [{ path: "/repo/.git" }] },
    metadata: { team: "a" }
  },
  status: "idle",
  created_at: at,
  updated_at: at,
  current_turn_id: undefined,
  last_turn: undefined,
  usage: { input_tokens: 0, output_tokens: 0, cached_tokens: 0, turns: 0 },
  transcript_length: 0,
  revision: 1,
  ...patch
})

const entry = (
  worker: string,
  index: number,
  data: Domain.TranscriptEntryData,
  turn?: string
): Domain.TranscriptEntry => ({
  worker_id: wid(worker),
  index,
  entry_id: `e_${worker}_${index}`,
  ...(turn === undefined ? {} : { turn_id: tid(turn) }),
  at,
  data
})

const everyEntryKind: ReadonlyArray<Domain.TranscriptEntryData> = [
  { _tag: "user_input", text: "hello ✓ \u0000 \"quoted\"" },
  { _tag: "assistant_message", text: "partial answer", partial: true },
  { _tag: "tool_call", call_id: "c1", name: "read_file", arguments: { path: "/repo/a", lines: [1, 2], deep: { x: null } } },
  { _tag: "tool_result", call_id: "c1", name: "read_file", result: "contents", is_error: false },
  { _tag: "notice", code: "turn_failed", message: "boom", error: { _tag: "EngineError", code: "http_500", message: "x" } },
  { _tag: "assistant_message", text: "done" }
]

const event = <K extends Domain.EventKind>(
  epoch: string,
  seq: number,
  kind: K,
  data: Domain.EventOf<K>["data"],
  worker?: string
): Domain.RuntimeEvent =>
  ({
    cursor: Cursor.encode(epoch, seq),
    seq,
    runtime_id: "alpha",
    ...(worker === undefined ? {} : { worker_id: worker, turn_id: `t_${seq}` }),
    kind,
    at,
    data
  }) as Domain.RuntimeEvent

const usage = (n: number) => ({ input_tokens: n, output_tokens: 2 * n, cached_tokens: 0 })

/** Runs `f` with a store on `filename`, closed when `f` ends. */
const withStore = <A, E>(
  filename: string,
  f: (store: WorkerStore.WorkerStoreService) => Effect.Effect<A, E>,
  eventRetention?: number
) =>
  Effect.scoped(Effect.flatMap(WorkerStore.WorkerStore, f).pipe(
    Effect.provide(layerWorkerStore({ filename, eventRetention, synchronous: "normal" }))
  ))

describe("SqliteStore", () => {
  it.scoped("a store has one writer: a second instance is refused while the first holds its lease", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "store.db")
      const first = yield* Layer.build(layerWorkerStore({ filename }))
      assert.strictEqual((yield* WorkerStore.WorkerStore.pipe(Effect.provide(first))).kind, "sqlite")
      const error = yield* Effect.flip(withStore(filename, (store) => store.meta))
      assert.strictEqual(error._tag, "StoreLocked")
      assert.include(error.message, `pid ${process.pid}`)
      assert.include(error.message, "one writer at a time")
    }))
})
