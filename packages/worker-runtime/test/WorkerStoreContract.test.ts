import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { Cursor, type Domain, Ids, WorkerStore } from "@yoi/worker-runtime"
import { SCHEMA_VERSION, SEQ_GAP_AFTER_CRASH } from "@yoi/worker-runtime/sqlite"
import * as Pg from "@yoi/worker-runtime/pg"
import { allStores, durableStores, type StoreKind } from "./fixtures/stores.js"

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

/** Runs `f` with a store of `kind` at `place`, closed when `f` ends. */
const withStore = <A, E>(
  kind: StoreKind,
  place: string,
  f: (store: WorkerStore.WorkerStoreService) => Effect.Effect<A, E>,
  eventRetention?: number
) =>
  Effect.scoped(Effect.flatMap(WorkerStore.WorkerStore, f).pipe(
    Effect.provide(kind.storage(place, { eventRetention }))
  ))

describe.each(durableStores)("WorkerStore contract, durable: $name", (kind) => {
  const schemaVersion = kind.name === "postgres" ? Pg.SCHEMA_VERSION : SCHEMA_VERSION

  it.scoped("round-trips every record type across a reopen", () =>
    Effect.gen(function*() {
      const filename = yield* kind.place
      const idle = record("w-idle")
      const running = record("w-running", {
        status: "running",
        current_turn_id: tid("t_2"),
        last_turn: { turn_id: tid("t_1"), outcome: "completed", ended_at: at },
        usage: { input_tokens: 12, output_tokens: 34, cached_tokens: 5, turns: 1, last_activity_at: at },
        transcript_length: everyEntryKind.length,
        revision: 7
      })
      const stopped = record("w-stopped", { status: "stopped", spec: { worker_id: wid("w-stopped"), display_name: "S" } })
      const doomed = record("w-doomed")
      const entries = everyEntryKind.map((d, i) => entry("w-running", i, d, i === 0 ? undefined : "t_2"))
      const first = yield* withStore(kind, filename, (store) =>
        Effect.gen(function*() {
          const meta = yield* store.meta
          assert.strictEqual(store.kind, kind.name)
          assert.isTrue(store.durable)
          assert.strictEqual(meta.lastSeq, 0)
          assert.match(meta.epoch, /^[0-9a-z]{16}$/)
          const events = [
            event(meta.epoch, 1, "worker.status", { status: "idle", previous: "stopped" }, "w-idle"),
            event(meta.epoch, 3, "transcript.appended", { entry: entries[2]! }, "w-running"),
            event(meta.epoch, 4, "turn.tool_call", {
              call_id: "c1",
              name: "read_file",
              arguments: { nested: [1, "two", { three: true }] }
            })
          ]
          yield* store.commit({ workers: [idle, running, stopped, doomed], transcript: entries, events })
          yield* store.commit({ deleted: [doomed.worker_id] })
          yield* store.addDiagnostic({ severity: "warning", code: "first", message: "one", worker_id: "w-idle" })
          const second = yield* store.addDiagnostic({ severity: "info", code: "second", message: "two" })
          assert.deepStrictEqual(yield* store.eventsAfter(0, 10), events)
          return { meta, events, second }
        }))
      yield* withStore(kind, filename, (store) =>
        Effect.gen(function*() {
          const meta = yield* store.meta
          // w-running was running when the store closed, so this life's seqs start past the crash gap.
          assert.deepStrictEqual(meta, { epoch: first.meta.epoch, lastSeq: 4 + SEQ_GAP_AFTER_CRASH })
          const loaded = [...(yield* store.loadWorkers)].sort((a, b) => a.worker_id.localeCompare(b.worker_id))
          assert.deepStrictEqual(loaded, [idle, running, stopped])
          assert.deepStrictEqual(yield* store.transcript(wid("w-running"), 0, 100), entries)
          assert.deepStrictEqual(yield* store.transcript(wid("w-running"), 2, 2), entries.slice(2, 4))
          assert.deepStrictEqual(yield* store.transcript(wid("w-doomed"), 0, 100), [])
          assert.deepStrictEqual(yield* store.eventsAfter(0, 10), first.events)
          assert.deepStrictEqual(yield* store.eventsAfter(3, 10), first.events.slice(2))
          assert.deepStrictEqual(yield* store.eventsRetainedFrom, Option.some(1))
          const diagnostics = yield* store.diagnostics(10)
          assert.deepStrictEqual(diagnostics.map((d) => d.code), ["second", "first"])
          assert.deepStrictEqual(diagnostics[0], first.second)
          assert.strictEqual(diagnostics[1]!.worker_id, "w-idle")
        }))
    }))

  it.scoped("a running worker at open means a crashed life: seq continues past the gap for unpersisted deltas", () =>
    Effect.gen(function*() {
      const filename = yield* kind.place
      const epoch = yield* withStore(kind, filename, (store) =>
        Effect.gen(function*() {
          const { epoch } = yield* store.meta
          yield* store.commit({
            workers: [record("w1", { status: "running", current_turn_id: tid("t_1") })],
            events: [event(epoch, 10, "turn.started", { input_index: 0 }, "w1")]
          })
          return epoch
        }))
      const meta = yield* withStore(kind, filename, (store) => store.meta)
      assert.deepStrictEqual(meta, { epoch, lastSeq: 10 + SEQ_GAP_AFTER_CRASH })
    }))

  it.scoped("keeps a bounded window of durable events while the high-water mark never goes down", () =>
    Effect.gen(function*() {
      const filename = yield* kind.place
      yield* withStore(kind, filename, (store) =>
        Effect.gen(function*() {
          const { epoch } = yield* store.meta
          for (let seq = 1; seq <= 200; seq += 4) {
            yield* store.commit({
              events: [1, 2, 3].map((i) => event(epoch, seq + i, "turn.usage", usage(seq + i), "w1"))
            })
          }
        }), 20)
      yield* withStore(kind, filename, (store) =>
        Effect.gen(function*() {
          const meta = yield* store.meta
          assert.strictEqual(meta.lastSeq, 200)
          const from = Option.getOrThrow(yield* store.eventsRetainedFrom)
          assert.isAbove(from, 100)
          const kept = yield* store.eventsAfter(0, 1000)
          assert.isAtLeast(kept.length, 20)
          assert.isAtMost(kept.length, 22)
          assert.isAtLeast(kept[0]!.seq, from)
          assert.strictEqual(kept[kept.length - 1]!.seq, 200)
        }), 20)
    }))

  it.scoped("refuses a store whose schema is newer than the code, saying so", () =>
    Effect.gen(function*() {
      const filename = yield* kind.place
      yield* withStore(kind, filename, (store) => store.meta)
      yield* kind.rawSql(filename, [`UPDATE meta SET schema_version = ${schemaVersion + 1}`])
      const error = yield* Effect.flip(withStore(kind, filename, (store) => store.meta))
      assert.strictEqual(error._tag, "StoreSchemaTooNew")
      assert.include(error.message, `schema version ${schemaVersion + 1}`)
      assert.include(error.message, "newer than this runtime supports")

      const other = yield* kind.place
      yield* withStore(kind, other, (store) => store.meta)
      yield* kind.rawSql(other, [`INSERT INTO yoi_migrations (migration_id, name) VALUES (${schemaVersion + 5}, 'future')`])
      const refused = yield* Effect.flip(withStore(kind, other, (store) => store.meta))
      assert.strictEqual(refused._tag, "StoreSchemaTooNew")
      assert.include(refused.message, `schema version ${schemaVersion + 5}`)
    }))

  it.scoped("a corrupt or unreadable worker row becomes a diagnostic and the other workers load", () =>
    Effect.gen(function*() {
      const filename = yield* kind.place
      yield* withStore(kind, filename, (store) =>
        store.commit({ workers: [record("good"), record("torn"), record("odd"), record("mismatch")] }))
      yield* kind.rawSql(filename, [
        "UPDATE workers SET spec = '{\"worker_id\": \"torn\", \"display_na' WHERE worker_id = 'torn'",
        "UPDATE workers SET status = 'exploded' WHERE worker_id = 'odd'",
        "UPDATE workers SET spec = '{\"worker_id\": \"good\", \"display_name\": \"x\"}' WHERE worker_id = 'mismatch'"
      ])
      yield* withStore(kind, filename, (store) =>
        Effect.gen(function*() {
          const loaded = yield* store.loadWorkers
          assert.deepStrictEqual(loaded.map((w) => w.worker_id), ["good"])
          const diagnostics = yield* store.diagnostics(10)
          assert.deepStrictEqual(
            diagnostics.map((d) => [d.severity, d.code, d.worker_id]).sort(),
            [
              ["error", "corrupt_worker_row", "mismatch"],
              ["error", "corrupt_worker_row", "odd"],
              ["error", "corrupt_worker_row", "torn"]
            ]
          )
          assert.include(diagnostics.find((d) => d.worker_id === "torn")!.message, "spec is not valid JSON")
        }))
    }))

  it.scoped("a row written before profiles loads with its provider's profile; negative counts are corrupt", () =>
    Effect.gen(function*() {
      const filename = yield* kind.place
      yield* withStore(kind, filename, (store) => store.commit({ workers: [record("old"), record("minus")] }))
      yield* kind.rawSql(filename, [
        "UPDATE workers SET spec = '{\"worker_id\": \"old\", \"display_name\": \"Old\", \"engine\": " +
        "{\"provider\": \"openai-compatible\", \"model\": \"m\", \"temperature\": 0.2, \"max_steps\": 3}}' " +
        "WHERE worker_id = 'old'",
        "UPDATE workers SET input_tokens = -4 WHERE worker_id = 'minus'"
      ])
      yield* withStore(kind, filename, (store) =>
        Effect.gen(function*() {
          const loaded = yield* store.loadWorkers
          assert.deepStrictEqual(loaded.map((w) => w.worker_id), ["old"])
          assert.deepStrictEqual(loaded[0]!.spec.engine, { profile: "openai-compatible", temperature: 0.2, max_steps: 3 })
          const diagnostics = yield* store.diagnostics(10)
          assert.deepStrictEqual(diagnostics.map((d) => [d.code, d.worker_id]), [["corrupt_worker_row", "minus"]])
          assert.include(diagnostics[0]!.message, "input_tokens")
        }))
    }))

  it.scoped("a corrupt transcript or event row keeps its place as a notice or diagnostic event", () =>
    Effect.gen(function*() {
      const filename = yield* kind.place
      const epoch = yield* withStore(kind, filename, (store) =>
        Effect.gen(function*() {
          const { epoch } = yield* store.meta
          yield* store.commit({
            workers: [record("w1", { transcript_length: 3 })],
            transcript: [0, 1, 2].map((i) => entry("w1", i, { _tag: "user_input", text: `t${i}` })),
            events: [1, 2, 3, 4].map((seq) => event(epoch, seq, "turn.usage", usage(seq), "w1"))
          })
          return epoch
        }))
      yield* kind.rawSql(filename, [
        "UPDATE transcript SET data = '{\"_tag\": \"user_in' WHERE idx = 1",
        "UPDATE events SET data = 'not json' WHERE seq = 2",
        // JSON, but not the data of its kind: the event union refuses it too.
        "UPDATE events SET data = '{\"n\": 1}' WHERE seq = 3"
      ])
      yield* withStore(kind, filename, (store) =>
        Effect.gen(function*() {
          const items = yield* store.transcript(wid("w1"), 0, 10)
          assert.deepStrictEqual(items.map((e) => e.index), [0, 1, 2])
          assert.strictEqual(items[1]!.data._tag, "notice")
          assert.strictEqual((items[1]!.data as { code: string }).code, "corrupt_transcript_entry")
          assert.deepStrictEqual(items[2]!.data, { _tag: "user_input", text: "t2" })
          const events = yield* store.eventsAfter(0, 10)
          assert.deepStrictEqual(events.map((e) => [e.seq, e.kind]), [
            [1, "turn.usage"],
            [2, "runtime.diagnostic"],
            [3, "runtime.diagnostic"],
            [4, "turn.usage"]
          ])
          assert.strictEqual(events[1]!.cursor, Cursor.encode(epoch, 2))
          const codes = events.map((e) => (e.kind === "runtime.diagnostic" ? e.data.code : e.kind))
          assert.deepStrictEqual(codes, ["turn.usage", "corrupt_event_row", "corrupt_event_row", "turn.usage"])
        }))
    }))

  it.scoped("keeps the newest diagnostics only, newest first", () =>
    Effect.gen(function*() {
      const filename = yield* kind.place
      yield* withStore(kind, filename, (store) =>
        Effect.gen(function*() {
          for (let i = 0; i < 1010; i++) yield* store.addDiagnostic({ severity: "info", code: `d${i}`, message: "m" })
          const all = yield* store.diagnostics(5000)
          assert.strictEqual(all.length, 1000)
          assert.strictEqual(all[0]!.code, "d1009")
          assert.strictEqual(all[999]!.code, "d10")
        }))
    }))
})

