/**
 * The SQLite store, side by side with bare better-sqlite3 in the same run (same schema, same pragmas, same rows):
 *   - committed transcript entries per second through `WorkerStore.commit`, one entry per commit and 100 per
 *     commit, against a prepared INSERT loop of the same rows in transactions of the same size;
 *   - complete echo turns per second through a SQLite runtime, against bare statements writing the same three
 *     commits per turn, and against the in-memory runtime;
 *   - restart time with 10,000 workers and 1,000,000 transcript entries (10 of them crashed mid-turn): a runtime
 *     from open to ready, against a bare open + read + JSON parse of the workers table.
 * Aims: batched commits at least 0.5x the bare rate; a restart ready in under 2 s.
 *
 * Then the PostgreSQL store (`@yoi/worker-runtime/pg`) the same way, against the bare `pg` driver writing the same
 * rows in transactions of the same size (prepared INSERT per row), and its restart (open, take the owner lease,
 * recover, answer) against a bare connect + read + JSON parse of the workers table. The server is
 * `YOI_TEST_PG_URL`, or a throwaway cluster started with scripts/pg.sh.
 *
 *   npx tsx scripts/bench/store.ts [--entries 50000] [--turns 1000] [--rounds 5] [--synchronous normal|full]
 *                                  [--pg-entries 20000] [--pg-rounds 3] [--no-pg]
 */
import { echo, testPolicy } from "@yoi/worker-runtime/testing"
import { type Domain, Ids, layerMemory, Runtime, WorkerStore } from "@yoi/worker-runtime"
import * as Pg from "@yoi/worker-runtime/pg"
import { layerSqlite, layerWorkerStore } from "@yoi/worker-runtime/sqlite"
import { Deferred, Effect, Exit, Layer, Redacted, Stream } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import startPostgres from "../testing/pgGlobalSetup.js"

const { values: args } = parseArgs({
  options: {
    entries: { type: "string", default: "50000" },
    turns: { type: "string", default: "1000" },
    rounds: { type: "string", default: "5" },
    synchronous: { type: "string", default: "normal" },
    "pg-entries": { type: "string", default: "20000" },
    "pg-rounds": { type: "string", default: "3" },
    "no-pg": { type: "boolean", default: false }
  }
})
const PG_ENTRIES = Number(args["pg-entries"])
const PG_ROUNDS = Number(args["pg-rounds"])
const ENTRIES = Number(args.entries)
const TURNS = Number(args.turns)
const ROUNDS = Number(args.rounds)
const SYNC = args.synchronous === "full" ? "full" : "normal"
const TEXT = "the quick brown fox jumps over the lazy dog and keeps on running."

interface Statement {
  run(...params: Array<unknown>): unknown
  all(...params: Array<unknown>): Array<Record<string, unknown>>
}
interface BareDb {
  prepare(sql: string): Statement
  pragma(source: string): unknown
  close(): void
}
const Bare = createRequire(import.meta.url)("better-sqlite3") as new (filename: string) => BareDb

const dir = mkdtempSync(join(tmpdir(), "yoi-bench-store-"))
let fileNo = 0
const freshFile = () => join(dir, `s${++fileNo}.db`)

/** A new store file with the schema made by the store itself, so both sides write the same tables. */
const schemaFile = Effect.gen(function*() {
  const filename = freshFile()
  yield* Effect.scoped(Layer.build(layerWorkerStore({ filename, synchronous: SYNC })))
  return filename
})

const openBare = (filename: string) => {
  const db = new Bare(filename)
  db.pragma("journal_mode = WAL")
  db.pragma(`synchronous = ${SYNC.toUpperCase()}`)
  return db
}

const ENTRY_SQL = "INSERT OR REPLACE INTO transcript (worker_id, idx, entry_id, turn_id, at, data) VALUES (?, ?, ?, ?, ?, ?)"

