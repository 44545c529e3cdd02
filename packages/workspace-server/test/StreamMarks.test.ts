import { assert, describe, it } from "@effect/vitest"
import { connect, isMark, type RawStream } from "@yoi/runtime-server/testing"
import { Cursor, type Domain, type Runtime } from "@yoi/worker-runtime"
import { Chunk, Effect, Either, Fiber, Stream } from "effect"
import * as CompositeCursor from "../src/CompositeCursor.js"
import { call, eventually, fastRemote, startBackend, startRuntimeServer, TOKEN } from "./support.js"

const REMOTE_TOKEN = "remote-marks-token-7e21"

const positions = (id: string) => Either.getOrThrow(CompositeCursor.decode(id))
const seqOf = (cursor: string) => Either.getOrThrow(Cursor.decode(cursor)).seq

/** A Backend with an embedded runtime and a remote one, marks every 20 ms, readers dropped after 1.5 s of stall. */
const setup = (remoteOptions: Parameters<typeof startRuntimeServer>[1] = {}) =>
  Effect.gen(function*() {
    const remote = yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "gpu-box", ...remoteOptions })
    const backend = yield* startBackend({
      embedded: { runtime_id: "local", store: "memory" },
      remotes: [{ runtime_id: "gpu-box", endpoint: remote.url, token: { env: "GPU_BOX_TOKEN" } }],
      events: { bookmark_ms: 20, stall_timeout_ms: 1500 }
    }, {
      env: { GPU_BOX_TOKEN: REMOTE_TOKEN },
      runtimes: { ...fastRemote, remote: { ...fastRemote.remote, backlog: 8 } }
    })
    const port = Number(new URL(backend.url).port)
    const open = (path: string, headers: Record<string, string> = {}) => connect(path, { port, token: TOKEN, headers })
    // The hub follows the remote once a composite start names it.
    yield* eventually(
      Effect.scoped(Effect.gen(function*() {
        const s = yield* open("/api/events")
        yield* s.waitFor(() => s.items().some((i) => i._tag === "Id"), "the connect frame")
        const first = s.items().find((i) => i._tag === "Id")
        return first?._tag === "Id" && positions(first.id).has("gpu-box")
      })),
      (ok) => ok,
      "the Backend following the remote"
    )
    const create = (runtime: string, name: string, profile?: string) =>
      Effect.map(
        call(backend.client, "POST", `/api/runtimes/${runtime}/workers`, {
          body: { display_name: name, ...(profile === undefined ? {} : { engine: { profile } }) }
        }),
        (r) => r.json.worker.worker_id as string
      )
    return { remote, backend, open, create }
  })

/** Stops and restores a worker `times` times on a runtime directly: two events each time. */
const churn = (runtime: Runtime.RuntimeService, workerId: string, times: number) =>
  Effect.forEach(
    Array.from({ length: times }),
    () => Effect.zipRight(runtime.stop(workerId), runtime.restore(workerId)),
    { discard: true }
  ).pipe(Effect.orDie)

const lastBookmark = (s: RawStream) => s.all().filter((e) => e.kind === "stream.bookmark").at(-1)
/** The `id:` of the last frame received. */
const lastId = (s: RawStream) =>
  s.items().flatMap((i) => (i._tag === "Id" || (i._tag === "Event" && i.id !== undefined) ? [i.id!] : [])).at(-1)!