describe.each(allStores)("WorkerStore contract, one life: $name", (kind) => {
  it.scoped("commits records, transcript pages and diagnostics atomically and reads them back", () =>
    Effect.gen(function*() {
      const place = yield* kind.place
      yield* withStore(kind, place, (store) =>
        Effect.gen(function*() {
          assert.strictEqual(store.kind, kind.name)
          assert.strictEqual(store.durable, kind.durable)
          assert.deepStrictEqual(yield* store.loadWorkers, [])
          const entries = everyEntryKind.map((d, i) => entry("w1", i, d, "t_1"))
          yield* store.commit({
            workers: [record("w1", { transcript_length: entries.length }), record("w2"), record("w3")],
            transcript: entries
          })
          yield* store.commit({ workers: [record("w2", { status: "stopped", revision: 2 })], deleted: [wid("w3")] })
          const loaded = [...(yield* store.loadWorkers)].sort((a, b) => a.worker_id.localeCompare(b.worker_id))
          assert.deepStrictEqual(loaded.map((w) => [w.worker_id, w.status, w.revision]), [
            ["w1", "idle", 1],
            ["w2", "stopped", 2]
          ])
          assert.deepStrictEqual(yield* store.transcript(wid("w1"), 0, 100), entries)
          assert.deepStrictEqual(yield* store.transcript(wid("w1"), 4, 10), entries.slice(4))
          assert.deepStrictEqual(yield* store.transcript(wid("w3"), 0, 10), [])
          const first = yield* store.addDiagnostic({ severity: "warning", code: "a", message: "one", worker_id: "w1" })
          const second = yield* store.addDiagnostic({ severity: "info", code: "b", message: "two" })
          assert.isAbove(second.id, first.id)
          assert.deepStrictEqual(yield* store.diagnostics(10), [second, first])
          assert.deepStrictEqual(yield* store.diagnostics(1), [second])
        }))
    }))
})
