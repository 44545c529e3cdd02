import { testPolicy } from "@yoi/worker-runtime/testing"
import { HttpServer } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Ids, layerMemory, Runtime } from "@yoi/worker-runtime"
import { Effect, Layer, Redacted, Schedule } from "effect"
import { Auth, RuntimeServer } from "../src/index.js"
import { request, TOKEN } from "./RawHttp.js"

/**
 * Two servers over one Runtime: the default one (reads on the fast path) and one with `fastReads: false` (everything
 * through `HttpApiBuilder`). Every read must answer the same status, content type and body on both.
 */
const slowPort = Effect.map(HttpServer.HttpServer, (s) => (s.address._tag === "TcpAddress" ? s.address.port : 0))

const servers = Effect.gen(function*() {
  const auth = Auth.token(Redacted.make(TOKEN))
  const slow = yield* Layer.build(RuntimeServer.layer({ host: "127.0.0.1", port: 0, auth, fastReads: false }))
  return yield* Effect.provide(slowPort, slow)
})

const serve = RuntimeServer.layerTest({ auth: Auth.token(Redacted.make(TOKEN)) }).pipe(
  Layer.provideMerge(layerMemory({ policy: testPolicy, runtimeId: "rt-fast" }))
)

describe("the read fast path", () => {
  it.live("answers every read exactly as the HttpApi does, errors included", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime.Runtime
      const port = yield* servers
      yield* runtime.createWorker({ worker_id: Ids.WorkerId.make("a"), display_name: "A", metadata: { k: "v" } })
      yield* runtime.createWorker({
        worker_id: Ids.WorkerId.make("b"),
        display_name: "B",
        scope: { allow: [{ path: "/srv/b", access: "write" }] }
      })
      yield* runtime.sendInput("a", { text: "hello fast path" })
      yield* runtime.getWorker("a").pipe(
        Effect.filterOrFail((w) => w.status === "idle", () => "running"),
        Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("10 seconds")))
      )
      yield* runtime.stop("b")

      const reads: ReadonlyArray<readonly [string, string | null | undefined]> = [
        ["/healthz", null],
        ["/readyz", null],
        ["/v1/runtime", undefined],
        ["/v1/runtime/usage", undefined],
        ["/v1/runtime/usage?limit=1", undefined],
        ["/v1/runtime/diagnostics?limit=5", undefined],
        ["/v1/workers", undefined],
        ["/v1/workers?status=stopped", undefined],
        ["/v1/workers?limit=1", undefined],
        ["/v1/workers/a", undefined],
        ["/v1/workers/b", undefined],
        ["/v1/workers/a/transcript", undefined],
        ["/v1/workers/a/transcript?limit=1", undefined],
        ["/v1/workers/missing", undefined],
        ["/v1/workers/bad..id", undefined],
        ["/v1/workers?limit=0", undefined],
        ["/v1/workers?limit=ten", undefined],
        ["/v1/workers?limit=1&limit=2", undefined],
        ["/v1/workers/a", "wrong-token-0123456789012"],
        ["/v1/runtime", null],
        ["/v1/nothing", undefined]
      ]
      for (const [path, token] of reads) {
        const fast = yield* request("GET", path, { token })
        const slow = yield* request("GET", path, { token, port })
        assert.strictEqual(fast.status, slow.status, path)
        assert.strictEqual(fast.headers["content-type"], slow.headers["content-type"], path)
        assert.deepStrictEqual(fast.json, slow.json, path)
      }
      const fast = yield* request("GET", "/v1/workers/a")
      assert.strictEqual(fast.json.worker_id, "a")
    }).pipe(Effect.scoped, Effect.provide(serve)))

  it.live("a read that fails on the fast path is answered by the HttpApi (a draining runtime's /readyz)", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime.Runtime
      assert.strictEqual((yield* request("GET", "/readyz", { token: null })).status, 200)
      yield* runtime.drain(0)
      const reply = yield* request("GET", "/readyz", { token: null })
      assert.strictEqual(reply.status, 503)
      assert.strictEqual(reply.json._tag, "RuntimeUnavailable")
    }).pipe(Effect.provide(serve)))
})
