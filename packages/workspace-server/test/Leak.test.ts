import { echo } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import {
  browserRoutes,
  call,
  closedPort,
  connectSse,
  eventually,
  type Reply,
  startBackend,
  startFakeServer,
  startRuntimeServer,
  tempDir
} from "./support.js"

const REMOTE_TOKEN = "leak-canary-token-0d9e4c7b"
const DOWN_TOKEN = "leak-canary-down-token-6a1f"
const FLAKY_TOKEN = "leak-canary-flaky-token-93e2"

describe("nothing browser-facing carries a runtime endpoint, token or path", () => {
  it.scopedLive("every browser route, its errors, its headers and its SSE frames", () =>
    Effect.gen(function*() {
      const remote = yield* startRuntimeServer(REMOTE_TOKEN, { runtimeId: "gpu-box" })
      const downPort = yield* closedPort
      const down = `http://127.0.0.1:${downPort}`
      const dir = yield* tempDir("yoi-leak-")
      const tokenFile = NodePath.join(dir, "down-token")
      NodeFs.writeFileSync(tokenFile, DOWN_TOKEN)
      const store = NodePath.join(dir, "local-store.db")
      // Ready to its probe, then it drops every connection or answers errors that quote its secrets.
      let drop = true
      const flaky = yield* startFakeServer((req, res) => {
        if (req.url === "/readyz") {
          res.writeHead(200, { "content-type": "application/json" })
          res.end(JSON.stringify({ status: "ready", runtime_id: "flaky-box" }))
          return
        }
        drop = !drop
        if (drop) {
          req.socket.destroy()
          return
        }
        res.writeHead(503, { "content-type": "application/json" })
        res.end(JSON.stringify({ _tag: "RuntimeUnavailable", message: `store at ${dir} failed; token ${FLAKY_TOKEN}` }))
      })
      const { client } = yield* startBackend({
        embedded: { runtime_id: "local", store: `sqlite:${store}` },
        remotes: [
          { runtime_id: "gpu-box", endpoint: remote.url, token: { env: "GPU_BOX_TOKEN" } },
          { runtime_id: "down-box", endpoint: down, token: { file: tokenFile } },
          { runtime_id: "flaky-box", endpoint: flaky.url, token: { env: "FLAKY_TOKEN" } }
        ]
      }, { env: { GPU_BOX_TOKEN: REMOTE_TOKEN, FLAKY_TOKEN } })
      const canaries = [
        REMOTE_TOKEN,
        DOWN_TOKEN,
        remote.url,
        remote.url.replace("http://", ""),
        down,
        down.replace("http://", ""),
        FLAKY_TOKEN,
        flaky.url,
        flaky.url.replace("http://", ""),
        "GPU_BOX_TOKEN",
        tokenFile,
        store,
        dir
      ]

      const seen: Array<string> = []
      const record = (what: string, reply: Reply) => {
        seen.push(`${what}\n${JSON.stringify(reply.headers)}\n${reply.text}`)
        return reply
      }
      const hit = (method: "GET" | "POST" | "DELETE", path: string, body?: unknown) =>
        Effect.map(call(client, method, path, { body }), (r) => record(`${method} ${path}`, r))

      const status = (r: Reply, id: string) => r.json.items.find((v: any) => v.runtime_id === id)
      yield* eventually(
        hit("GET", "/api/runtimes"),
        (r) =>
          status(r, "gpu-box").status === "online" &&
          status(r, "down-box").status_reason === "the runtime cannot be reached" &&
          status(r, "flaky-box").status !== "offline",
        "the remotes probed"
      )
      const sse = yield* connectSse(client, "/api/events?cursor=earliest")

      for (const runtime of ["local", "gpu-box", "down-box", "flaky-box", "nowhere"]) {
        const created = yield* hit("POST", `/api/runtimes/${runtime}/workers`, {
          display_name: "Canary",
          engine: echo()
        })
        const id: string = created.json?.worker?.worker_id ?? "w_missing"
        for (const [method, template, body] of browserRoutes) {
          const path = template.replace("/runtimes/local", `/runtimes/${runtime}`).replace("w_1", id)
          if (path.endsWith("/events")) {
            const stream = yield* connectSse(client, path)
            seen.push(`${path}\n${JSON.stringify(stream.headers)}\n${stream.raw()}`)
            continue
          }
          yield* hit(method, path, body)
          yield* hit(method, path.replace(id, "w_unknown"), body)
        }
        yield* hit("POST", `/api/runtimes/${runtime}/workers`, { display_name: 42, scope: { allow: [{ path: "rel" }] } })
        yield* hit("POST", `/api/runtimes/${runtime}/workers/${id}/input`, { text: "" })
        yield* hit("GET", `/api/runtimes/${runtime}/workers?status=bogus&limit=0`)
        yield* hit("GET", `/api/runtimes/${runtime}/workers/${id}/transcript?page_token=bogus`)
        const cursor = yield* hit("GET", `/api/runtimes/${runtime}/workers/${id}/events?cursor=c1.bogus`)
        void cursor
      }
      yield* hit("GET", "/api/workers")
      yield* hit("GET", "/api/hosts")
      yield* hit("GET", "/api/audit?limit=500")
      yield* hit("GET", "/login?token=wrong")
      yield* hit("GET", "/api/unknown/route")
      yield* sse.waitFor((f) => f.filter((x) => x.event === "turn.completed").length >= 2, "turns on both runtimes")
      seen.push(`/api/events\n${JSON.stringify(sse.headers)}\n${sse.raw()}`)

      assert.isAbove(seen.length, 100)
      for (const text of seen) {
        for (const canary of canaries) {
          assert.notInclude(text, canary, `a browser response carries ${canary}:\n${text.slice(0, 400)}`)
        }
      }
    }), 120_000)
})
