import { HttpClient, HttpClientResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Redacted, Stream } from "effect"
import { SseWire } from "@yoi/worker-runtime"
import { RuntimeEvents } from "../src/index.js"

const { SseParser } = SseWire

describe("SseParser (review)", () => {
  it("an empty piece between a CR and its LF does not turn the LF into a blank line", () => {
    const parser = new SseParser()
    const items = ["data: a\r", "", "\ndata: b\r\n\r\n"].flatMap((p) => Either.getOrThrow(parser.feed(p)))
    assert.deepStrictEqual(items, [{ _tag: "Event", event: "message", data: "a\nb", id: undefined }])
  })
})

describe("RuntimeEvents (review)", () => {
  it.live("a connection that only announces its start and closes still counts as a failed attempt", () =>
    Effect.gen(function*() {
      let requests = 0
      const client = HttpClient.make((request) => {
        requests += 1
        // After the first few attempts, a typed answer: reaching it means the retry budget was not enforced.
        const response = requests > 6
          ? new Response(
            "{\"_tag\":\"CursorExpired\",\"cursor\":\"c1.s0\",\"earliest_cursor\":\"c1.s0\",\"message\":\"gone\"}",
            { status: 410, headers: { "content-type": "application/json" } }
          )
          : new Response(": connected\nid: c1.s0\n\n", { status: 200, headers: { "content-type": "text/event-stream" } })
        return Effect.succeed(HttpClientResponse.fromWeb(request, response))
      })
      const events = yield* RuntimeEvents.make({
        baseUrl: "http://runtime.test",
        token: Redacted.make("tok"),
        initialDelay: "1 millis",
        maxDelay: "5 millis",
        maxRetries: 2
      }).pipe(Effect.provideService(HttpClient.HttpClient, client))
      const error = yield* Stream.runDrain(events.stream()).pipe(Effect.flip)
      assert.strictEqual(error._tag, "RuntimeUnavailable")
      assert.strictEqual(requests, 3)
    }))
})
