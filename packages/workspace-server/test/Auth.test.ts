import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { browserRoutes, call, connectSse, startBackend, TOKEN } from "./support.js"

const cookieOf = (setCookie: string) => setCookie.split(";")[0]!

describe("browser auth", () => {
  it.scopedLive("refuses every /api route without the Backend token, or with a wrong one, and changes nothing", () =>
    Effect.gen(function*() {
      const { client } = yield* startBackend({ embedded: { runtime_id: "local", store: "memory" } })
      for (const [method, path, body] of browserRoutes) {
        for (const token of [null, "wrong-token", `${TOKEN}x`, ""]) {
          const reply = yield* call(client, method, path, { token, body })
          assert.strictEqual(reply.status, 401, `${method} ${path} with ${JSON.stringify(token)}`)
          assert.strictEqual(reply.json._tag, "Unauthorized")
        }
        const forged = yield* call(client, method, path, { token: null, body, headers: { cookie: "yoi_session=forged" } })
        assert.strictEqual(forged.status, 401, `${method} ${path} with a forged cookie`)
      }
      const workers = yield* call(client, "GET", "/api/runtimes/local/workers")
      assert.deepStrictEqual(workers.json.items, [])
      const audit = yield* call(client, "GET", "/api/audit")
      assert.deepStrictEqual(audit.json.items, [])
      const health = yield* call(client, "GET", "/healthz", { token: null })
      assert.deepStrictEqual(health.json, { status: "ok" })
    }))

  it.scopedLive("accepts the bearer token on every route", () =>
    Effect.gen(function*() {
      const { client } = yield* startBackend({ embedded: { runtime_id: "local", store: "memory" } })
      for (const [method, path, body] of browserRoutes) {
        if (path.endsWith("/events")) continue
        const reply = yield* call(client, method, path, { body })
        assert.notStrictEqual(reply.status, 401, `${method} ${path}`)
      }
      const sse = yield* connectSse(client, "/api/events")
      assert.strictEqual(sse.status, 200)
    }))

  it.scopedLive("logs a browser in with /login?token=: an HttpOnly SameSite=Strict session cookie, never the token", () =>
    Effect.gen(function*() {
      const { client } = yield* startBackend({ embedded: { runtime_id: "local", store: "memory" } })
      const wrong = yield* call(client, "GET", "/login?token=nope", { token: null })
      assert.strictEqual(wrong.status, 401)
      assert.isUndefined(wrong.headers["set-cookie"])
      const missing = yield* call(client, "GET", "/login", { token: null })
      assert.strictEqual(missing.status, 401)

      const login = yield* call(client, "GET", `/login?token=${TOKEN}`, { token: null })
      assert.strictEqual(login.status, 303)
      assert.strictEqual(login.headers["location"], "/api/runtimes")
      const setCookie = login.headers["set-cookie"]!
      assert.match(setCookie, /^yoi_session=[A-Za-z0-9_-]{40,};/)
      assert.match(setCookie, /HttpOnly/)
      assert.match(setCookie, /SameSite=Strict/)
      assert.match(setCookie, /Path=\//)
      assert.notInclude(setCookie, TOKEN)
      assert.strictEqual(login.headers["referrer-policy"], "no-referrer")
      const cookie = cookieOf(setCookie)

      for (const [method, path, body] of browserRoutes) {
        if (path.endsWith("/events")) continue
        const reply = yield* call(client, method, path, { token: null, body, headers: { cookie } })
        assert.notStrictEqual(reply.status, 401, `${method} ${path} with the session cookie`)
      }
      const sse = yield* connectSse(client, "/api/events", { token: null, headers: { cookie } })
      assert.strictEqual(sse.status, 200)

      const created = yield* call(client, "POST", "/api/runtimes/local/workers", {
        token: null,
        body: { display_name: "Browser" },
        headers: { cookie }
      })
      assert.strictEqual(created.status, 201)
      const audit = yield* call(client, "GET", "/api/audit?limit=1")
      assert.match(audit.json.items[0].actor, /^session:[0-9a-f]{8}$/)
    }))

  it.scopedLive("refuses a cookie-authenticated command from another origin", () =>
    Effect.gen(function*() {
      const { client, url } = yield* startBackend({ embedded: { runtime_id: "local", store: "memory" } })
      const login = yield* call(client, "GET", `/login?token=${TOKEN}`, { token: null })
      const cookie = cookieOf(login.headers["set-cookie"]!)
      const foreign = yield* call(client, "POST", "/api/runtimes/local/workers", {
        token: null,
        body: { display_name: "CSRF" },
        headers: { cookie, origin: "http://evil.example" }
      })
      assert.strictEqual(foreign.status, 401)
      const own = yield* call(client, "POST", "/api/runtimes/local/workers", {
        token: null,
        body: { display_name: "Mine" },
        headers: { cookie, origin: url }
      })
      assert.strictEqual(own.status, 201)
      const list = yield* call(client, "GET", "/api/runtimes/local/workers")
      assert.deepStrictEqual(list.json.items.map((w: any) => w.display_name), ["Mine"])
    }))
})