const makeEntries = (n: number): Array<Domain.TranscriptEntry> => {
  const at = new Date().toISOString()
  return Array.from({ length: n }, (_, i) => ({
    worker_id: Ids.WorkerId.make(`w_${(i % 100).toString().padStart(26, "0")}`),
    index: Math.floor(i / 100),
    entry_id: `e_${i.toString().padStart(26, "0")}`,
    turn_id: Ids.TurnId.make(`t_${Math.floor(i / 2)}`),
    at,
    data: i % 2 === 0 ? { _tag: "user_input", text: `${TEXT} ${i}` } : { _tag: "assistant_message", text: `${TEXT} ${i}` }
  }))
}

const perSecond = (count: number, ms: number) => (count / ms) * 1000

const storeEntries = (entries: ReadonlyArray<Domain.TranscriptEntry>, batch: number) =>
  Effect.gen(function*() {
    const store = yield* WorkerStore.WorkerStore
    const start = performance.now()
    for (let i = 0; i < entries.length; i += batch) yield* store.commit({ transcript: entries.slice(i, i + batch) })
    return perSecond(entries.length, performance.now() - start)
  }).pipe(
    Effect.scoped,
    Effect.provide(Layer.suspend(() => layerWorkerStore({ filename: freshFile(), synchronous: SYNC })))
  )

const bareEntries = (entries: ReadonlyArray<Domain.TranscriptEntry>, batch: number) =>
  Effect.gen(function*() {
    const db = openBare(yield* schemaFile)
    const insert = db.prepare(ENTRY_SQL)
    const begin = db.prepare("BEGIN IMMEDIATE")
    const commit = db.prepare("COMMIT")
    const start = performance.now()
    for (let i = 0; i < entries.length; i += batch) {
      begin.run()
      for (const e of entries.slice(i, i + batch)) {
        insert.run(e.worker_id, e.index, e.entry_id, e.turn_id ?? null, e.at, JSON.stringify(e.data))
      }
      commit.run()
    }
    const rate = perSecond(entries.length, performance.now() - start)
    db.close()
    return rate
  })

const WORKERS = 10

/** Runs `TURNS` echo turns over `WORKERS` workers (each worker's turns back to back) and answers turns/s. */
const runtimeTurns = (layer: Layer.Layer<Runtime.Runtime, unknown>) =>
  Effect.gen(function*() {
    const rt = yield* Runtime.Runtime
    const workers = yield* Effect.forEach(Array.from({ length: WORKERS }, (_, i) => i), (i) =>
      Effect.map(rt.createWorker({ display_name: `bench ${i}` }), (r) => r.worker.worker_id))
    const pending = new Map<string, Deferred.Deferred<void>>()
    const stream = yield* rt.subscribe({ kinds: ["turn.completed"] })
    yield* Effect.forkScoped(Stream.runForEach(stream, (e) =>
      Effect.sync(() => Deferred.unsafeDone(pending.get(e.worker_id!)!, Exit.void))))
    const perWorker = Math.ceil(TURNS / WORKERS)
    const start = performance.now()
    yield* Effect.forEach(workers, (worker) =>
      Effect.gen(function*() {
        for (let t = 0; t < perWorker; t++) {
          const done = yield* Deferred.make<void>()
          pending.set(worker, done)
          yield* rt.sendInput(worker, { text: TEXT })
          yield* Deferred.await(done)
        }
      }), { concurrency: "unbounded", discard: true })
    return perSecond(perWorker * WORKERS, performance.now() - start)
  }).pipe(Effect.scoped, Effect.provide(layer))

