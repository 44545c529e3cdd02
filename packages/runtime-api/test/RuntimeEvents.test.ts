import { HttpClient, HttpClientError, type HttpClientRequest, HttpClientResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { type Domain, SseWire } from "@yoi/worker-runtime"
import { Chunk, Effect, Either, Option, Redacted, Stream } from "effect"
import { RuntimeEvents, type RuntimeEventsOptions } from "../src/index.js"

const { SseParser } = SseWire
type SseItem = SseWire.SseItem

const parseAll = (pieces: ReadonlyArray<string>) => {
  const parser = new SseParser()
  return pieces.flatMap((p) => Either.getOrThrow(parser.feed(p)))
}

describe("SseParser", () => {
  const text = ": connected\nid: c1.start\n\n" +
    "id: c1.a\nevent: turn.delta\ndata: {\"x\":1}\n\n" +
    "data:first\r\ndata: second\r\n\r\n" +
    ": heartbeat\r\rid\nevent: e\ndata\nretry: 10\nunknown: y\n\n" +
    "id: bad\u0000id\ndata: z\n\n"
  const expected: ReadonlyArray<SseItem> = [
    { _tag: "Comment", text: "connected" },
    { _tag: "Id", id: "c1.start" },
    { _tag: "Event", event: "turn.delta", data: "{\"x\":1}", id: "c1.a" },
    { _tag: "Event", event: "message", data: "first\nsecond", id: undefined },
    { _tag: "Comment", text: "heartbeat" },
    { _tag: "Event", event: "e", data: "", id: "" },
    { _tag: "Event", event: "message", data: "z", id: undefined }
  ]

  it("parses LF, CR and CRLF lines, comments, multi-line data, id-only frames and ignores unknown fields", () => {
    assert.deepStrictEqual(parseAll([text]), expected)
  })

  it("gives the same items however the text is split, including between CR and LF", () => {
    for (let i = 0; i <= text.length; i++) {
      assert.deepStrictEqual(parseAll([text.slice(0, i), text.slice(i)]), expected, `split at ${i}`)
    }
    assert.deepStrictEqual(parseAll(text.split("")), expected, "one character at a time")
  })

  it("refuses a line longer than 16 MiB instead of buffering without bound", () => {
    const parser = new SseParser()
    const chunk = "x".repeat(1024 * 1024)
    let result: Either.Either<Array<SseItem>, string> = Either.right([])
    for (let i = 0; i < 17 && Either.isRight(result); i++) result = parser.feed(chunk)
    assert.isTrue(Either.isLeft(result))
  })
})

const event = (seq: number): Domain.RuntimeEvent => ({
  cursor: `c1.s${seq}`,
  seq,
  runtime_id: "rt",
  kind: "worker.status",
  at: "2025-01-01T00:00:00.000Z",
  data: { status: seq % 2 === 0 ? "idle" : "running", previous: seq % 2 === 0 ? "running" : "idle" }
})
const frame = (e: Domain.RuntimeEvent) => `id: ${e.cursor}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`

interface Reply {
  readonly status?: number
  readonly body?: ReadonlyArray<string>
  /** Keep the body open after the chunks (a live stream). */
  readonly hold?: boolean
  /** Fail the request as a transport error. */
  readonly refuse?: boolean
}

/**
 * An in-process runtime stand-in: an `HttpClient` that answers each attempt with the next scripted reply and
 * records the requests, so the client's protocol (headers, resume, retry) can be checked byte for byte.
 */
const scripted = (replies: ReadonlyArray<Reply>) => {
  const requests: Array<{ readonly url: URL; readonly request: HttpClientRequest.HttpClientRequest }> = []
  const client = HttpClient.make((request, url, signal) => {
    const reply = replies[Math.min(requests.length, replies.length - 1)]!
    requests.push({ url, request })
    if (reply.refuse === true) {
      return Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", description: "refused" }))
    }
    const encoder = new TextEncoder()
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of reply.body ?? []) controller.enqueue(encoder.encode(chunk))
        if (reply.hold === true) signal.addEventListener("abort", () => controller.error(new Error("aborted")))
        else controller.close()
      }
    })
    const status = reply.status ?? 200
    const contentType = status === 200 ? "text/event-stream" : "application/json"
    return Effect.succeed(
      HttpClientResponse.fromWeb(request, new Response(body, { status, headers: { "content-type": contentType } }))
    )
  })
  return { client, requests }
}

const options: RuntimeEventsOptions = {
  baseUrl: "http://runtime.test/",
  token: Redacted.make("tok"),
  initialDelay: "1 millis",
  maxDelay: "5 millis",
  maxRetries: 5
}

