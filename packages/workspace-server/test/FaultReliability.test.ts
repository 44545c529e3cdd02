import { echo } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { type Domain, type Runtime } from "@yoi/worker-runtime"
import { Chunk, Effect, Exit, Scope, Stream } from "effect"
import * as NodePath from "node:path"
import { FaultProxy, follow, send, startServedBackend, untyped } from "./ReliabilitySupport.js"
import { eventually, startRuntimeServer, tempDir, TOKEN } from "./support.js"

// The fast subset of scripts/reliability/faults.ts: a remote runtime on SQLite behind a TCP proxy that stalls, cuts
// connections, and loses the runtime (which comes back on another port); an embedded runtime and another remote keep
// serving, the remote's status is reported, its failures are typed, and the Backend's event stream delivers each of
// its durable events once, in order, once it is back.

const GPU_TOKEN = "fault-test-gpu-token-8b21f0"
const OTHER_TOKEN = "fault-test-other-token-4d77"
const auth = ["authorization", `Bearer ${TOKEN}`] as const
const json = ["content-type", "application/json"] as const
const TERMINAL = new Set(["turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"])

describe("faults between the Backend and a remote runtime", () => {
  it.scopedLive("stall, cut connections, restart: others keep serving, status and errors are right, no event lost", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("yoi-fault-test-")
      const store = NodePath.join(dir, "gpu.db")
      const startGpu = Effect.gen(function*() {
        const scope = yield* Scope.make()
        const served = yield* Scope.extend(startRuntimeServer(GPU_TOKEN, { runtimeId: "gpu", sqlite: store }), scope)
        return { ...served, port: Number(new URL(served.url).port), scope }
      })
      let gpu = yield* startGpu
      const other = yield* startRuntimeServer(OTHER_TOKEN, { runtimeId: "other" })
      const proxy = yield* FaultProxy.start(gpu.port)
      const port = yield* startServedBackend({
        embedded: { runtime_id: "local", store: "memory" },
        remotes: [
          { runtime_id: "gpu", endpoint: proxy.url, token: { env: "GPU_TOKEN" } },
          { runtime_id: "other", endpoint: other.url, token: { env: "OTHER_TOKEN" } }
        ]
      }, { env: { GPU_TOKEN, OTHER_TOKEN }, timeout: "500 millis" })
      const seen: Array<string> = []
      const call = (method: string, path: string, body?: string) =>
        Effect.tap(
          send(port, { method, path, ...(body === undefined ? { headers: [auth] } : { headers: [auth, json], body }) }),
          (r) => Effect.sync(() => seen.push(JSON.stringify(r.headers), r.body))
        )
      const status = (rt: string) => Effect.map(call("GET", `/api/runtimes/${rt}`), (r) => JSON.parse(r.body).status as string)
      yield* eventually(status("gpu"), (s) => s === "online", "gpu online")
      yield* eventually(status("other"), (s) => s === "online", "other online")
      const all = yield* follow(port, "/api/events")
      for (const [rt, w] of [["gpu", "g1"], ["local", "l1"], ["other", "o1"]] as const) {
        const body = JSON.stringify({ worker_id: w, display_name: w, engine: echo({ chunk_size: 2, delay_ms: 5 }) })
        assert.strictEqual((yield* call("POST", `/api/runtimes/${rt}/workers`, body)).status, 201)
      }
      const turn = (rt: string, w: string) =>
        Effect.map(call("POST", `/api/runtimes/${rt}/workers/${w}/input`, "{\"text\":\"a turn streamed in many small pieces\"}"), (r) => r)
      const idle = (rt: string, w: string) =>
        eventually(call("GET", `/api/runtimes/${rt}/workers/${w}`), (r) => r.status === 200 && JSON.parse(r.body).status !== "running", `${w} idle`)
      /** The healthy runtimes answer a command and a read while the remote is in trouble. */
      const othersServe = Effect.forEach([["local", "l1"], ["other", "o1"]] as const, ([rt, w]) =>
        Effect.gen(function*() {
          yield* idle(rt, w)
          assert.strictEqual((yield* turn(rt, w)).status, 202, `${rt} input during a fault`)
          assert.strictEqual((yield* call("GET", `/api/runtimes/${rt}/workers/${w}/transcript`)).status, 200)
        }))

      // A stall mid-stream: commands time out (typed), the remote is reported offline, the others carry on.
      assert.strictEqual((yield* turn("gpu", "g1")).status, 202)
      proxy.stall()
      const stalled = yield* call("GET", "/api/runtimes/gpu/workers/g1")
      assert.isUndefined(untyped(stalled, { unavailable: true }), stalled.body)
      assert.include(["UpstreamTimeout", "RuntimeUnavailable"], JSON.parse(stalled.body)._tag)
      yield* othersServe
      yield* eventually(status("gpu"), (s) => s === "offline", "gpu reported offline while stalled")
      proxy.pass()
      yield* eventually(status("gpu"), (s) => s === "online", "gpu online after the stall")
      yield* idle("gpu", "g1")

      // Connections cut again and again in the middle of a turn.
      assert.strictEqual((yield* turn("gpu", "g1")).status, 202)
      for (let i = 0; i < 4; i++) {
        yield* Effect.sleep("60 millis")
        proxy.cut()
      }
      yield* eventually(status("gpu"), (s) => s === "online", "gpu online after the cuts")
      yield* idle("gpu", "g1")

      // The remote goes away (its server and store close) and comes back on another port.
      yield* Scope.close(gpu.scope, Exit.void)
      yield* eventually(status("gpu"), (s) => s === "offline", "gpu reported offline when down")
      const down = yield* call("POST", "/api/runtimes/gpu/workers/g1/input", "{\"text\":\"x\"}")
      assert.strictEqual(down.status, 503, down.body)
      assert.strictEqual(JSON.parse(down.body)._tag, "RuntimeUnavailable")
      yield* othersServe
      gpu = yield* startGpu
      proxy.retarget(gpu.port)
      yield* eventually(status("gpu"), (s) => s === "online", "gpu online after the restart")
      const last = yield* turn("gpu", "g1")
      assert.strictEqual(last.status, 202, last.body)
      const lastTurn = JSON.parse(last.body).turn_id as string
      yield* eventually(Effect.sync(() => all.frames), (fs) => fs.some((f) => TERMINAL.has(f.event ?? "") && f.data.turn_id === lastTurn), "the last gpu turn through /api/events", "20 seconds")

      // Every durable event the remote retains reached the browser once, in order.
      const runtime: Runtime.RuntimeService = gpu.runtime
      const head = yield* runtime.headCursor
      const log = yield* Effect.scoped(Effect.flatMap(runtime.subscribe({ cursor: "earliest" }), (events) =>
        Stream.runCollect(Stream.takeUntil(events, (e: Domain.RuntimeEvent) => e.cursor === head))))
      const durable = Chunk.toReadonlyArray(log).map((e) => e.seq)
      const got = all.frames.filter((f) => f.data.runtime_id === "gpu" && f.event !== "stream.lagged").map((f) => f.data.seq as number)
      assert.isAbove(durable.length, 10)
      assert.deepStrictEqual(durable.filter((s) => !got.includes(s)), [], "durable gpu events never delivered")
      assert.isTrue(got.every((s, i) => i === 0 || s > got[i - 1]!), "gpu events repeated or out of order")

      // Nothing the Backend answered names the remote's endpoint or token.
      const everything = [...seen, ...all.frames.map((f) => JSON.stringify(f))].join("\n")
      for (const canary of [GPU_TOKEN, OTHER_TOKEN, `127.0.0.1:${proxy.port}`, `127.0.0.1:${gpu.port}`, store]) {
        assert.notInclude(everything, canary)
      }
    }), 90_000)
})