/** The rows a runtime commits for one echo turn, in its three transactions, written with bare statements. */
const bareTurns = Effect.gen(function*() {
  const db = openBare(yield* schemaFile)
  const begin = db.prepare("BEGIN IMMEDIATE")
  const commit = db.prepare("COMMIT")
  const worker = db.prepare(
    "INSERT OR REPLACE INTO workers (worker_id, spec, status, created_at, updated_at, current_turn_id, last_turn, " +
      "input_tokens, output_tokens, cached_tokens, turns, last_activity_at, transcript_length, revision) " +
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
  )
  const entry = db.prepare(ENTRY_SQL)
  const event = db.prepare(
    "INSERT INTO events (seq, runtime_id, worker_id, turn_id, kind, at, data) VALUES (?, ?, ?, ?, ?, ?, ?)"
  )
  const meta = db.prepare("UPDATE meta SET last_seq = ? WHERE id = 1")
  const perWorker = Math.ceil(TURNS / WORKERS)
  const spec = JSON.stringify({ worker_id: "w", display_name: "bench" })
  let seq = 0
  const emit = (w: string, t: string | null, kind: string, data: unknown) => {
    seq += 1
    event.run(seq, "bench", w, t, kind, new Date().toISOString(), JSON.stringify(data))
  }
  const start = performance.now()
  for (let t = 0; t < perWorker; t++) {
    for (let w = 0; w < WORKERS; w++) {
      const wid = `w_${w}`
      const turnId = `t_${t}_${w}`
      const at = new Date().toISOString()
      const input = { worker_id: wid, index: 2 * t, entry_id: `e_${t}_${w}`, turn_id: turnId, at, data: { _tag: "user_input", text: TEXT } }
      begin.run()
      worker.run(wid, spec, "running", at, at, turnId, null, 0, 0, 0, t, at, 2 * t + 1, 3 * t + 1)
      entry.run(wid, input.index, input.entry_id, turnId, at, JSON.stringify(input.data))
      emit(wid, turnId, "turn.started", { input_index: input.index })
      emit(wid, turnId, "transcript.appended", { entry: input })
      emit(wid, null, "worker.status", { status: "running", previous: "idle" })
      meta.run(seq)
      commit.run()
      begin.run()
      emit(wid, turnId, "turn.usage", { input_tokens: 13, output_tokens: 13, cached_tokens: 0 })
      meta.run(seq)
      commit.run()
      const reply = { ...input, index: 2 * t + 1, entry_id: `e_${t}_${w}r`, data: { _tag: "assistant_message", text: TEXT } }
      begin.run()
      worker.run(wid, spec, "idle", at, at, null, JSON.stringify({ turn_id: turnId }), 13, 13, 0, t + 1, at, 2 * t + 2, 3 * t + 2)
      entry.run(wid, reply.index, reply.entry_id, turnId, at, JSON.stringify(reply.data))
      emit(wid, turnId, "transcript.appended", { entry: reply })
      emit(wid, turnId, "turn.completed", { outcome: "completed" })
      emit(wid, null, "worker.status", { status: "idle", previous: "running" })
      meta.run(seq)
      commit.run()
    }
  }
  const rate = perSecond(perWorker * WORKERS, performance.now() - start)
  db.close()
  return rate
})

const RESTART_WORKERS = 10_000
const RESTART_ENTRIES = 1_000_000
const RESTART_EVENTS = 100_000

