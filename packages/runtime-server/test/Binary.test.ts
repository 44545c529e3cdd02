import { writeTestConfig } from "@yoi/runtime-server/testing"
import { echo } from "@yoi/worker-runtime/testing"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { RuntimeClient } from "@yoi/runtime-api"
import { type Domain, Ids } from "@yoi/worker-runtime"
import { Deferred, Effect, Redacted, Schedule } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const BIN = fileURLToPath(new URL("../bin/yoi-runtime.mjs", import.meta.url))
const TOKEN = "binary-test-token-0123456789"
const READY = /^yoi-runtime (\S+) listening on (http:\/\/\S+)$/m

interface Child {
  readonly process: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exit: Effect.Effect<number | null>
}

/** Starts the binary the way an operator would, with only the given environment variables. */
const start = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const exited = yield* Deferred.make<number | null>()
      const child = spawn(process.execPath, [BIN, ...args], {
        env: { PATH: process.env.PATH ?? "", ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
      child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
      child.once("exit", (code) => Deferred.unsafeDone(exited, Effect.succeed(code)))
      const result: Child = { process: child, stdout: () => stdout, stderr: () => stderr, exit: Deferred.await(exited) }
      return result
    }),
    (child) => Effect.sync(() => child.process.exitCode === null && child.process.kill("SIGKILL"))
  )

const readyUrl = (child: Child) =>
  Effect.suspend(() => {
    const match = READY.exec(child.stdout())
    return match === null ? Effect.fail(`no ready line yet; stderr: ${child.stderr()}`) : Effect.succeed(match)
  }).pipe(Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("30 seconds"))))

const clientFor = (baseUrl: string) =>
  RuntimeClient.make({ baseUrl, token: Redacted.make(TOKEN), retries: 0 }).pipe(Effect.provide(FetchHttpClient.layer))

describe("the yoi-runtime binary", () => {
  it.live("prints the ready line, serves a create/input/transcript round trip, drains on SIGTERM", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "yoi-runtime-bin-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const tokenFile = path.join(dir, "token")
      fs.writeFileSync(tokenFile, `${TOKEN}\n`)
      const args = [
        "--runtime-id",
        "bin-test",
        "--bind",
        "127.0.0.1:0",
        "--store",
        `sqlite:${path.join(dir, "runtime.db")}`,
        "--token-file",
        tokenFile,
        "--grace-ms",
        "300",
        "--config",
        writeTestConfig(dir)
      ]

      const first = yield* start(args, { YOI_RUNTIME_ID: "env-loses" })
      const [line, runtimeId, baseUrl] = yield* readyUrl(first)
      assert.strictEqual(runtimeId, "bin-test")
      assert.strictEqual(first.stdout().trim(), line)
      const c = yield* clientFor(baseUrl!)
      assert.strictEqual((yield* c.runtime.summary()).store, "sqlite")
      yield* c.workers.create({ payload: { worker_id: Ids.WorkerId.make("quick"), display_name: "Quick" } })
      yield* c.workers.input({ path: { worker_id: "quick" }, payload: { text: "round trip" } })
      const transcript = yield* c.workers.transcript({ path: { worker_id: "quick" }, urlParams: {} }).pipe(
        Effect.filterOrFail((page) => page.items.length === 2, () => "turn not finished"),
        Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("10 seconds")))
      )
      assert.deepStrictEqual(transcript.items.map((e) => e.data._tag), ["user_input", "assistant_message"])

      const slow = echo({ delay_ms: 60_000, chunk_size: 1 })
      yield* c.workers.create({ payload: { worker_id: Ids.WorkerId.make("slow"), display_name: "Slow", engine: slow } })
      const { turn_id } = (yield* c.workers.input({ path: { worker_id: "slow" }, payload: { text: "never ends" } })) as
        Domain.InputAccepted
      first.process.kill("SIGTERM")
      assert.strictEqual(yield* first.exit, 0, first.stderr())
      assert.include(first.stderr(), "drained")
      assert.notInclude(first.stderr() + first.stdout(), TOKEN)

      // The store was closed cleanly: the running turn was cancelled within the grace, not found interrupted.
      const second = yield* start(args)
      const [, , secondUrl] = yield* readyUrl(second)
      const again = yield* clientFor(secondUrl!)
      const worker = yield* again.workers.get({ path: { worker_id: "slow" } })
      assert.strictEqual(worker.status, "idle")
      assert.deepStrictEqual([worker.last_turn?.turn_id, worker.last_turn?.outcome], [turn_id, "cancelled"])
      second.process.kill("SIGINT")
      assert.strictEqual(yield* second.exit, 0)
    }).pipe(Effect.scoped), 120_000)

  it.live("refuses to start, with a clear message and a non-zero exit, on a bad flag or without a token", () =>
    Effect.gen(function*() {
      const [badFlag, noToken, openBind, help] = yield* Effect.all([
        start(["--bogus"]),
        start(["--store", "memory", "--bind", "127.0.0.1:0"]),
        start(["--store", "memory", "--bind", "0.0.0.0:0", "--insecure-no-auth"]),
        start(["--help"])
      ], { concurrency: "unbounded" })
      assert.strictEqual(yield* badFlag.exit, 1)
      assert.match(badFlag.stderr(), /^yoi-runtime: Unknown option '--bogus'/)
      assert.include(badFlag.stderr(), "Usage: yoi-runtime")
      assert.strictEqual(yield* noToken.exit, 1)
      assert.match(noToken.stderr(), /^yoi-runtime: no token/)
      assert.strictEqual(yield* openBind.exit, 1)
      assert.include(openBind.stderr(), "loopback")
      assert.strictEqual(badFlag.stdout() + noToken.stdout() + openBind.stdout(), "")
      assert.strictEqual(yield* help.exit, 0)
      assert.match(help.stdout(), /^Usage: yoi-runtime/)
    }).pipe(Effect.scoped), 120_000)
})
