import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import * as NodePath from "node:path"
import { Audit } from "../src/Audit.js"
import { Sessions } from "../src/Auth.js"
import * as Backend from "../src/Backend.js"
import * as Store from "../src/Store.js"
import { freshDatabase, pgDatabase, withClient } from "./pgSupport.js"
import { tempDir } from "./support.js"

const entry = (i: number) => ({
  actor: "token",
  runtime_id: i % 2 === 0 ? "local" : "gpu-box",
  worker_id: `w_${i}`,
  action: "stop" as const,
  outcome: "ok" as const,
  request_id: `req-${i}`
})

const services = (database: Store.Database) =>
  Layer.build(Backend.layerStore(database)).pipe(
    Effect.orDie,
    Effect.map((ctx) => ({ audit: Context.get(ctx, Audit), sessions: Context.get(ctx, Sessions) }))
  )

/** Each store: a way to name a database that outlives one open (a restart), and a second open of it. */
const stores: ReadonlyArray<readonly [string, Effect.Effect<Store.Database, never, import("effect").Scope.Scope>]> = [
  ["SQLite", Effect.map(tempDir(), (dir) => ({ _tag: "Sqlite", filename: NodePath.join(dir, "backend.db") }) as const)],
  ["PostgreSQL", Effect.map(freshDatabase, pgDatabase)]
]

for (const [name, database] of stores) {
  describe(`audit store on ${name}`, () => {
    it.scopedLive("keeps every record across a restart, in order, and pages them newest first", () =>
      Effect.gen(function*() {
        const db = yield* database
        // More records than one insert batch, all committed before each record call returns.
        yield* Effect.scoped(Effect.gen(function*() {
          const { audit } = yield* services(db)
          yield* Effect.forEach(Array.from({ length: 450 }, (_, i) => i), (i) => audit.record(entry(i)), {
            concurrency: 1
          })
        }))
        const { audit } = yield* services(db)
        const first = yield* audit.page({ limit: 500 })
        assert.strictEqual(first.items.length, 450)
        assert.deepStrictEqual(first.items.slice(0, 2).map((r) => r.request_id), ["req-449", "req-448"])
        assert.strictEqual(first.items.at(-1)!.request_id, "req-0")
        yield* audit.record({ ...entry(450), outcome: "denied", error_tag: "Forbidden", worker_id: undefined })
        const latest = yield* audit.page({ limit: 1 })
        const last = latest.items[0]!
        assert.deepStrictEqual(
          [last.request_id, last.outcome, last.error_tag, last.worker_id],
          ["req-450", "denied", "Forbidden", null]
        )
        assert.strictEqual(typeof latest.items[0]!.id, "number")
        const byRuntime = yield* audit.page({ runtime_id: "gpu-box", limit: 500 })
        assert.strictEqual(byRuntime.items.length, 225)
        const byWorker = yield* audit.page({ worker_id: "w_7" })
        assert.deepStrictEqual(byWorker.items.map((r) => r.request_id), ["req-7"])
        // Paging walks every record once.
        const seen: Array<string> = []
        let token: string | undefined
        do {
          const page = yield* audit.page({ limit: 100, page_token: token })
          seen.push(...page.items.map((r) => r.request_id))
          token = page.next_page_token
        } while (token !== undefined)
        assert.strictEqual(new Set(seen).size, 451)
        const bad = yield* audit.page({ limit: 501 }).pipe(Effect.flip)
        assert.strictEqual(bad._tag, "InvalidInput")
        const badToken = yield* audit.page({ page_token: "x1" }).pipe(Effect.flip)
        assert.strictEqual(badToken._tag, "InvalidInput")
      }), 60_000)

    it.scopedLive("many concurrent commands: each record is committed when record returns, none lost", () =>
      Effect.gen(function*() {
        const db = yield* database
        const { audit } = yield* services(db)
        const n = 300
        // Every caller, as soon as its own record returns, must find it in the store.
        const found = yield* Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
          Effect.gen(function*() {
            yield* audit.record({ ...entry(i), worker_id: `c_${i}` })
            const page = yield* audit.page({ worker_id: `c_${i}` })
            return page.items.length
          }), { concurrency: 50 })
        assert.deepStrictEqual(found, Array.from({ length: n }, () => 1))
        const all = yield* audit.page({ limit: 500 })
        assert.strictEqual(all.items.length, n)
        const ids = all.items.map((r) => r.id)
        assert.deepStrictEqual(ids, [...ids].sort((a, b) => b - a))
      }), 60_000)

    it.scopedLive("observation records page newest first with filters", () =>
      Effect.gen(function*() {
        const db = yield* database
        const { audit } = yield* services(db)
        const opened = new Date(Date.now() - 1500)
        for (let i = 0; i < 30; i++) {
          yield* audit.observe({
            actor: i % 3 === 0 ? "session:abc" : "token",
            request_id: `obs-${i}`,
            stream: i % 2 === 0 ? "all" : "worker",
            runtime_id: i % 2 === 0 ? undefined : "local",
            worker_id: i % 2 === 0 ? undefined : `w_${i}`,
            cursor: i === 4 ? "earliest" : undefined,
            start_cursor: `c${i}`,
            last_cursor: `c${i + 5}`,
            opened_at: opened,
            closed_at: new Date(opened.getTime() + 1000 + i),
            events: i,
            end_reason: "closed"
          })
        }
        const page = yield* audit.observations({ limit: 10 })
        assert.strictEqual(page.items.length, 10)
        assert.strictEqual(page.items[0]!.request_id, "obs-29")
        assert.deepStrictEqual(
          [page.items[0]!.events, page.items[0]!.duration_ms, page.items[0]!.worker_id, page.items[0]!.stream],
          [29, 1029, "w_29", "worker"]
        )
        const rest = yield* audit.observations({ limit: 500, page_token: page.next_page_token })
        assert.strictEqual(rest.items.length, 20)
        assert.isUndefined(rest.next_page_token)
        const bySession = yield* audit.observations({ actor: "session:abc", limit: 500 })
        assert.strictEqual(bySession.items.length, 10)
        const byWorker = yield* audit.observations({ worker_id: "w_7" })
        assert.deepStrictEqual(byWorker.items.map((r) => r.request_id), ["obs-7"])
        const fromEarliest = (yield* audit.observations({ limit: 500 })).items.filter((r) => r.cursor === "earliest")
        assert.deepStrictEqual(fromEarliest.map((r) => [r.request_id, r.runtime_id]), [["obs-4", null]])
      }), 60_000)

    it.scopedLive("sessions live in the store: another open of it knows them, sign-out ends them there", () =>
      Effect.gen(function*() {
        const db = yield* database
        const a = yield* services(db)
        const b = yield* services(db)
        const ids = yield* Effect.all(Array.from({ length: 20 }, () => a.sessions.create), { concurrency: 10 })
        assert.strictEqual(new Set(ids).size, 20)
        for (const id of ids) assert.isTrue(Option.isSome(yield* b.sessions.lookup(id)))
        assert.strictEqual(
          Option.getOrThrow(yield* a.sessions.lookup(ids[0]!)),
          Option.getOrThrow(yield* b.sessions.lookup(ids[0]!))
        )
        yield* b.sessions.remove(ids[0]!)
        assert.isTrue(Option.isNone(yield* a.sessions.lookup(ids[0]!)))
        assert.isTrue(Option.isNone(yield* a.sessions.lookup("not-a-session")))
      }), 60_000)
  })
}