/** A store with 10,000 workers (10 of them left running), 1,000,000 transcript entries and 100,000 events. */
const populate = Effect.gen(function*() {
  const filename = yield* schemaFile
  const db = openBare(filename)
  const begin = db.prepare("BEGIN")
  const commit = db.prepare("COMMIT")
  const at = new Date().toISOString()
  const perWorker = RESTART_ENTRIES / RESTART_WORKERS
  const worker = db.prepare(
    "INSERT INTO workers (worker_id, spec, status, created_at, updated_at, current_turn_id, last_turn, " +
      "input_tokens, output_tokens, cached_tokens, turns, last_activity_at, transcript_length, revision) " +
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
  )
  const entry = db.prepare(ENTRY_SQL)
  const event = db.prepare(
    "INSERT INTO events (seq, runtime_id, worker_id, turn_id, kind, at, data) VALUES (?, ?, ?, ?, ?, ?, ?)"
  )
  begin.run()
  for (let w = 0; w < RESTART_WORKERS; w++) {
    const id = `w_${w.toString().padStart(26, "0")}`
    const running = w % 1000 === 0
    const spec = { worker_id: id, display_name: `Worker ${w}`, engine: echo(), metadata: { team: "bench" } }
    const lastTurn = { turn_id: `t_${w}`, outcome: "completed", ended_at: at }
    worker.run(id, JSON.stringify(spec), running ? "running" : "idle", at, at, running ? `t_run_${w}` : null,
      JSON.stringify(lastTurn), 100, 200, 0, perWorker / 2, at, perWorker, perWorker + 1)
    for (let i = 0; i < perWorker; i++) {
      const data = i % 2 === 0 ? { _tag: "user_input", text: `${TEXT} ${i}` } : { _tag: "assistant_message", text: TEXT }
      entry.run(id, i, `e_${w}_${i}`, `t_${w}_${i >> 1}`, at, JSON.stringify(data))
    }
    if (w % 500 === 499) {
      commit.run()
      begin.run()
    }
  }
  for (let s = 1; s <= RESTART_EVENTS; s++) {
    event.run(s, "bench", "w_0", null, "turn.usage", at, JSON.stringify({ input_tokens: 1, output_tokens: 1 }))
  }
  db.prepare("UPDATE meta SET last_seq = ? WHERE id = 1").run(RESTART_EVENTS)
  commit.run()
  db.close()
  return filename
})

/** Open to ready: the runtime has recovered, answers its summary and lists a first page. */
const restartRuntime = (filename: string) =>
  Effect.gen(function*() {
    const start = performance.now()
    const ms = yield* Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const summary = yield* rt.summary
      yield* rt.listWorkers({ limit: 100 })
      if (summary.counts.total !== RESTART_WORKERS || summary.counts.running !== 0) {
        return yield* Effect.dieMessage(`unexpected counts ${JSON.stringify(summary.counts)}`)
      }
      return performance.now() - start
    }).pipe(Effect.scoped, Effect.provide(layerSqlite({ policy: testPolicy, filename, runtimeId: "bench", synchronous: SYNC })))
    return ms
  })

const bareRestart = (filename: string) =>
  Effect.sync(() => {
    const start = performance.now()
    const db = openBare(filename)
    const rows = db.prepare("SELECT * FROM workers").all()
    const specs = rows.map((row) => JSON.parse(row.spec as string) as { display_name: string })
    const ms = performance.now() - start
    db.close()
    if (specs.length !== RESTART_WORKERS) throw new Error("the bare read missed workers")
    return ms
  })

interface PgQueryable {
  query(text: string | { name: string; text: string; values: Array<unknown> }, values?: Array<unknown>): Promise<{
    rows: Array<Record<string, unknown>>
  }>
  connect(): Promise<void>
  end(): Promise<void>
}
const PgDriver = createRequire(import.meta.url)("pg") as { Client: new (config: { connectionString: string }) => PgQueryable }

let schemaNo = 0
const freshSchema = () => `bench_${process.pid}_${++schemaNo}`

const pgStorage = (url: string, schema: string) =>
  Pg.layerStorage({ url: Redacted.make(url), runtimeId: "bench", schema })

/** A new schema made by the store itself (and given up at once), so both sides write the same tables. */
const pgSchema = (url: string) =>
  Effect.gen(function*() {
    const schema = freshSchema()
    yield* Effect.scoped(Layer.build(pgStorage(url, schema)))
    return schema
  })