describe("Backend bookmarks", () => {
  it.scopedLive("quiet readers (a remote worker, /api/events with hidden events) stay resumable after 10x the backlogs", () =>
    Effect.gen(function*() {
      const { create, open, remote } = yield* setup({ eventBacklog: 10 })
      const quiet = yield* create("gpu-box", "Quiet")
      // Created on the runtime itself, outside this Backend's workspace: its events are hidden from the Backend.
      const noisy = (yield* Effect.orDie(remote.runtime.createWorker({ display_name: "Noisy" }))).worker.worker_id
      const workerPath = `/api/runtimes/gpu-box/workers/${quiet}/events`
      const workerReaders = yield* Effect.forEach(Array.from({ length: 8 }), () => open(workerPath))
      const allReaders = yield* Effect.forEach(Array.from({ length: 4 }), () => open("/api/events"))
      const readers = [...workerReaders, ...allReaders]
      for (const s of readers) yield* s.waitFor(() => s.items().some((i) => i._tag === "Id"), "the connect frame")
      const opened = lastId(workerReaders[0]!)

      yield* churn(remote.runtime, noisy, 55)
      const head = seqOf(yield* remote.runtime.headCursor)
      for (const s of workerReaders) {
        yield* s.waitFor(() => (lastBookmark(s)?.seq ?? -1) >= head, "a worker bookmark at the remote's head")
        assert.deepStrictEqual(s.events(), [])
        assert.strictEqual(lastId(s), lastBookmark(s)!.cursor)
      }
      for (const s of allReaders) {
        yield* s.waitFor(() => {
          const b = lastBookmark(s)
          return b !== undefined && seqOf(positions(b.cursor).get("gpu-box")!) >= head
        }, "a composite bookmark past the hidden events")
        assert.deepStrictEqual(s.events(), [], "no hidden event is shown")
        const b = lastBookmark(s)!
        assert.strictEqual(b.kind === "stream.bookmark" ? b.data.resume_cursor : "", b.cursor)
        assert.strictEqual(lastId(s), b.cursor)
      }
      const workerMarks = workerReaders.map((s) => lastBookmark(s)!.cursor)
      const allMarks = allReaders.map((s) => lastBookmark(s)!.cursor)
      yield* Effect.forEach(readers, (s) => s.destroy, { discard: true })

      // While they are away: the quiet worker does two things, among a little hidden noise.
      yield* Effect.orDie(remote.runtime.stop(quiet))
      yield* churn(remote.runtime, noisy, 1)
      yield* Effect.orDie(remote.runtime.restore(quiet))

      // Without bookmarks, the position they opened at has expired on the runtime itself.
      const stale = yield* open(workerPath, { "last-event-id": opened })
      assert.strictEqual(stale.status, 410)

      const expected = yield* Effect.scoped(Effect.gen(function*() {
        const s = yield* Effect.orDie(remote.runtime.subscribe({ cursor: workerMarks[0]!, worker_id: quiet }))
        return Chunk.toArray(yield* Stream.runCollect(Stream.take(s, 2)))
      }))
      assert.deepStrictEqual(expected.map((e) => e.kind), ["worker.status", "worker.status"])
      for (const from of [...workerMarks, ...allMarks]) {
        const again = yield* open(from === workerMarks[0] || workerMarks.includes(from) ? workerPath : "/api/events", {
          "last-event-id": from
        })
        assert.strictEqual(again.status, 200)
        yield* again.waitFor(() => again.events().length >= 2, "the quiet worker's two events")
        assert.deepStrictEqual(again.events().map((e) => e.cursor), expected.map((e) => e.cursor))
        assert.strictEqual(again.all().filter((e) => e.kind === "stream.live").length, 1)
        yield* again.destroy
      }
    }))
})

describe("Backend stream.live", () => {
  it.scopedLive("comes once, after every runtime's replay, to many readers opened with cursors during appends", () =>
    Effect.gen(function*() {
      const { backend, create, open, remote } = yield* setup()
      const localWorker = yield* create("local", "L")
      const remoteWorker = yield* create("gpu-box", "R")
      const watcher = yield* open("/api/events")
      const produce = Effect.gen(function*() {
        yield* churn(remote.runtime, remoteWorker, 1)
        yield* call(backend.client, "POST", `/api/runtimes/local/workers/${localWorker}/stop`)
        yield* call(backend.client, "POST", `/api/runtimes/local/workers/${localWorker}/restore`)
      })
      yield* Effect.repeatN(produce, 5)
      const producer = yield* Effect.fork(Effect.forever(Effect.zipRight(produce, Effect.sleep("2 millis"))))
      const readers = yield* Effect.forEach(Array.from({ length: 24 }, (_, i) => i), (i) =>
        Effect.gen(function*() {
          if (i % 4 === 0) return { kind: "all" as const, s: yield* open("/api/events?cursor=earliest") }
          if (i % 4 === 1) {
            yield* watcher.waitFor(() => watcher.events().length > i, "events on the watcher")
            return { kind: "all" as const, s: yield* open("/api/events", { "last-event-id": lastId(watcher) }) }
          }
          const [runtime, worker] = i % 4 === 2 ? ["local", localWorker] : ["gpu-box", remoteWorker]
          const page = yield* call(backend.client, "GET", `/api/runtimes/${runtime}/workers/${worker}/transcript`)
          return {
            kind: "worker" as const,
            s: yield* open(`/api/runtimes/${runtime}/workers/${worker}/events?cursor=${page.json.cursor}`)
          }
        }), { concurrency: 6 })
      for (const { s } of readers) {
        yield* s.waitFor(() => {
          const at = s.all().findIndex((e) => e.kind === "stream.live")
          return at >= 0 && s.all().length > at + 4
        }, "the live mark and live events")
      }
      yield* Fiber.interrupt(producer)
      for (const { kind, s } of readers) {
        assert.strictEqual(s.status, 200)
        const all = s.all()
        const lives = all.filter((e) => e.kind === "stream.live")
        assert.strictEqual(lives.length, 1)
        const live = lives[0]!
        const at = all.indexOf(live)
        const before = all.slice(0, at).filter((e) => !isMark(e))
        const after = all.slice(at + 1).filter((e) => !isMark(e))
        assert.isAbove(after.length, 0)
        const byRuntime = new Map<string, Array<number>>()
        for (const e of s.events()) byRuntime.set(e.runtime_id, [...(byRuntime.get(e.runtime_id) ?? []), e.seq])
        for (const seqs of byRuntime.values()) {
          assert.isTrue(seqs.every((seq, k) => k === 0 || seq > seqs[k - 1]!), "per runtime: in order, no duplicate")
        }
        const limit = (e: Domain.RuntimeEvent) =>
          kind === "worker" ? live.seq : seqOf(positions(live.cursor).get(e.runtime_id)!)
        assert.isTrue(before.every((e) => e.seq <= limit(e)), "history is at or before the mark")
        assert.isTrue(after.every((e) => e.seq > limit(e)), "live events are after the mark")
        if (kind === "all") {
          // A runtime whose replay ended first may already have sent live events before the mark.
          assert.isAtMost(live.kind === "stream.live" ? live.data.replayed : -1, before.length)
          assert.deepStrictEqual([...positions(live.cursor).keys()].sort(), ["gpu-box", "local"])
        }
      }
      // A stream opened at "now" has no history and no mark.
      assert.deepStrictEqual(watcher.all().filter(isMark), [])
    }))
})