describe("the Backend database on PostgreSQL", () => {
  it.scopedLive("replicas migrating at once both start, and the tables live in the yoi_backend schema", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const started = yield* Effect.all(
        Array.from({ length: 4 }, () => services(pgDatabase(url))),
        { concurrency: "unbounded" }
      )
      yield* started[0]!.audit.record(entry(1))
      assert.strictEqual((yield* started[3]!.audit.page({})).items.length, 1)
      const tables = yield* withClient((sql) =>
        sql<{ table_schema: string; table_name: string }>`SELECT table_schema, table_name FROM information_schema.tables
          WHERE table_name IN ('audit', 'sessions', 'observations', 'migrations') ORDER BY table_name`, url)
      assert.deepStrictEqual(tables.map((t) => `${t.table_schema}.${t.table_name}`), [
        "yoi_backend.audit",
        "yoi_backend.migrations",
        "yoi_backend.observations",
        "yoi_backend.sessions"
      ])
    }), 60_000)

  it.effect("a bad URL or an unreachable server fails with a message that never holds the password", () =>
    Effect.gen(function*() {
      const secret = "s3cr3t-pa55word"
      const bad = Store.parseDatabaseUrl(`mysql://yoi:${secret}@db/x`)
      assert.instanceOf(bad, Store.DatabaseError)
      assert.notInclude((bad as Store.DatabaseError).message, secret)
      const db = Store.parseDatabaseUrl(`postgres://yoi:${secret}@127.0.0.1:1/yoi`)
      assert.notInstanceOf(db, Store.DatabaseError)
      const error = yield* Layer.build(Store.layer(db as Store.Database)).pipe(Effect.scoped, Effect.flip)
      assert.strictEqual(error._tag, "DatabaseError")
      assert.include(error.message, "postgres://yoi:***@127.0.0.1:1/yoi")
      assert.notInclude(error.message, secret)
      assert.notInclude(Store.describe({ _tag: "Postgres", url: Redacted.make(`postgres://u:${secret}@h/d`) }), secret)
    }), 30_000)
})