const pgStoreEntries = (url: string, entries: ReadonlyArray<Domain.TranscriptEntry>, batch: number) =>
  Effect.gen(function*() {
    const store = yield* WorkerStore.WorkerStore
    const start = performance.now()
    for (let i = 0; i < entries.length; i += batch) yield* store.commit({ transcript: entries.slice(i, i + batch) })
    return perSecond(entries.length, performance.now() - start)
  }).pipe(Effect.scoped, Effect.provide(Layer.suspend(() => pgStorage(url, freshSchema()))))

const pgBareEntries = (url: string, entries: ReadonlyArray<Domain.TranscriptEntry>, batch: number) =>
  Effect.gen(function*() {
    const schema = yield* pgSchema(url)
    return yield* Effect.promise(async () => {
      const client = new PgDriver.Client({ connectionString: url })
      await client.connect()
      const text = `INSERT INTO ${schema}.transcript (worker_id, idx, entry_id, turn_id, at, data) ` +
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (worker_id, idx) DO UPDATE SET entry_id = EXCLUDED.entry_id, " +
        "turn_id = EXCLUDED.turn_id, at = EXCLUDED.at, data = EXCLUDED.data"
      const start = performance.now()
      for (let i = 0; i < entries.length; i += batch) {
        await client.query("BEGIN")
        for (const e of entries.slice(i, i + batch)) {
          await client.query({
            name: `ins_${schema}`,
            text,
            values: [e.worker_id, e.index, e.entry_id, e.turn_id ?? null, e.at, JSON.stringify(e.data)]
          })
        }
        await client.query("COMMIT")
      }
      const rate = perSecond(entries.length, performance.now() - start)
      await client.end()
      return rate
    })
  })

/** The restart population, written server-side (generate_series) so the setup does not dominate the run. */
const pgPopulate = (url: string) =>
  Effect.gen(function*() {
    const schema = yield* pgSchema(url)
    const perWorker = RESTART_ENTRIES / RESTART_WORKERS
    const at = new Date().toISOString()
    const spec = (w: string) =>
      `json_build_object('worker_id', 'w_' || lpad(${w}::text, 26, '0'), 'display_name', 'Worker ' || ${w}, ` +
      "'engine', json_build_object('profile', 'echo'), 'metadata', json_build_object('team', 'bench'))::text"
    yield* Effect.promise(async () => {
      const client = new PgDriver.Client({ connectionString: url })
      await client.connect()
      await client.query(
        `INSERT INTO ${schema}.workers SELECT 'w_' || lpad(w::text, 26, '0'), ${spec("w")}, ` +
          "CASE WHEN w % 1000 = 0 THEN 'running' ELSE 'idle' END, $1, $1, " +
          "CASE WHEN w % 1000 = 0 THEN 't_run_' || w END, " +
          "json_build_object('turn_id', 't_' || w, 'outcome', 'completed', 'ended_at', $1::text)::text, " +
          `100, 200, 0, ${perWorker / 2}, $1, ${perWorker}, ${perWorker + 1} FROM generate_series(0, $2 - 1) AS w`,
        [at, RESTART_WORKERS]
      )
      await client.query(
        `INSERT INTO ${schema}.transcript SELECT 'w_' || lpad(w::text, 26, '0'), i, 'e_' || w || '_' || i, ` +
          "'t_' || w || '_' || (i / 2), $1, CASE WHEN i % 2 = 0 THEN json_build_object('_tag', 'user_input', " +
          "'text', $3::text || ' ' || i)::text ELSE json_build_object('_tag', 'assistant_message', 'text', " +
          `$3::text)::text END FROM generate_series(0, $2 - 1) AS w, generate_series(0, ${perWorker - 1}) AS i`,
        [at, RESTART_WORKERS, TEXT]
      )
      await client.query(
        `INSERT INTO ${schema}.events SELECT s, 'bench', 'w_0', NULL, 'turn.usage', $1, ` +
          "'{\"input_tokens\":1,\"output_tokens\":1,\"cached_tokens\":0}' FROM generate_series(1, $2) AS s",
        [at, RESTART_EVENTS]
      )
      await client.query(`UPDATE ${schema}.meta SET last_seq = $1 WHERE id = 1`, [RESTART_EVENTS])
      await client.query(`ANALYZE ${schema}.workers`)
      await client.end()
    })
    return schema
  })

