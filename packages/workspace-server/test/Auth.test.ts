import { assert, describe, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import type * as Store from "../src/Store.js"
import { freshDatabase, pgDatabase } from "./pgSupport.js"
import { browserRoutes, call, connectSse, startBackend, TOKEN } from "./support.js"

const cookieOf = (setCookie: string) => setCookie.split(";")[0]!

// Sessions are store state: the auth rules hold with sessions in memory (one process) and in PostgreSQL (replicas).
const sessionStores: ReadonlyArray<
  readonly [string, Effect.Effect<Store.Database | undefined, never, Scope.Scope>]
> = [
  ["sessions in memory", Effect.succeed(undefined)],
  ["sessions in PostgreSQL", Effect.map(freshDatabase, pgDatabase)]
]

for (const [storeName, sessionStore] of sessionStores) {
  const start = () =>
    Effect.flatMap(sessionStore, (database) =>
      startBackend({ embedded: { runtime_id: "local", store: "memory" } }, { database }))

  describe(`browser auth (${storeName})`, () => {
    it.scopedLive("refuses every /api route without the Backend token, or with a wrong one, and changes nothing", () =>
      Effect.gen(function*() {
        const { client } = yield* start()
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
        const { client } = yield* start()
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
        const { client } = yield* start()
        const wrong = yield* call(client, "GET", "/login?token=nope", { token: null })
        assert.strictEqual(wrong.status, 401)
        assert.isUndefined(wrong.headers["set-cookie"])
        const missing = yield* call(client, "GET", "/login", { token: null })
        assert.strictEqual(missing.status, 401)

        const login = yield* call(client, "GET", `/login?token=${TOKEN}`, { token: null })
        assert.strictEqual(login.status, 303)
        assert.strictEqual(login.headers["location"], "/")
        const setCookie = login.headers["set-cookie"]!
        assert.match(setCookie, /^yoi_session=[A-Za-z0-9_-]{40,};/)
        assert.match(setCookie, /HttpOnly/)
        assert.match(setCookie, /SameSite=Strict/)
        assert.match(setCookie, /Path=\//)
        assert.notInclude(setCookie, TOKEN)
        assert.strictEqual(login.headers["referrer-policy"], "no-referrer")
        const cookie = cookieOf(setCookie)

        for (const [method, path, body] of browserRoutes) {
          if (path.endsWith("/events") || (method === "DELETE" && path === "/api/session")) continue
          const headers = method === "GET" ? { cookie } : { cookie, "content-type": "application/json" }
          const reply = yield* call(client, method, path, { token: null, body, headers })
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

    it.scopedLive("a stale login link sends a browser to the sign-in form, a script gets the typed 401", () =>
      Effect.gen(function*() {
        const { client } = yield* start()
        const browser = yield* call(client, "GET", "/login?token=stale", { token: null, headers: { accept: "text/html" } })
        assert.strictEqual(browser.status, 303)
        assert.strictEqual(browser.headers["location"], "/signin?failed=1")
        assert.isUndefined(browser.headers["set-cookie"])
      }))

    it.scopedLive("signs in with the token as JSON, tells who is signed in, and signs out", () =>
      Effect.gen(function*() {
        const { client, url } = yield* start()
        const wrong = yield* call(client, "POST", "/api/session", { token: null, body: { token: "nope" } })
        assert.strictEqual(wrong.status, 401)
        assert.isUndefined(wrong.headers["set-cookie"])
        const foreign = yield* call(client, "POST", "/api/session", {
          token: null, body: { token: TOKEN }, headers: { origin: "http://evil.example" }
        })
        assert.strictEqual(foreign.status, 401)
        assert.isUndefined(foreign.headers["set-cookie"])
        const form = yield* call(client, "POST", "/api/session", {
          token: null, rawBody: `token=${TOKEN}`, headers: { "content-type": "application/x-www-form-urlencoded" }
        })
        assert.strictEqual(form.status, 400)
        assert.isUndefined(form.headers["set-cookie"])

        const signIn = yield* call(client, "POST", "/api/session", {
          token: null, body: { token: TOKEN }, headers: { origin: url }
        })
        assert.strictEqual(signIn.status, 204)
        const setCookie = signIn.headers["set-cookie"]!
        assert.match(setCookie, /HttpOnly/)
        assert.match(setCookie, /SameSite=Strict/)
        assert.notInclude(setCookie, TOKEN)
        const cookie = cookieOf(setCookie)
        const who = yield* call(client, "GET", "/api/session", { token: null, headers: { cookie } })
        assert.strictEqual(who.status, 200)
        assert.match(who.json.actor, /^session:[0-9a-f]{8}$/)

        const out = yield* call(client, "DELETE", "/api/session", {
          token: null, headers: { cookie, "content-type": "application/json" }
        })
        assert.strictEqual(out.status, 204)
        assert.match(out.headers["set-cookie"]!, /^yoi_session=;.*Max-Age=0/)
        const after = yield* call(client, "GET", "/api/session", { token: null, headers: { cookie } })
        assert.strictEqual(after.status, 401)
      }))

    it.scopedLive("refuses a cookie-authenticated command that does not declare a JSON body", () =>
      Effect.gen(function*() {
        const { client } = yield* start()
        const login = yield* call(client, "GET", `/login?token=${TOKEN}`, { token: null })
        const cookie = cookieOf(login.headers["set-cookie"]!)
        // What an HTML form on another site could send without a preflight.
        for (const contentType of ["", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]) {
          const reply = yield* call(client, "POST", "/api/runtimes/local/workers", {
            token: null,
            rawBody: JSON.stringify({ display_name: "Forged" }),
            headers: { cookie, "content-type": contentType }
          })
          assert.strictEqual(reply.status, 401, String(contentType))
          assert.match(reply.json.message, /Content-Type: application\/json/)
        }
        const list = yield* call(client, "GET", "/api/runtimes/local/workers")
        assert.deepStrictEqual(list.json.items, [])
      }))

    it.scopedLive("refuses a cookie-authenticated command from another origin", () =>
      Effect.gen(function*() {
        const { client, url } = yield* start()
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
}
