import { assert, describe, it } from "@effect/vitest"
import { Cursor, Domain } from "@yoi/worker-runtime"
import { Chunk, Duration, Effect, Either, Exit, Fiber, Option, Schema, Scope, Stream } from "effect"
import * as NodePath from "node:path"
import * as CompositeCursor from "../src/CompositeCursor.js"
import * as Hub from "../src/internal/Hub.js"
import {
  call,
  closedPort,
  connectSse,
  eventually,
  fastRemote,
  type SseFrame,
  startBackend,
  startRuntimeServer,
  tempDir
} from "./support.js"

const REMOTE_TOKEN = "remote-events-token-51c0"

const twoRuntimes = (endpoint: string) => ({
  embedded: { runtime_id: "local", store: "memory" },
  remotes: [{ runtime_id: "gpu-box", endpoint, token: { env: "GPU_BOX_TOKEN" } }]
})

const positions = (id: string) => Either.getOrThrow(CompositeCursor.decode(id))
const seqOf = (cursor: string) => Either.getOrThrow(Cursor.decode(cursor)).seq

/** The events of a Backend stream, decoded with the event union as a browser client would; marks left out. */
const decodeEvent = Schema.decodeUnknownSync(Domain.RuntimeEvent)
const isMark = (f: SseFrame) => f.event === "stream.live" || f.event === "stream.bookmark"
const events = (frames: ReadonlyArray<SseFrame>) =>
  frames.filter((f) => f.event !== "stream.error" && !isMark(f)).map((f) => decodeEvent(f.data))

/** Connects to /api/events until the connect frame names a position for every runtime (the remote is followed). */
const connectAll = (client: Parameters<typeof connectSse>[0], runtimes: ReadonlyArray<string>) =>
  eventually(
    Effect.gen(function*() {
      const sse = yield* connectSse(client, "/api/events")
      yield* eventually(Effect.sync(() => sse.raw()), (raw) => raw.includes("\n\n"), "the connect frame")
      const id = /^: connected\nid: (\S+)\n\n/.exec(sse.raw())?.[1]
      return { sse, id }
    }),
    ({ id }) => id !== undefined && runtimes.every((r) => positions(id).has(r)),
    "a connect frame with every runtime's position"
  )

/** The events of `runtime` after the given cursor, as the always-connected stream saw them. */
const after = (all: ReadonlyArray<Domain.RuntimeEvent>, runtime: string, cursor: string | undefined) =>
  all.filter((e) => e.runtime_id === runtime && (cursor === undefined || e.seq > seqOf(cursor)))