const pgRestartRuntime = (url: string, schema: string) =>
  Effect.gen(function*() {
    const start = performance.now()
    return yield* Effect.gen(function*() {
      const rt = yield* Runtime.Runtime
      const summary = yield* rt.summary
      yield* rt.listWorkers({ limit: 100 })
      if (summary.counts.total !== RESTART_WORKERS || summary.counts.running !== 0) {
        return yield* Effect.dieMessage(`unexpected counts ${JSON.stringify(summary.counts)}`)
      }
      return performance.now() - start
    }).pipe(
      Effect.scoped,
      Effect.provide(Pg.layerPg({ policy: testPolicy, url: Redacted.make(url), runtimeId: "bench", schema }))
    )
  })

const pgBareRestart = (url: string, schema: string) =>
  Effect.promise(async () => {
    const start = performance.now()
    const client = new PgDriver.Client({ connectionString: url })
    await client.connect()
    const { rows } = await client.query(`SELECT * FROM ${schema}.workers`)
    const specs = rows.map((row) => JSON.parse(row.spec as string) as { display_name: string })
    const ms = performance.now() - start
    await client.end()
    if (specs.length !== RESTART_WORKERS) throw new Error("the bare read missed workers")
    return ms
  })

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits })

interface Paired {
  readonly ours: number
  readonly bare: number
  /** The median of the per-round ratios: each round runs both sides back to back, so load spikes hit both. */
  readonly ratio: number
}

const paired = <E1, E2>(ours: Effect.Effect<number, E1>, bare: Effect.Effect<number, E2>, rounds = ROUNDS) =>
  Effect.gen(function*() {
    const o: Array<number> = []
    const b: Array<number> = []
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        b.push(yield* bare)
        o.push(yield* ours)
      } else {
        o.push(yield* ours)
        b.push(yield* bare)
      }
    }
    return { ours: median(o), bare: median(b), ratio: median(o.map((x, i) => x / b[i]!)) } satisfies Paired
  })

