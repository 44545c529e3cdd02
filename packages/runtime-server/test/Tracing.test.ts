import { assert, describe, it } from "@effect/vitest"
import { layerMemory } from "@yoi/worker-runtime"
import { Effect, Either, Layer, Redacted, Schedule } from "effect"
import * as Http from "node:http"
import { Auth, RuntimeServer, Tracing } from "../src/index.js"
import { request, TOKEN } from "./RawHttp.js"

interface ExportedSpan {
  readonly name: string
  readonly traceId: string
  readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: { readonly stringValue?: string } }>
}

/** A fake OTLP/HTTP collector on port 0 that keeps every span posted to `/v1/traces` (JSON encoding). */
interface Collector {
  readonly url: string
  readonly spans: Array<ExportedSpan>
  readonly server: Http.Server
}

const collector = Effect.acquireRelease(
  Effect.async<Collector>((resume) => {
    const spans: Array<ExportedSpan> = []
    const server = Http.createServer((req, res) => {
      let body = ""
      req.setEncoding("utf8")
      req.on("data", (chunk: string) => (body += chunk))
      req.on("end", () => {
        if (req.method === "POST" && req.url === "/v1/traces") {
          const parsed = JSON.parse(body) as {
            resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<ExportedSpan> }> }>
          }
          for (const rs of parsed.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans)
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as { port: number }
      resume(Effect.succeed({ url: `http://127.0.0.1:${address.port}`, spans, server }))
    })
  }),
  ({ server }) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
)

describe("OTLP tracing", () => {
  it.scopedLive("a turn's span reaches the collector given as the endpoint", () =>
    Effect.gen(function*() {
      const fake = yield* collector
      const served = RuntimeServer.layerTest({ auth: Auth.token(Redacted.make(TOKEN)), tracing: true }).pipe(
        Layer.provideMerge(layerMemory({ runtimeId: "rt-otlp" })),
        Layer.provide(Tracing.layer({ endpoint: fake.url, serviceName: "yoi-runtime-test", exportInterval: "50 millis" }))
      )
      // The server (and the exporter) stay up until the span has arrived: it is sent by the exporter's own schedule.
      const { turn, workerId } = yield* Effect.gen(function*() {
        const created = yield* request("POST", "/v1/workers", {
          body: JSON.stringify({ display_name: "Traced", initial_input: "trace me" })
        })
        assert.strictEqual(created.status, 201, created.text)
        const turn = yield* Effect.suspend(() => {
          const found = fake.spans.find((s) => s.name === "Runtime.turn")
          return found === undefined ? Effect.fail("no turn span yet") : Effect.succeed(found)
        }).pipe(Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("20 seconds"))))
        return { turn, workerId: created.json.worker.worker_id as string }
      }).pipe(Effect.provide(served))
      const attribute = (span: ExportedSpan, key: string) =>
        span.attributes.find((a) => a.key === key)?.value.stringValue
      assert.strictEqual(attribute(turn, "worker_id"), workerId)
      assert.strictEqual(attribute(turn, "provider"), "echo")
      assert.match(turn.traceId, /^[0-9a-f]{32}$/)
      // The request that started the turn was traced as well.
      assert.isTrue(fake.spans.some((s) => s.name === "Runtime.createWorker"))
    }))

  it("endpoints: an http(s) URL, traces under /v1/traces", () => {
    assert.strictEqual(Tracing.tracesUrl("http://127.0.0.1:4318"), "http://127.0.0.1:4318/v1/traces")
    assert.strictEqual(Tracing.tracesUrl("http://collector:4318/"), "http://collector:4318/v1/traces")
    assert.strictEqual(Tracing.tracesUrl("https://c.example/v1/traces"), "https://c.example/v1/traces")
    assert.isTrue(Either.isRight(Tracing.parseEndpoint("http://127.0.0.1:4318")))
    assert.isTrue(Either.isLeft(Tracing.parseEndpoint("127.0.0.1:4318")))
    assert.isTrue(Either.isLeft(Tracing.parseEndpoint("file:///etc/passwd")))
  })
})