describe("Backend write-stall guard", () => {
  it.scopedLive("/api/events drops readers that stop reading while events flow; they resume from their last id", () =>
    Effect.gen(function*() {
      const { backend, create, open } = yield* setup()
      // A turn that waits a minute between chunks: an input commits its text in one event, then cancel ends it.
      const worker = yield* create("local", "Big", "echo-d60000")
      const start = lastId(yield* open("/api/events").pipe(
        Effect.tap((s) => s.waitFor(() => s.items().some((i) => i._tag === "Id"), "the connect frame"))
      ))
      const healthy = yield* open("/api/events", { "last-event-id": start })
      const stalled = yield* Effect.forEach(Array.from({ length: 3 }), () => open("/api/events", { "last-event-id": start }))
      for (const s of stalled) {
        yield* s.waitFor(() => s.items().some((i) => i._tag === "Id"), "the connect frame")
        yield* s.pause
      }
      // Inputs of a million characters, each committed as one event.
      const text = "x".repeat(1000 * 1000)
      const path = `/api/runtimes/local/workers/${worker}`
      // The guard's drops, read from the Backend's own metrics (a counter of this process, so taken as a delta).
      const dropped = Effect.map(call(backend.client, "GET", "/metrics"), (r) =>
        Number(/^yoi_sse_streams_dropped_total\{server="backend"\} (\d+)/m.exec(r.text)?.[1] ?? 0))
      const droppedBefore = yield* dropped
      let turns = 0
      // Until the socket buffers are full (their size depends on the kernel: a few MiB on loopback) and the guard
      // has dropped every stalled reader; without the guard they would just wait, holding their streams, and receive
      // everything once they read again.
      while (turns < 8 || ((yield* dropped) - droppedBefore < stalled.length && turns < 60)) {
        yield* call(backend.client, "POST", `${path}/input`, { body: { text } })
        yield* call(backend.client, "POST", `${path}/cancel`)
        turns += 1
        yield* healthy.waitFor(
          () => healthy.events().filter((e) => e.kind === "turn.cancelled").length >= turns,
          "the turn on the healthy reader"
        )
      }
      assert.isAtLeast((yield* dropped) - droppedBefore, stalled.length, "every stalled reader was dropped")
      const total = healthy.events()
      for (const s of stalled) {
        // A dropped connection ends once its reader reads again: what it got is a whole prefix of the stream.
        yield* s.resume
        yield* s.waitFor(() => s.ended(), "the end of the dropped stream")
        const got = s.events()
        assert.isBelow(got.length, total.length, "it was dropped before it had everything")
        assert.deepStrictEqual(got.map((e) => e.cursor), total.slice(0, got.length).map((e) => e.cursor))
        const rest = yield* open("/api/events", { "last-event-id": lastId(s) })
        yield* rest.waitFor(() => rest.events().length >= total.length - got.length, "the rest")
        assert.deepStrictEqual(
          [...got, ...rest.events()].map((e) => e.cursor),
          total.map((e) => e.cursor),
          "no gap, no duplicate"
        )
        yield* rest.destroy
      }
    }), 90_000)
})