const program = Effect.gen(function*() {
  const rows: Array<ReadonlyArray<string>> = []
  const row = (label: string, m: Paired) => rows.push([label, fmt(m.ours), fmt(m.bare), `${fmt(m.ratio, 2)}x`])

  const entries = makeEntries(ENTRIES)
  const single = entries.slice(0, Math.min(5_000, ENTRIES))
  yield* storeEntries(single.slice(0, 2000), 1)
  yield* bareEntries(single.slice(0, 2000), 1)
  const one = yield* paired(storeEntries(single, 1), bareEntries(single, 1))
  row("entries/s, 1 per commit", one)
  const batched = yield* paired(storeEntries(entries, 100), bareEntries(entries, 100))
  row("entries/s, 100 per commit", batched)

  const sqliteTurns = Effect.suspend(() =>
    runtimeTurns(layerSqlite({ policy: testPolicy, filename: freshFile(), runtimeId: "bench", synchronous: SYNC })))
  row("echo turns/s (3 commits each)", yield* paired(sqliteTurns, bareTurns))
  row("  vs the in-memory runtime", yield* paired(sqliteTurns, runtimeTurns(layerMemory({ policy: testPolicy, runtimeId: "bench" }))))

  const populated = yield* populate
  // The first restart also recovers the 10 running workers; the later ones have nothing to recover.
  const first = yield* restartRuntime(populated)
  const restart = yield* paired(restartRuntime(populated), bareRestart(populated))
  row("restart ms, 10k workers / 1M entries", restart)
  rows.push(["  first restart (recovers 10 turns)", fmt(first), "", ""])

  const table = (header: ReadonlyArray<string>, body: ReadonlyArray<ReadonlyArray<string>>) => {
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)))
    const line = (r: ReadonlyArray<string>) =>
      r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
    console.log(line(header))
    for (const r of body) console.log(line(r))
  }
  console.log(`SQLite store vs bare better-sqlite3 (synchronous=${SYNC}, median of ${ROUNDS} rounds)`)
  console.log("ratio: median of per-round ours/bare; for rates higher is better, for restart ms lower is better\n")
  table(["measure", "sqlite store", "bare sqlite", "ratio"], rows)
  const ready = Math.max(first, restart.ours)
  console.log(`\naim: batched commits >= 0.5x bare: ${batched.ratio >= 0.5 ? "met" : "NOT met"} (${fmt(batched.ratio, 2)}x)`)
  console.log(`aim: restart ready < 2000 ms at 10k workers / 1M entries: ${ready < 2000 ? "met" : "NOT met"} (${fmt(ready)} ms)`)
  if (args["no-pg"]) return

  const stopPostgres = startPostgres()
  yield* Effect.addFinalizer(() => Effect.sync(stopPostgres))
  const url = process.env.YOI_TEST_PG_URL!
  const pgRows: Array<ReadonlyArray<string>> = []
  const pgRow = (label: string, m: Paired, sqlite: number) =>
    pgRows.push([label, fmt(m.ours), fmt(m.bare), `${fmt(m.ratio, 2)}x`, fmt(sqlite)])
  const pgEntries = entries.slice(0, Math.min(PG_ENTRIES, entries.length))
  const pgSingle = pgEntries.slice(0, Math.min(1_000, pgEntries.length))
  yield* pgStoreEntries(url, pgSingle.slice(0, 200), 1)
  yield* pgBareEntries(url, pgSingle.slice(0, 200), 1)
  const pgOne = yield* paired(pgStoreEntries(url, pgSingle, 1), pgBareEntries(url, pgSingle, 1), PG_ROUNDS)
  pgRow("entries/s, 1 per commit", pgOne, one.ours)
  const pgBatched = yield* paired(pgStoreEntries(url, pgEntries, 100), pgBareEntries(url, pgEntries, 100), PG_ROUNDS)
  pgRow("entries/s, 100 per commit", pgBatched, batched.ours)
  const pgPopulated = yield* pgPopulate(url)
  const pgFirst = yield* pgRestartRuntime(url, pgPopulated)
  const pgRestart = yield* paired(pgRestartRuntime(url, pgPopulated), pgBareRestart(url, pgPopulated), PG_ROUNDS)
  pgRow("restart ms, 10k workers / 1M entries", pgRestart, restart.ours)
  pgRows.push(["  first restart (recovers 10 turns)", fmt(pgFirst), "", "", fmt(first)])
  console.log(`\nPostgreSQL store vs bare pg (the same rows; median of ${PG_ROUNDS} rounds; 1-per-commit over ` +
    `${pgSingle.length} entries, batched over ${pgEntries.length}), with the SQLite store beside it`)
  table(["measure", "postgres store", "bare pg", "ratio", "sqlite store"], pgRows)
  const pgReady = Math.max(pgFirst, pgRestart.ours)
  const pgAim = pgBatched.ratio >= 0.5 ? "met" : "NOT met"
  console.log(`\naim: batched commits >= 0.5x bare: ${pgAim} (${fmt(pgBatched.ratio, 2)}x)`)
  const pgReadyAim = pgReady < 2000 ? "met" : "NOT met"
  console.log(`aim: restart ready < 2000 ms at 10k workers / 1M entries: ${pgReadyAim} (${fmt(pgReady)} ms)`)
})

const cleanup = Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
Effect.runPromise(Effect.scoped(program).pipe(Effect.ensuring(cleanup)))
  .catch((error) => {
    console.error(error)
    rmSync(dir, { recursive: true, force: true })
    process.exit(1)
  })