const eventsWith = (replies: ReadonlyArray<Reply>, o: RuntimeEventsOptions = options) => {
  const { client, requests } = scripted(replies)
  return Effect.map(
    RuntimeEvents.make(o).pipe(Effect.provideService(HttpClient.HttpClient, client)),
    (events) => ({ events, requests })
  )
}

const take = (stream: Stream.Stream<Domain.RuntimeEvent, unknown>, n: number) =>
  Effect.map(Stream.runCollect(Stream.take(stream, n)), Chunk.toArray)

describe("RuntimeEvents", () => {
  it.live("first asks with ?cursor=, then resumes with Last-Event-ID from the last event", () =>
    Effect.gen(function*() {
      const { events, requests } = yield* eventsWith([
        { body: [": connected\nid: c1.s0\n\n", frame(event(1)) + frame(event(2))] },
        { body: [": connected\nid: c1.s2\n\n", frame(event(3))], hold: true }
      ])
      const got = yield* take(events.stream({ cursor: "c1.s0", kinds: ["worker.status", "turn.delta"] }), 3)
      assert.deepStrictEqual(got.map((e) => e.seq), [1, 2, 3])
      const [first, second] = requests
      assert.strictEqual(first!.url.pathname, "/v1/events")
      assert.strictEqual(first!.url.searchParams.get("cursor"), "c1.s0")
      assert.strictEqual(first!.url.searchParams.get("kinds"), "worker.status,turn.delta")
      assert.strictEqual(first!.request.headers["authorization"], "Bearer tok")
      assert.strictEqual(first!.request.headers["accept"], "text/event-stream")
      assert.isUndefined(first!.request.headers["last-event-id"])
      assert.strictEqual(second!.request.headers["last-event-id"], "c1.s2")
      assert.isNull(second!.url.searchParams.get("cursor"))
    }))

  it.live("an event of a kind this client does not know is delivered as \"other\" and the stream goes on", () =>
    Effect.gen(function*() {
      const future = "id: c1.s2\nevent: worker.renamed\ndata: " + JSON.stringify({
        cursor: "c1.s2",
        seq: 2,
        runtime_id: "rt",
        worker_id: "w_1",
        kind: "worker.renamed",
        at: "2025-01-01T00:00:00.000Z",
        data: { to: "Ada" }
      }) + "\n\n"
      const { events, requests } = yield* eventsWith([
        { body: [frame(event(1)) + future + frame(event(3))], hold: true }
      ])
      const got = yield* take(events.stream(), 3)
      assert.deepStrictEqual(got.map((e) => [e.seq, e.kind]), [[1, "worker.status"], [2, "other"], [3, "worker.status"]])
      const other = got[1]!
      assert.deepStrictEqual(other.kind === "other" ? [other.other_kind, other.data, other.worker_id] : [], [
        "worker.renamed",
        { to: "Ada" },
        "w_1"
      ])
      assert.strictEqual(requests.length, 1)
    }))

  it.live("on another route (the Backend's), resumes from each frame's id, not the envelope's cursor", () =>
    Effect.gen(function*() {
      const merged = (e: Domain.RuntimeEvent, id: string) =>
        `id: ${id}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`
      const { events, requests } = yield* eventsWith([
        { body: [": connected\nid: m.0\n\n", merged(event(1), "m.1")] },
        { body: [merged(event(2), "m.2")], hold: true }
      ], {
        ...options,
        path: (workerId) => (workerId === undefined ? "/api/events" : `/api/x/workers/${workerId}/events`)
      })
      const follower = events.follow({})
      const got = yield* take(follower.events, 2)
      assert.deepStrictEqual(got.map((e) => e.cursor), ["c1.s1", "c1.s2"])
      assert.deepStrictEqual(requests.map((r) => r.url.pathname), ["/api/events", "/api/events"])
      assert.strictEqual(requests[1]!.request.headers["last-event-id"], "m.1")
      assert.deepStrictEqual(yield* follower.lastCursor, Option.some("m.2"))
    }))

  it.live("a stream that drops before its first event resumes from the start the runtime announced", () =>
    Effect.gen(function*() {
      const { events, requests } = yield* eventsWith([
        { body: [": connected\nid: c1.s9\n\n"] },
        { body: [frame(event(10))], hold: true }
      ])
      const follower = events.follow({ workerId: "w_1" })
      assert.deepStrictEqual(yield* follower.lastCursor, Option.none())
      const got = yield* take(follower.events, 1)
      assert.strictEqual(got[0]!.seq, 10)
      assert.strictEqual(requests[0]!.url.pathname, "/v1/workers/w_1/events")
      assert.isNull(requests[0]!.url.searchParams.get("cursor"))
      assert.strictEqual(requests[1]!.request.headers["last-event-id"], "c1.s9")
      assert.deepStrictEqual(yield* follower.lastCursor, Option.some("c1.s10"))
    }))

  it.live("stream.lagged and stream.error end a connection, are not emitted, and resume from their cursor", () =>
    Effect.gen(function*() {
      const lagged: Domain.RuntimeEvent = {
        ...event(1),
        kind: "stream.lagged",
        data: { resume_cursor: "c1.s1", message: "fell behind" }
      }
      const { events, requests } = yield* eventsWith([
        { body: [frame(event(1)) + frame(lagged)] },
        {
          body: [
            frame(event(2)) +
            "event: stream.error\ndata: {\"_tag\":\"RuntimeUnavailable\",\"message\":\"store\",\"resume_cursor\":\"c1.s2\"}\n\n"
          ],
          hold: true
        },
        { body: [frame(event(3))], hold: true }
      ])
      const got = yield* take(events.stream({ cursor: "c1.s0" }), 3)
      assert.deepStrictEqual(got.map((e) => `${e.kind}:${e.seq}`), ["worker.status:1", "worker.status:2", "worker.status:3"])
      assert.deepStrictEqual(requests.map((r) => r.request.headers["last-event-id"]), [undefined, "c1.s1", "c1.s2"])
    }))

  it.live("retries transport failures and 5xx with backoff, then gives up with RuntimeUnavailable", () =>
    Effect.gen(function*() {
      const recovering = yield* eventsWith([
        { refuse: true },
        { status: 503, body: ["{\"_tag\":\"RuntimeUnavailable\",\"message\":\"too many event streams\"}"] },
        { status: 500, body: ["oops"] },
        { body: [frame(event(1))], hold: true }
      ])
      assert.deepStrictEqual((yield* take(recovering.events.stream(), 1)).map((e) => e.seq), [1])
      assert.strictEqual(recovering.requests.length, 4)

      const down = yield* eventsWith([{ status: 503, body: ["{}"] }], { ...options, maxRetries: 2 })
      const error = yield* Stream.runDrain(down.events.stream()).pipe(Effect.flip)
      assert.strictEqual(error._tag, "RuntimeUnavailable")
      assert.strictEqual(down.requests.length, 3)
    }))

  it.live("answers before the stream are typed and final: 410 CursorExpired, 400, 404, 401", () =>
    Effect.gen(function*() {
      const failWith = (reply: Reply) =>
        Effect.flatMap(eventsWith([reply]), ({ events, requests }) =>
          Effect.map(Stream.runDrain(events.stream({ cursor: "c1.old" })).pipe(Effect.flip), (e) => ({ e, requests })))
      const expired = yield* failWith({
        status: 410,
        body: ["{\"_tag\":\"CursorExpired\",\"cursor\":\"c1.old\",\"earliest_cursor\":\"c1.e\",\"message\":\"gone\"}"]
      })
      assert.strictEqual(expired.e._tag, "CursorExpired")
      assert.strictEqual(expired.e._tag === "CursorExpired" ? expired.e.earliest_cursor : "", "c1.e")
      assert.strictEqual(expired.requests.length, 1)
      const invalid = yield* failWith({
        status: 400,
        body: ["{\"_tag\":\"CursorInvalid\",\"cursor\":\"c1.old\",\"message\":\"foreign\"}"]
      })
      assert.strictEqual(invalid.e._tag, "CursorInvalid")
      const missing = yield* failWith({
        status: 404,
        body: ["{\"_tag\":\"WorkerNotFound\",\"worker_id\":\"w_x\",\"message\":\"no\"}"]
      })
      assert.strictEqual(missing.e._tag, "WorkerNotFound")
      const unauthorized = yield* failWith({ status: 401, body: ["not json"] })
      assert.strictEqual(unauthorized.e._tag, "Unauthorized")
      assert.strictEqual(unauthorized.requests.length, 1)
    }))

  it.live("a connection silent past the idle timeout is dropped and resumed", () =>
    Effect.gen(function*() {
      const { events, requests } = yield* eventsWith([
        { body: [frame(event(1))], hold: true },
        { body: [frame(event(2))], hold: true }
      ], { ...options, idleTimeout: "50 millis" })
      const got = yield* take(events.stream(), 2)
      assert.deepStrictEqual(got.map((e) => e.seq), [1, 2])
      assert.strictEqual(requests[1]!.request.headers["last-event-id"], "c1.s1")
    }))

  it.live("an envelope this client cannot read fails the stream instead of being skipped", () =>
    Effect.gen(function*() {
      const { events } = yield* eventsWith([{ body: ["id: c1.s1\nevent: worker.status\ndata: {\"nope\":1}\n\n"] }])
      const error = yield* Stream.runDrain(events.stream()).pipe(Effect.flip)
      assert.strictEqual(error._tag, "RuntimeUnavailable")
      assert.match(error.message, /cannot read/)
    }))
})