describe("GET /api/events (all runtimes)", () => {
  it.scopedLive("merges the embedded and the remote runtime; the composite cursor resumes both with no gap", () =>
    Effect.gen(function*() {
      const remote = yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "gpu-box" })
      const { client } = yield* startBackend(twoRuntimes(remote.url), {
        env: { GPU_BOX_TOKEN: REMOTE_TOKEN },
        runtimes: { ...fastRemote, remote: { ...fastRemote.remote, backlog: 8 } }
      })
      const { sse: watcher, id: startId } = yield* connectAll(client, ["local", "gpu-box"])
      assert.strictEqual(watcher.status, 200)
      assert.strictEqual(watcher.headers["content-type"], "text/event-stream")

      const a = (yield* call(client, "POST", "/api/runtimes/local/workers", { body: { display_name: "A" } })).json.worker
      const b = (yield* call(client, "POST", "/api/runtimes/gpu-box/workers", { body: { display_name: "B" } })).json
        .worker
      yield* watcher.waitFor((f) => f.filter((x) => x.event === "worker.created").length === 2, "both creations")
      const resumeAt = watcher.frames().at(-1)!.id!
      assert.deepStrictEqual([...positions(resumeAt).keys()].sort(), ["gpu-box", "local"])

      // Things happen on both runtimes while a second browser is away.
      for (const [runtime, id] of [["local", a.worker_id], ["gpu-box", b.worker_id]] as const) {
        yield* call(client, "POST", `/api/runtimes/${runtime}/workers/${id}/stop`)
        yield* call(client, "POST", `/api/runtimes/${runtime}/workers/${id}/restore`)
        yield* call(client, "POST", `/api/runtimes/${runtime}/workers/${id}/input`, { body: { text: `hi ${runtime}` } })
      }
      const completed = (f: ReadonlyArray<SseFrame>) => f.filter((x) => x.event === "turn.completed").length === 2
      yield* watcher.waitFor(completed, "both turns")
      const all = events(watcher.frames())
      assert.isTrue(all.every((e, i) => i === 0 || e.runtime_id !== all[i - 1]!.runtime_id || e.seq > all[i - 1]!.seq))

      for (const how of ["header", "query"] as const) {
        const resumed = yield* connectSse(
          client,
          how === "query" ? `/api/events?cursor=${resumeAt}` : "/api/events",
          how === "header" ? { headers: { "last-event-id": resumeAt } } : {}
        )
        yield* resumed.waitFor(completed, `the resumed stream (${how})`)
        const got = events(resumed.frames())
        for (const runtime of ["local", "gpu-box"]) {
          assert.deepStrictEqual(
            got.filter((e) => e.runtime_id === runtime).map((e) => e.cursor),
            after(all, runtime, positions(resumeAt).get(runtime)).map((e) => e.cursor),
            `${runtime} after the composite cursor (${how})`
          )
        }
        // Every frame's id is a composite cursor that holds the position of that frame's runtime.
        for (const frame of resumed.frames().filter((f) => !isMark(f))) {
          const event = decodeEvent(frame.data)
          assert.strictEqual(positions(frame.id!).get(event.runtime_id), event.cursor)
        }
      }

      // From the very first cursor the remote part is older than the Backend's small ring (8 events): it is served
      // by a dedicated upstream subscription, with the same result.
      const fromStart = yield* connectSse(client, `/api/events?cursor=${startId}`)
      yield* fromStart.waitFor(completed, "the stream from the first cursor")
      for (const runtime of ["local", "gpu-box"]) {
        assert.deepStrictEqual(
          events(fromStart.frames()).filter((e) => e.runtime_id === runtime).map((e) => e.cursor),
          after(all, runtime, positions(startId!).get(runtime)).map((e) => e.cursor)
        )
      }
      assert.isAbove(after(all, "gpu-box", undefined).length, 8)

      const earliest = yield* connectSse(client, "/api/events?cursor=earliest")
      yield* earliest.waitFor(completed, "the stream from earliest")
      assert.strictEqual(events(earliest.frames())[0]!.seq, 1)
    }))

  it.scopedLive("answers a malformed or foreign cursor with a typed 400 before streaming", () =>
    Effect.gen(function*() {
      const { client } = yield* startBackend({ embedded: { runtime_id: "local", store: "memory" } })
      const garbage = yield* call(client, "GET", "/api/events?cursor=%25%25%25")
      assert.strictEqual(garbage.status, 400)
      assert.strictEqual(garbage.json._tag, "CursorInvalid")
      const notJson = yield* call(client, "GET", `/api/events?cursor=${Buffer.from("nope").toString("base64url")}`)
      assert.strictEqual(notJson.json._tag, "CursorInvalid")
      const foreign = CompositeCursor.encode(new Map([["local", Cursor.encode("otherepoch", 3)]]))
      const reply = yield* call(client, "GET", `/api/events?cursor=${foreign}`)
      assert.strictEqual(reply.status, 400)
      assert.strictEqual(reply.json._tag, "CursorInvalid")
      assert.strictEqual(reply.json.runtime_id, "local")
    }))
})

describe("the upstream subscription of a remote", () => {
  it.scopedLive("reconnects when the remote restarts and resumes from its cursor: the browser sees no gap", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const store = NodePath.join(dir, "remote.db")
      const port = yield* closedPort
      const first = yield* Scope.make()
      yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "gpu-box", sqlite: store }, port).pipe(Scope.extend(first))
      const { client } = yield* startBackend(twoRuntimes(`http://127.0.0.1:${port}`), {
        env: { GPU_BOX_TOKEN: REMOTE_TOKEN }
      })
      const { sse } = yield* connectAll(client, ["local", "gpu-box"])
      const base = "/api/runtimes/gpu-box/workers"
      yield* call(client, "POST", base, { body: { display_name: "Before" } })
      yield* sse.waitFor((f) => f.some((x) => x.event === "worker.created"), "the first creation")

      yield* Scope.close(first, Exit.void)
      const down = yield* call(client, "POST", base, { body: { display_name: "Lost" } })
      assert.oneOf(down.status, [503, 504])
      yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "gpu-box", sqlite: store }, port)
      yield* eventually(
        call(client, "POST", base, { body: { display_name: "After" } }),
        (r) => r.status === 201,
        "the restarted remote"
      )
      const frames = yield* sse.waitFor(
        (f) => events(f).some((e) => e.kind === "worker.created" && e.data.worker.display_name === "After"),
        "the creation after the restart"
      )
      const remote = events(frames).filter((e) => e.runtime_id === "gpu-box")
      assert.isFalse(frames.some((f) => f.event === "stream.lagged"))
      // The same store: sequence numbers continue, and none is missing or repeated.
      assert.deepStrictEqual(remote.map((e) => e.seq), remote.map((_, i) => remote[0]!.seq + i))
    }))

  it.scopedLive("a remote that comes back with a new store ends browser streams with stream.lagged", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const first = yield* Scope.make()
      yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "gpu-box" }, port).pipe(Scope.extend(first))
      const { client } = yield* startBackend(twoRuntimes(`http://127.0.0.1:${port}`), {
        env: { GPU_BOX_TOKEN: REMOTE_TOKEN }
      })
      const worker = yield* connectAll(client, ["gpu-box"])
      yield* call(client, "POST", "/api/runtimes/gpu-box/workers", { body: { display_name: "Gone" } })
      yield* worker.sse.waitFor((f) => f.some((x) => x.event === "worker.created"), "the creation")
      yield* Scope.close(first, Exit.void)
      yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "gpu-box" }, port)
      const frames = yield* worker.sse.waitFor((f) => f.some((x) => x.event === "stream.lagged"), "the lag notice")
      const lagged = frames.find((f) => f.event === "stream.lagged")!
      assert.strictEqual(lagged.id, (lagged.data as any).data.resume_cursor)
      const resumed = yield* call(client, "GET", `/api/events?cursor=${lagged.id}`)
      assert.strictEqual(resumed.status, 400)
      assert.strictEqual(resumed.json._tag, "CursorInvalid")
      assert.strictEqual(resumed.json.runtime_id, "gpu-box")
    }))
})

