/**
 * What a durable audit record costs the command that writes it, side by side in one run:
 *
 * - `queued` (the baseline, the Backend's audit before): the record is pushed on a queue and the command answers at
 *   once; one fiber writes what gathered after 5 ms in one transaction. A crash loses what is queued.
 * - `durable` (now): the command waits until its record is committed; one writer fiber commits everything queued
 *   while the previous commit ran (group commit), on SQLite (WAL, `synchronous = NORMAL`) and, when
 *   `YOI_TEST_PG_URL` is set (`eval "$(scripts/pg.sh start)"`), on PostgreSQL.
 *
 * Per store: the latency one command waits for its record, sequential (p50/p99), and records committed per second
 * with 64 concurrent commands (for `queued`, until the queue is drained).
 *
 *   npx tsx scripts/bench/audit.ts [--records 2000] [--callers 64]
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Context, Duration, Effect, Layer, Redacted, type Scope } from "effect"
import * as NodeCrypto from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { parseArgs } from "node:util"
import { Audit, Store } from "@yoi/workspace-server"

const { values } = parseArgs({
  options: { records: { type: "string", default: "2000" }, callers: { type: "string", default: "64" } }
})
const RECORDS = Number(values.records)
const CALLERS = Number(values.callers)

const entry = (i: number): Audit.AuditEntry => ({
  actor: "token",
  runtime_id: "local",
  worker_id: `w_${i % 50}`,
  action: "cancel",
  outcome: "ok",
  request_id: `bench-${i}`
})

interface Recorder {
  readonly record: (entry: Audit.AuditEntry) => Effect.Effect<void>
  /** Returns once everything recorded so far is committed. */
  readonly drain: Effect.Effect<void>
}

/** The audit before this change: queued, written 5 ms later in one transaction. */
const queued = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const table = Store.table(sql, "audit")
  let pending: Array<Record<string, string | null>> = []
  const wake = yield* Effect.makeLatch(false)
  const lock = yield* Effect.makeSemaphore(1)
  const flush = lock.withPermits(1)(Effect.suspend(() => {
    const rows = pending
    pending = []
    if (rows.length === 0) return Effect.void
    const batches: Array<typeof rows> = []
    for (let i = 0; i < rows.length; i += 200) batches.push(rows.slice(i, i + 200))
    return Effect.forEach(batches, (b) => sql`INSERT INTO ${table} ${sql.insert(b)}`, { discard: true }).pipe(
      sql.withTransaction,
      Effect.orDie
    )
  }))
  yield* Effect.forkScoped(Effect.forever(
    wake.await.pipe(
      Effect.zipRight(wake.close),
      Effect.zipRight(Effect.sleep(Duration.millis(5))),
      Effect.zipRight(flush)
    )
  ))
  return {
    record: (e: Audit.AuditEntry) =>
      Effect.zipRight(
        Effect.sync(() =>
          pending.push({
            at: new Date().toISOString(),
            actor: e.actor,
            runtime_id: e.runtime_id,
            worker_id: e.worker_id ?? null,
            action: e.action,
            outcome: e.outcome,
            error_tag: null,
            request_id: e.request_id
          })
        ),
        wake.open
      ),
    drain: flush
  } satisfies Recorder
})

const durable = Effect.map(Audit.make, (audit): Recorder => ({ record: audit.record, drain: Effect.void }))

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!

const measure = (recorder: Recorder) =>
  Effect.gen(function*() {
    const latencies: Array<number> = []
    for (let i = 0; i < RECORDS; i++) {
      const t0 = performance.now()
      yield* recorder.record(entry(i))
      latencies.push(performance.now() - t0)
    }
    yield* recorder.drain
    latencies.sort((a, b) => a - b)
    const t0 = performance.now()
    const perCaller = Math.ceil(RECORDS / CALLERS)
    yield* Effect.forEach(Array.from({ length: CALLERS }, (_, c) => c), (c) =>
      Effect.forEach(Array.from({ length: perCaller }, (_, i) => i), (i) => recorder.record(entry(c * perCaller + i)), {
        discard: true
      }), { concurrency: "unbounded", discard: true })
    yield* recorder.drain
    const seconds = (performance.now() - t0) / 1000
    const perSecond = (perCaller * CALLERS) / seconds
    return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), perSecond }
  })

const run = (
  database: Store.Database,
  make: Effect.Effect<Recorder, never, SqlClient.SqlClient | Scope.Scope>
) =>
  Effect.scoped(Effect.gen(function*() {
    const ctx = yield* Layer.build(Store.layer(database))
    return yield* measure(yield* Effect.provide(make, ctx))
  }))

const withPgDatabase = <A, E>(url: string, f: (db: Store.Database) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const name = `yoi_bench_${NodeCrypto.randomBytes(4).toString("hex")}`
    const admin = <X>(q: (sql: SqlClient.SqlClient) => Effect.Effect<X, unknown>) =>
      Effect.scoped(Effect.flatMap(Layer.build(PgClient.layer({ url: Redacted.make(url) })), (c) =>
        q(Context.get(c, SqlClient.SqlClient)))).pipe(Effect.orDie)
    yield* admin((sql) => sql.unsafe(`CREATE DATABASE ${name}`))
    const target = new URL(url)
    target.pathname = `/${name}`
    return yield* f({ _tag: "Postgres", url: Redacted.make(target.toString()) }).pipe(
      Effect.ensuring(admin((sql) => sql.unsafe(`DROP DATABASE ${name} WITH (FORCE)`)).pipe(Effect.ignore))
    )
  })

const main = Effect.gen(function*() {
  const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "yoi-bench-audit-"))
  const rows: Array<[string, { p50: number; p99: number; perSecond: number }]> = []
  try {
    rows.push(["sqlite  queued (before)", yield* run({ _tag: "Sqlite", filename: NodePath.join(dir, "a.db") }, queued)])
    rows.push(["sqlite  durable (now)", yield* run({ _tag: "Sqlite", filename: NodePath.join(dir, "b.db") }, durable)])
    const pg = process.env.YOI_TEST_PG_URL
    if (pg !== undefined && pg !== "") {
      rows.push(["pg      queued (before)", yield* withPgDatabase(pg, (db) => run(db, queued))])
      rows.push(["pg      durable (now)", yield* withPgDatabase(pg, (db) => run(db, durable))])
    } else {
      yield* Console.log("(YOI_TEST_PG_URL is not set: PostgreSQL rows left out)")
    }
  } finally {
    NodeFs.rmSync(dir, { recursive: true, force: true })
  }
  yield* Console.log(`audit records: ${RECORDS} sequential, then ${CALLERS} concurrent callers`)
  yield* Console.log("store / mode                 wait p50 ms   wait p99 ms   committed/s")
  for (const [name, r] of rows) {
    yield* Console.log(
      `${name.padEnd(28)} ${r.p50.toFixed(3).padStart(11)} ${r.p99.toFixed(3).padStart(13)} ${r.perSecond.toFixed(0).padStart(13)}`
    )
  }
  const ratio = (a: string, b: string) => {
    const x = rows.find(([n]) => n.startsWith(a))?.[1]
    const y = rows.find(([n]) => n.startsWith(b))?.[1]
    return x && y ? (y.perSecond / x.perSecond).toFixed(2) : "n/a"
  }
  yield* Console.log(`durable/queued committed/s: sqlite ${ratio("sqlite  queued", "sqlite  durable")}, pg ${
    ratio("pg      queued", "pg      durable")
  }`)
})

NodeRuntime.runMain(main.pipe(Effect.orDie))
