import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { freshDatabase, pgDatabase } from "./pgSupport.js"
import { call, connectSse, eventually, startBackend, TOKEN } from "./support.js"

const cookieOf = (setCookie: string) => setCookie.split(";")[0]!

/** Two Backend processes' worth of services on one PostgreSQL database, each with its own embedded runtime. */
const twoReplicas = Effect.gen(function*() {
  const database = pgDatabase(yield* freshDatabase)
  const a = yield* startBackend({ embedded: { runtime_id: "local-a", store: "memory" } }, { database })
  const b = yield* startBackend({ embedded: { runtime_id: "local-b", store: "memory" } }, { database })
  return { a, b }
})

/** Every audit record, oldest first, through one replica's API. */
const wholeLog = (client: Parameters<typeof call>[0], path = "/api/audit") =>
  Effect.gen(function*() {
    const items: Array<any> = []
    let token: string | undefined
    do {
      const sep = path.includes("?") ? "&" : "?"
      const page = yield* call(client, "GET", `${path}${sep}limit=500${token === undefined ? "" : `&page_token=${token}`}`)
      assert.strictEqual(page.status, 200, page.text)
      items.push(...page.json.items)
      token = page.json.next_page_token
    } while (token !== undefined)
    return items.reverse()
  })

describe("two Backends on one PostgreSQL database", () => {
  it.scopedLive("a session made on one is valid on the other, and signing out on one ends it on both", () =>
    Effect.gen(function*() {
      const { a, b } = yield* twoReplicas
      const signIn = yield* call(a.client, "POST", "/api/session", { token: null, body: { token: TOKEN } })
      assert.strictEqual(signIn.status, 204, signIn.text)
      const cookie = cookieOf(signIn.headers["set-cookie"]!)
      const onA = yield* call(a.client, "GET", "/api/session", { token: null, headers: { cookie } })
      const onB = yield* call(b.client, "GET", "/api/session", { token: null, headers: { cookie } })
      assert.strictEqual(onB.status, 200, onB.text)
      assert.strictEqual(onB.json.actor, onA.json.actor)
      assert.match(onB.json.actor, /^session:[0-9a-f]{8}$/)
      // A command through B with A's session is audited under that session, and A reads it.
      const created = yield* call(b.client, "POST", "/api/runtimes/local-b/workers", {
        token: null,
        body: { display_name: "Shared" },
        headers: { cookie, "x-request-id": "shared-session-create" }
      })
      assert.strictEqual(created.status, 201, created.text)
      const log = yield* wholeLog(a.client)
      assert.deepStrictEqual(
        log.map((r) => [r.request_id, r.actor, r.runtime_id, r.outcome]),
        [["shared-session-create", onA.json.actor, "local-b", "ok"]]
      )
      const out = yield* call(b.client, "DELETE", "/api/session", {
        token: null,
        headers: { cookie, "content-type": "application/json" }
      })
      assert.strictEqual(out.status, 204, out.text)
      const afterOnA = yield* call(a.client, "GET", "/api/session", { token: null, headers: { cookie } })
      assert.strictEqual(afterOnA.status, 401)
    }), 60_000)

  it.scopedLive("concurrent commands through both land in one ordered log, none lost, each replica's in its order", () =>
    Effect.gen(function*() {
      const { a, b } = yield* twoReplicas
      const replicas = [["a", a.client, "local-a"], ["b", b.client, "local-b"]] as const
      const n = 30
      // Per replica: a sequential chain (its order must hold in the log) and a concurrent burst beside it.
      const acknowledged = yield* Effect.forEach(replicas, ([name, client, runtime]) =>
        Effect.all([
          Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
            Effect.map(
              call(client, "POST", `/api/runtimes/${runtime}/workers/missing-${i}/cancel`, {
                headers: { "x-request-id": `${name}-seq-${i}` }
              }),
              (reply) => [reply.status, `${name}-seq-${i}`] as const
            )),
          Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
            Effect.map(
              i % 3 === 0
                ? call(client, "POST", `/api/runtimes/${runtime}/workers`, {
                  body: { display_name: `W${i}` },
                  headers: { "x-request-id": `${name}-burst-${i}` }
                })
                : call(client, "POST", `/api/runtimes/${runtime}/workers/missing-${i}/stop`, {
                  headers: { "x-request-id": `${name}-burst-${i}` }
                }),
              (reply) => [reply.status, `${name}-burst-${i}`] as const
            ), { concurrency: "unbounded" })
        ], { concurrency: "unbounded" }), { concurrency: "unbounded" })
      const replies = acknowledged.flat(2)
      assert.strictEqual(replies.length, 4 * n)
      for (const [status] of replies) assert.oneOf(status, [201, 404])
      const fromA = yield* wholeLog(a.client)
      const fromB = yield* wholeLog(b.client)
      // One log: both replicas read the same records in the same order.
      assert.deepStrictEqual(fromA.map((r) => r.id), fromB.map((r) => r.id))
      assert.strictEqual(fromA.length, 4 * n)
      assert.deepStrictEqual(
        new Set(fromA.map((r) => r.request_id)),
        new Set(replies.map(([, id]) => id))
      )
      const ids = fromA.map((r) => r.id as number)
      for (let i = 1; i < ids.length; i++) assert.isAbove(ids[i]!, ids[i - 1]!)
      for (const [name] of replicas) {
        const chain = fromA.filter((r) => r.request_id.startsWith(`${name}-seq-`)).map((r) => r.request_id)
        assert.deepStrictEqual(chain, Array.from({ length: n }, (_, i) => `${name}-seq-${i}`))
      }
      const failed = fromA.filter((r) => r.outcome === "failed").map((r) => r.error_tag)
      assert.isTrue(failed.length > 0 && failed.every((t) => t === "WorkerNotFound"))
    }), 90_000)

  it.scopedLive("streams observed through either replica land in one observation log", () =>
    Effect.gen(function*() {
      const { a, b } = yield* twoReplicas
      yield* Effect.forEach([[a.client, "a"], [b.client, "b"]] as const, ([client, name]) =>
        Effect.scoped(Effect.gen(function*() {
          const sse = yield* connectSse(client, "/api/events", { headers: { "x-request-id": `watch-${name}` } })
          assert.strictEqual(sse.status, 200)
          yield* eventually(Effect.sync(() => sse.raw()), (raw) => raw.includes("\n\n"), "the open frame")
        })))
      const rows = yield* eventually(
        wholeLog(a.client, "/api/audit/streams"),
        (items) => items.length === 2,
        "two observation records"
      )
      assert.deepStrictEqual(rows.map((r) => [r.request_id, r.stream, r.end_reason]), [
        ["watch-a", "all", "closed"],
        ["watch-b", "all", "closed"]
      ])
      assert.deepStrictEqual((yield* wholeLog(b.client, "/api/audit/streams")).map((r) => r.id), rows.map((r) => r.id))
    }), 60_000)
})
