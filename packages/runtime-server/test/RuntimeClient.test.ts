import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeHttpServerRequest } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { RuntimeClient } from "@yoi/runtime-api"
import { Effect, Layer, Redacted } from "effect"

/** A stand-in runtime that fails on cue, to see what the client retries; it counts every request it gets. */
const flaky = (hits: Map<string, number>) => {
  const count = (key: string) => {
    const n = (hits.get(key) ?? 0) + 1
    hits.set(key, n)
    return n
  }
  const unavailable = HttpServerResponse.unsafeJson(
    { _tag: "RuntimeUnavailable", message: "not now" },
    { status: 503 }
  )
  return HttpRouter.empty.pipe(
    HttpRouter.get(
      "/healthz",
      Effect.sync(() => (count("healthz") <= 2 ? unavailable : HttpServerResponse.unsafeJson({ status: "ok" })))
    ),
    HttpRouter.get("/readyz", Effect.zipRight(Effect.sync(() => count("readyz")), Effect.never)),
    HttpRouter.get(
      "/v1/workers/:worker_id",
      Effect.gen(function*() {
        if (count("get") === 1) {
          const request = yield* HttpServerRequest.HttpServerRequest
          NodeHttpServerRequest.toIncomingMessage(request).socket.destroy()
          return yield* Effect.never
        }
        return HttpServerResponse.unsafeJson({ _tag: "WorkerNotFound", worker_id: "w", message: "gone" }, { status: 404 })
      })
    ),
    HttpRouter.post("/v1/workers/:worker_id/stop", Effect.sync(() => (count("stop"), unavailable))),
    HttpServer.serve()
  )
}

const TOKEN = Redacted.make("retry-test-token-0123456789")

describe("RuntimeClient retries and timeouts", () => {
  it.live("retries an idempotent GET on 503 and returns the eventual answer", () => {
    const hits = new Map<string, number>()
    return Effect.gen(function*() {
      const c = yield* RuntimeClient.make({ token: TOKEN, retries: 3 })
      assert.deepStrictEqual(yield* c.health.healthz(), { status: "ok" })
      assert.strictEqual(hits.get("healthz"), 3)
    }).pipe(Effect.provide(flaky(hits).pipe(Layer.provideMerge(NodeHttpServer.layerTest))))
  })

  it.live("retries an idempotent GET after the connection dropped", () => {
    const hits = new Map<string, number>()
    return Effect.gen(function*() {
      const c = yield* RuntimeClient.make({ token: TOKEN, retries: 2 })
      const error = yield* Effect.flip(c.workers.get({ path: { worker_id: "w" } }))
      assert.strictEqual(error._tag, "WorkerNotFound")
      assert.strictEqual(hits.get("get"), 2)
    }).pipe(Effect.provide(flaky(hits).pipe(Layer.provideMerge(NodeHttpServer.layerTest))))
  })

  it.live("never retries a command: a POST that got 503 is sent once", () => {
    const hits = new Map<string, number>()
    return Effect.gen(function*() {
      const c = yield* RuntimeClient.make({ token: TOKEN, retries: 3 })
      const error = yield* Effect.flip(c.workers.stop({ path: { worker_id: "w" } }))
      assert.strictEqual(error._tag, "RuntimeUnavailable")
      assert.strictEqual(hits.get("stop"), 1)
    }).pipe(Effect.provide(flaky(hits).pipe(Layer.provideMerge(NodeHttpServer.layerTest))))
  })

  it.live("a call without an answer fails with a transport error after the timeout, once per attempt", () => {
    const hits = new Map<string, number>()
    return Effect.gen(function*() {
      const once = yield* RuntimeClient.make({ token: TOKEN, retries: 0, timeout: "200 millis" })
      const error = yield* Effect.flip(once.health.readyz())
      assert.strictEqual(error._tag, "RequestError")
      if (error._tag === "RequestError") {
        assert.strictEqual(error.reason, "Transport")
        assert.include(error.message, "no response in 200 ms")
      }
      assert.strictEqual(hits.get("readyz"), 1)
      const twice = yield* RuntimeClient.make({ token: TOKEN, retries: 1, timeout: "200 millis" })
      yield* Effect.flip(twice.health.readyz())
      assert.strictEqual(hits.get("readyz"), 3)
    }).pipe(Effect.provide(flaky(hits).pipe(Layer.provideMerge(NodeHttpServer.layerTest))))
  })
})
