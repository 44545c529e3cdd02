import { testPolicy } from "@yoi/worker-runtime/testing"
import { HttpApi, HttpServer } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { RuntimeApi } from "@yoi/runtime-api"
import { layerMemory } from "@yoi/worker-runtime"
import { Context, Effect, Layer, Redacted } from "effect"
import * as fc from "fast-check"
import { createRequire, syncBuiltinESMExports } from "node:module"
import { Auth, RuntimeServer } from "../src/index.js"
import { notTyped4xx, send } from "./ReliabilityHttp.js"

// The fast subset of scripts/reliability/security.ts for the runtime. Constant time is checked by what the code
// calls, not by timing (the machine is shared): every check must go through `crypto.timingSafeEqual` on buffers of
// equal length, whatever the length of the presented token.

const TOKEN = "security-test-token-0123456789"

const comparisons: Array<readonly [number, number]> = []
const crypto = createRequire(import.meta.url)("node:crypto") as typeof import("node:crypto")
const timingSafeEqual = crypto.timingSafeEqual
crypto.timingSafeEqual = ((a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
  comparisons.push([a.byteLength, b.byteLength])
  return timingSafeEqual(a, b)
}) as typeof crypto.timingSafeEqual
syncBuiltinESMExports()

const start = Effect.map(
  Layer.build(
    RuntimeServer.layer({ host: "127.0.0.1", port: 0, auth: Auth.token(Redacted.make(TOKEN)), graceMs: 100 }).pipe(
      Layer.provideMerge(layerMemory({ policy: testPolicy, runtimeId: "security" }))
    )
  ),
  (context) => {
    const address = Context.get(context, HttpServer.HttpServer).address
    return address._tag === "TcpAddress" ? address.port : 0
  }
)

/** Every token a guesser could send: each prefix and extension, each suffix, each one-character change. */
const near = (token: string): ReadonlyArray<string> => {
  const out = new Set<string>()
  for (let n = 0; n <= token.length * 2; n++) out.add(token.slice(0, n) + "x".repeat(Math.max(0, n - token.length)))
  for (let i = 0; i < token.length; i++) {
    out.add(token.slice(i))
    out.add(`${token.slice(0, i)}${token[i] === "A" ? "B" : "A"}${token.slice(i + 1)}`)
  }
  out.add(token.toUpperCase())
  out.add(`\u00e9${token.slice(1)}`)
  out.delete(token)
  return Array.from(out)
}

describe("auth hardening", () => {
  it("every token check is one timingSafeEqual on equal-length buffers; only the token itself passes", () => {
    const check = Auth.makeCheck(Auth.token(Redacted.make(TOKEN)))
    const candidates = near(TOKEN)
    assert.isAbove(candidates.length, TOKEN.length * 3)
    for (const presented of candidates) {
      comparisons.length = 0
      assert.isFalse(check(presented), presented)
      assert.deepStrictEqual(comparisons.length, 1, presented)
      assert.strictEqual(comparisons[0]![0], comparisons[0]![1], presented)
    }
    comparisons.length = 0
    assert.isTrue(check(TOKEN))
    assert.strictEqual(comparisons.length, 1)
  })

  it.scopedLive("over HTTP, forged bearer tokens are refused and compared in constant time", () =>
    Effect.gen(function*() {
      const port = yield* start
      const forged = fc.oneof(
        fc.nat({ max: TOKEN.length * 2 }).map((n) => TOKEN.slice(0, n) + "y".repeat(Math.max(0, n - TOKEN.length))),
        fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 60 }).map((s) => s.replace(/[^!-~]/g, "z"))
      ).filter((t) => t !== TOKEN && t.length > 0)
      yield* Effect.promise(() =>
        fc.assert(fc.asyncProperty(forged, async (token) => {
          comparisons.length = 0
          const reply = await Effect.runPromise(send(port, { path: "/v1/workers", headers: [["authorization", `Bearer ${token}`]] }))
          if (reply.status !== 401 || JSON.parse(reply.body)._tag !== "Unauthorized") throw new Error(`${token}: ${reply.status}`)
          if (comparisons.length === 0 || comparisons.some(([a, b]) => a !== b)) throw new Error(`${token}: ${JSON.stringify(comparisons)}`)
        }), { numRuns: 40 }))
    }))

  it.scopedLive("no route of RuntimeApi, nor the docs, answers without the token; only the probes are public", () =>
    Effect.gen(function*() {
      const port = yield* start
      const routes: Array<readonly [string, string]> = [["GET", "/openapi.json"], ["GET", "/docs"]]
      HttpApi.reflect(RuntimeApi, {
        onGroup: () => {},
        onEndpoint: ({ endpoint }) => {
          routes.push([endpoint.method, endpoint.path.replace(/:worker_id/g, "w1")])
        }
      })
      assert.isAbove(routes.length, 15)
      for (const [method, path] of routes) {
        for (const headers of [[], [["authorization", "Bearer not-the-token-at-all"]], [["authorization", `Basic ${TOKEN}`]]] as const) {
          const reply = yield* send(port, {
            method,
            path,
            headers: [...headers, ["content-type", "application/json"]],
            ...(method === "POST" ? { body: "{}" } : {})
          })
          if (path === "/healthz" || path === "/readyz") {
            assert.strictEqual(reply.status, 200, path)
          } else {
            assert.isUndefined(notTyped4xx(reply), `${method} ${path}: ${reply.status} ${reply.body}`)
            assert.strictEqual(JSON.parse(reply.body)._tag, "Unauthorized", `${method} ${path}`)
          }
        }
      }
    }))

  it.scopedLive("size limits: a declared body over the limit, a chunked body and oversized headers are typed at once", () =>
    Effect.gen(function*() {
      const port = yield* start
      const auth = ["authorization", `Bearer ${TOKEN}`] as const
      const declared = yield* send(port, {
        raw: `POST /v1/workers HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\ncontent-type: application/json\r\n` +
          `content-length: ${1024 ** 3}\r\n\r\n`
      })
      assert.strictEqual(declared.status, 413)
      assert.strictEqual(JSON.parse(declared.body)._tag, "PayloadTooLarge")
      const chunked = yield* send(port, {
        method: "POST",
        path: "/v1/workers",
        headers: [auth, ["content-type", "application/json"], ["transfer-encoding", "chunked"]],
        body: "2\r\n{}\r\n0\r\n\r\n"
      })
      assert.strictEqual(chunked.status, 400)
      const headers = yield* send(port, { path: "/v1/runtime", headers: [auth, ["x-filler", "h".repeat(20_000)]] })
      assert.strictEqual(headers.status, 431)
      assert.strictEqual(JSON.parse(headers.body)._tag, "RequestHeadersTooLarge")
    }))
})