describe("GET /api/runtimes/{runtime_id}/workers/{worker_id}/events", () => {
  it.scopedLive("streams one remote worker from a transcript cursor: list, then watch, no gap, no duplicate", () =>
    Effect.gen(function*() {
      const remote = yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "gpu-box" })
      const { client } = yield* startBackend(twoRuntimes(remote.url), { env: { GPU_BOX_TOKEN: REMOTE_TOKEN } })
      yield* connectAll(client, ["gpu-box"])
      const base = "/api/runtimes/gpu-box/workers"
      const w = (yield* call(client, "POST", base, { body: { display_name: "W" } })).json.worker
      const other = (yield* call(client, "POST", base, { body: { display_name: "Other" } })).json.worker
      const page = yield* call(client, "GET", `${base}/${w.worker_id}/transcript`)
      const stream = yield* connectSse(client, `${base}/${w.worker_id}/events?cursor=${page.json.cursor}`)
      assert.strictEqual(stream.status, 200)
      yield* call(client, "POST", `${base}/${other.worker_id}/input`, { body: { text: "not mine" } })
      yield* call(client, "POST", `${base}/${w.worker_id}/input`, { body: { text: "mine" } })
      const frames = yield* stream.waitFor((f) => f.some((x) => x.event === "turn.completed"), "the worker's turn")
      const got = events(frames)
      assert.isTrue(got.every((e) => e.worker_id === w.worker_id))
      assert.strictEqual(got[0]!.kind, "turn.started")
      assert.isTrue(frames.every((f) => f.id === (f.data as Domain.RuntimeEvent).cursor))
      const direct = yield* Effect.scoped(Effect.gen(function*() {
        const s = yield* remote.runtime.subscribe({ cursor: page.json.cursor, worker_id: w.worker_id })
        return Chunk.toArray(yield* Stream.runCollect(Stream.take(s, got.length)))
      }))
      assert.deepStrictEqual(got.map((e) => e.cursor), direct.map((e) => e.cursor))

      const unknown = yield* call(client, "GET", `${base}/w_nobody/events`)
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(unknown.json._tag, "WorkerNotFound")
      const embedded = yield* call(client, "GET", "/api/runtimes/local/workers/w_nobody/events")
      assert.strictEqual(embedded.json._tag, "WorkerNotFound")
    }))
})

const event = (seq: number, workerId = "w_a", epoch = "epoch1"): Domain.RuntimeEvent => ({
  cursor: Cursor.encode(epoch, seq),
  seq,
  runtime_id: "gpu-box",
  worker_id: workerId,
  kind: "worker.status",
  at: new Date(0).toISOString(),
  data: { status: seq % 2 === 0 ? "idle" : "running", previous: seq % 2 === 0 ? "running" : "idle" }
})

