import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeChild from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { call, closedPort, connectSse, eventually, startBackend, tempDir } from "./support.js"

const RUNTIME_BIN = NodePath.join(import.meta.dirname, "..", "..", "runtime-server", "bin", "yoi-runtime.mjs")
const REMOTE_TOKEN = "remote-endpoints-token-2f7a"

/** A real `yoi-runtime` process on a given port and SQLite file, as `gpu-box`; resolves once it listens. */
const startRuntime = (dir: string, port: number, store: string) =>
  Effect.acquireRelease(
    Effect.async<{ readonly child: NodeChild.ChildProcess; readonly exited: Promise<unknown> }>((resume) => {
      const child = NodeChild.spawn(process.execPath, [
        RUNTIME_BIN,
        "--runtime-id",
        "gpu-box",
        "--bind",
        `127.0.0.1:${port}`,
        "--store",
        `sqlite:${store}`,
        "--token-file",
        NodePath.join(dir, "token"),
        "--heartbeat-ms",
        "500"
      ], { env: { PATH: process.env.PATH ?? "" }, stdio: ["ignore", "pipe", "pipe"] })
      const exited = new Promise((resolve) => child.on("exit", resolve))
      let out = ""
      let err = ""
      child.stderr!.on("data", (d) => (err += String(d)))
      child.stdout!.on("data", (d) => {
        out += String(d)
        if (/listening on http/.test(out)) resume(Effect.succeed({ child, exited }))
      })
      child.once("exit", (code) => resume(Effect.die(`yoi-runtime exited ${code}: ${err}`)))
    }),
    ({ child, exited }) =>
      Effect.promise(async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        await exited
      })
  )

describe("a remote entry with several endpoints", () => {
  it.scopedLive("follows the ready host; when it dies the next one serves and the stream resumes, no gap, no duplicate", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      NodeFs.writeFileSync(NodePath.join(dir, "token"), REMOTE_TOKEN)
      const store = NodePath.join(dir, "gpu-box.db")
      const [portA, portB] = [yield* closedPort, yield* closedPort]
      const first = yield* startRuntime(dir, portA, store)
      const { client } = yield* startBackend({
        embedded: null,
        remotes: [{
          runtime_id: "gpu-box",
          endpoints: [`http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`],
          token: { env: "GPU_BOX_TOKEN" }
        }]
      }, { env: { GPU_BOX_TOKEN: REMOTE_TOKEN } })
      yield* eventually(
        call(client, "GET", "/api/runtimes/gpu-box"),
        (r) => r.json.status === "online",
        "the first host online"
      )
      // A browser follows every event of the runtime from now on, across the switch.
      const watcher = yield* eventually(
        Effect.gen(function*() {
          const sse = yield* connectSse(client, "/api/events")
          const raw = yield* eventually(Effect.sync(() => sse.raw()), (r) => r.includes("\n\n"), "the open frame")
          return { sse, start: /^: connected\nid: (\S+)\n\n/.exec(raw)?.[1] }
        }),
        ({ start }) => start !== undefined,
        "a stream that follows the runtime"
      )
      const created = yield* call(client, "POST", "/api/runtimes/gpu-box/workers", { body: { display_name: "Ada" } })
      assert.strictEqual(created.status, 201, created.text)
      const worker = created.json.worker.worker_id as string
      const base = `/api/runtimes/gpu-box/workers/${worker}`
      assert.strictEqual((yield* call(client, "POST", `${base}/input`, { body: { text: "before the switch" } })).status, 202)
      yield* watcher.sse.waitFor((f) => f.some((x) => x.event === "turn.completed"), "the first turn")

      // The first host dies; the second starts on the same store (the same runtime) and becomes ready.
      first.child.kill("SIGKILL")
      yield* Effect.promise(() => first.exited)
      yield* startRuntime(dir, portB, store)
      const accepted = yield* eventually(
        call(client, "POST", `${base}/input`, { body: { text: "after the switch" } }),
        (r) => r.status === 202,
        "a command answered by the second host"
      )
      assert.strictEqual(accepted.status, 202, accepted.text)
      const frames = yield* watcher.sse.waitFor(
        (f) => f.filter((x) => x.event === "turn.completed").length === 2,
        "the second turn through the same stream"
      )
      const view = yield* call(client, "GET", "/api/runtimes/gpu-box")
      assert.strictEqual(view.json.status, "online")

      // What the browser saw is exactly the runtime's log after the stream's start: read from the store itself.
      // Position marks (`stream.live`, `stream.bookmark`) carry the seq of their position: they are not log events.
      const isMark = (f: { readonly event: string }) => f.event.startsWith("stream.")
      const seen = frames.filter((f) => !isMark(f)).map((f) => f.data.seq as number)
      assert.strictEqual(new Set(seen).size, seen.length, "no duplicate")
      const log = yield* Effect.scoped(Effect.gen(function*() {
        const sse = yield* connectSse(client, `${base}/events?cursor=earliest`)
        return yield* sse.waitFor((f) => f.filter((x) => x.event === "turn.completed").length === 2, "the log")
      }))
      const expected = log.filter((f) => !isMark(f) && !["turn.delta", "turn.retry"].includes(f.event))
        .map((f) => f.data.seq as number)
      // Deltas and retries are live only (never stored): the log holds every other kind.
      const transient = new Set(["turn.delta", "turn.retry"])
      const workerSeen = frames.filter((f) => f.data.worker_id === worker && !transient.has(f.event) && !isMark(f))
        .map((f) => f.data.seq as number)
      assert.deepStrictEqual(workerSeen, expected.filter((s) => s >= workerSeen[0]!), "no gap")
      assert.isTrue(frames.some((f) => f.data.data?.entry?.data?.text === "after the switch"))
    }), 90_000)
})