describe("the event hub behind one upstream subscription", () => {
  it.scoped("replays from its ring after a covered cursor, then goes live; older cursors go upstream", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ runtimeId: "gpu-box", backlog: 4, subscriberBuffer: 100 })
      hub.start(Cursor.encode("epoch1", 0))
      yield* hub.publish([1, 2, 3, 4, 5, 6].map((s) => event(s)))
      assert.deepStrictEqual(hub.covers(Cursor.encode("epoch1", 1)), { _tag: "Upstream" })
      assert.deepStrictEqual(hub.covers(Cursor.encode("epoch1", 2)), { _tag: "Covered", seq: 2 })
      assert.deepStrictEqual(hub.covers(Cursor.encode("epoch1", 9)), { _tag: "Covered", seq: 9 })
      assert.deepStrictEqual(hub.covers(Cursor.encode("epoch2", 4)), { _tag: "Upstream" })
      assert.deepStrictEqual(hub.covers("garbage"), { _tag: "Malformed" })

      const stream = yield* hub.subscribe({ after: 3 })
      const fiber = yield* Effect.fork(Stream.runCollect(Stream.take(stream, 5)))
      yield* hub.publish([event(7), event(8)])
      assert.deepStrictEqual(Chunk.toArray(yield* Fiber.join(fiber)).map((e) => e.seq), [4, 5, 6, 7, 8])

      const ahead = yield* hub.subscribe({ after: 9 })
      const aheadFiber = yield* Effect.fork(Stream.runCollect(Stream.take(ahead, 1)))
      yield* hub.publish([event(9), event(10)])
      assert.deepStrictEqual(Chunk.toArray(yield* Fiber.join(aheadFiber)).map((e) => e.seq), [10])
      assert.deepStrictEqual(hub.head(), Option.some(Cursor.encode("epoch1", 10)))
    }))

  it.scoped("ends a subscriber that falls behind with stream.lagged carrying the cursor to resume from", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ runtimeId: "gpu-box", backlog: 100, subscriberBuffer: 3 })
      hub.start(Cursor.encode("epoch1", 0))
      const slow = yield* hub.subscribe({})
      const other = yield* hub.subscribe({ workerId: "w_b" })
      yield* hub.publish([1, 2, 3, 4, 5, 6].map((s) => event(s)))
      const got = Chunk.toArray(yield* Stream.runCollect(slow))
      assert.deepStrictEqual(got.map((e) => e.kind), ["worker.status", "worker.status", "worker.status", "stream.lagged"])
      const lagged = got[3]!
      assert.strictEqual(lagged.cursor, Cursor.encode("epoch1", 3))
      assert.deepStrictEqual((lagged.data as { resume_cursor: string }).resume_cursor, Cursor.encode("epoch1", 3))
      assert.strictEqual(hub.subscriberCount(), 1)
      // A filtered subscriber only counts its own events.
      yield* hub.publish([event(7, "w_b")])
      const fiber = yield* Effect.fork(Stream.runCollect(Stream.take(other, 1)))
      assert.deepStrictEqual(Chunk.toArray(yield* Fiber.join(fiber)).map((e) => e.seq), [7])
    }))

  it.scoped("a thousand stalled browsers each lag out after their own buffer while the upstream keeps flowing", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ runtimeId: "gpu-box", backlog: 100, subscriberBuffer: 3 })
      hub.start(Cursor.encode("epoch1", 0))
      const streams = yield* Effect.forEach(
        Array.from({ length: 1_000 }, (_, i) => i),
        (i) => Effect.map(hub.subscribe(i % 2 === 0 ? {} : { workerId: "w_b" }), (stream) => ({ i, stream }))
      )
      yield* hub.publish(Array.from({ length: 20 }, (_, i) => event(i + 1, i % 2 === 0 ? "w_a" : "w_b")))
      assert.strictEqual(hub.subscriberCount(), 0)
      for (const { i, stream } of streams) {
        const got = Chunk.toArray(yield* Stream.runCollect(stream))
        assert.deepStrictEqual(got.map((e) => e.seq), i % 2 === 0 ? [1, 2, 3, 3] : [2, 4, 6, 6])
        assert.strictEqual(got[3]!.kind, "stream.lagged")
      }
    }))

  it.scoped("ends every subscriber when the upstream loses continuity (a new epoch)", () =>
    Effect.gen(function*() {
      const hub = yield* Hub.make({ runtimeId: "gpu-box", backlog: 100, subscriberBuffer: 100 })
      hub.start(Cursor.encode("epoch1", 0))
      const stream = yield* hub.subscribe({})
      yield* hub.publish([event(1), event(1, "w_a", "epoch2")])
      const got = Chunk.toArray(yield* Stream.runCollect(stream.pipe(Stream.timeout(Duration.seconds(5)))))
      assert.deepStrictEqual(got.map((e) => e.kind), ["worker.status", "stream.lagged"])
      assert.deepStrictEqual(hub.covers(Cursor.encode("epoch1", 1)), { _tag: "Upstream" })
      yield* hub.reset
      assert.isTrue(Option.isNone(hub.head()))
    }))
})
