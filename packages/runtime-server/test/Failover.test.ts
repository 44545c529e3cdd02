import { writeTestConfig } from "@yoi/runtime-server/testing"
import { echo } from "@yoi/worker-runtime/testing"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { RuntimeClient, RuntimeEvents } from "@yoi/runtime-api"
import { type Domain, Ids } from "@yoi/worker-runtime"
import { Chunk, Deferred, Duration, Effect, Either, Fiber, Redacted, Ref, Schedule, Stream } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { tempDatabase } from "./PgDatabase.js"

const BIN = fileURLToPath(new URL("../bin/yoi-runtime.mjs", import.meta.url))
const TOKEN = "failover-test-token-0123456789"
const READY = /^yoi-runtime (\S+) listening on (http:\/\/\S+)$/m
const STANDBY = /^yoi-runtime (\S+) standby on (http:\/\/\S+) /m
const LEASE_MS = 1_500

interface Child {
  readonly process: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exit: Effect.Effect<number | null>
}

/** Starts the binary with only the given environment; SIGKILLed (and SIGCONTed first) when the scope closes. */
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
    (child) =>
      Effect.sync(() => {
        if (child.process.exitCode !== null || child.process.signalCode !== null) return
        child.process.kill("SIGCONT")
        child.process.kill("SIGKILL")
      })
  )

/** Waits for a line of the child's stdout (a failure limit, not a timing claim). */
const line = (child: Child, pattern: RegExp, limitMs = 60_000) =>
  Effect.suspend(() => {
    const match = pattern.exec(child.stdout())
    return match === null ? Effect.fail(`no such line yet; stderr: ${child.stderr()}`) : Effect.succeed(match)
  }).pipe(Effect.retry(Schedule.spaced("25 millis").pipe(Schedule.upTo(Duration.millis(limitMs)))))

const clientFor = (baseUrl: string) =>
  RuntimeClient.make({ baseUrl, token: Redacted.make(TOKEN), retries: 0 }).pipe(Effect.provide(FetchHttpClient.layer))

const eventsFor = (baseUrl: string) =>
  RuntimeEvents.make({ baseUrl, token: Redacted.make(TOKEN), maxRetries: 0 }).pipe(
    Effect.provide(FetchHttpClient.layer)
  )

const setup = Effect.gen(function*() {
  const url = yield* tempDatabase
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "yoi-failover-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
  const tokenFile = path.join(dir, "token")
  fs.writeFileSync(tokenFile, `${TOKEN}\n`)
  const args = [
    "--runtime-id",
    "fo",
    "--bind",
    "127.0.0.1:0",
    "--token-file",
    tokenFile,
    "--config",
    writeTestConfig(dir),
    "--lease-ms",
    String(LEASE_MS),
    "--grace-ms",
    "300"
  ]
  // The URL travels in the environment, as an operator's password would (argv shows in `ps`).
  return { args, env: { YOI_RUNTIME_STORE: url } }
})

const durable = (events: ReadonlyArray<Domain.RuntimeEvent>) =>
  events.filter((e) => e.kind !== "turn.delta" && e.kind !== "turn.retry")

describe("failover of yoi-runtime on PostgreSQL", () => {
  it.live("kill -9 of the owner under load: the standby serves, loses no acknowledged record, streams resume", () =>
    Effect.gen(function*() {
      const { args, env } = yield* setup
      const owner = yield* start(args, env)
      const [, , ownerUrl] = yield* line(owner, READY)
      const standby = yield* start(args, env)
      const [, , standbyUrl] = yield* line(standby, STANDBY)
      assert.notInclude(standby.stdout(), "listening on")
      const health = yield* Effect.promise(() => fetch(`${standbyUrl}/healthz`).then((r) => r.json()))
      assert.deepStrictEqual(health, { status: "ok", role: "standby", runtime_id: "fo" })
      const notReady = yield* Effect.promise(() => fetch(`${standbyUrl}/readyz`))
      assert.strictEqual(notReady.status, 503)
      const body = (yield* Effect.promise(() => notReady.json())) as { _tag: string; message: string }
      assert.strictEqual(body._tag, "RuntimeUnavailable")
      assert.match(body.message, /^standby: runtime fo is served by instance i_/)

      const c = yield* clientFor(ownerUrl!)
      assert.strictEqual((yield* c.runtime.summary()).store, "postgres")
      // A client follows the owner's events from the beginning.
      const seen = yield* Ref.make<Array<Domain.RuntimeEvent>>([])
      const follower = yield* Effect.forkScoped(
        (yield* eventsFor(ownerUrl!)).stream({ cursor: "earliest" }).pipe(
          Stream.runForEach((e) => Ref.update(seen, (all) => [...all, e])),
          Effect.either
        )
      )
      const quick = yield* Effect.forEach([0, 1, 2, 3], (i) =>
        c.workers.create({
          payload: { worker_id: Ids.WorkerId.make(`quick-${i}`), display_name: `Q${i}`, engine: echo({ chunk_size: 2 }) }
        }), { concurrency: "unbounded" })
      for (const q of quick) {
        yield* c.workers.input({ path: { worker_id: q.worker.worker_id }, payload: { text: "a finished turn" } })
      }
      yield* Effect.forEach(quick, (q) =>
        c.workers.get({ path: { worker_id: q.worker.worker_id } }).pipe(
          Effect.filterOrFail((w) => w.status === "idle" && w.usage.turns === 1, () => "still running"),
          Effect.retry(Schedule.spaced("25 millis").pipe(Schedule.upTo("20 seconds")))
        ), { concurrency: "unbounded" })
      const held = yield* Effect.forEach([0, 1, 2, 3], (i) =>
        c.workers.create({
          payload: { worker_id: Ids.WorkerId.make(`held-${i}`), display_name: `H${i}`, engine: echo({ delay_ms: 60_000 }) }
        }), { concurrency: "unbounded" })
      const running = yield* Effect.forEach(held, (h) =>
        c.workers.input({ path: { worker_id: h.worker.worker_id }, payload: { text: "a turn that never ends" } }).pipe(
          // An input to an idle worker starts a turn (never queued).
          Effect.filterOrDie((r): r is Domain.InputAccepted => "turn_id" in r, () => new Error("the input was queued"))
        ))

      // Many callers keep creating workers while the owner dies; every acknowledged create must survive.
      const acknowledged = yield* Ref.make<Array<string>>([])
      const stop = yield* Deferred.make<void>()
      const loaders = yield* Effect.forEach([0, 1, 2, 3, 4, 5], (n) =>
        Effect.forkScoped(Effect.gen(function*() {
          for (let i = 0; !(yield* Deferred.isDone(stop)); i++) {
            const id = `load-${n}-${i}`
            const payload = { worker_id: Ids.WorkerId.make(id), display_name: id }
            const made = yield* Effect.either(c.workers.create({ payload }))
            if (Either.isRight(made)) yield* Ref.update(acknowledged, (all) => [...all, id])
          }
        })))
      yield* Ref.get(acknowledged).pipe(
        Effect.filterOrFail((all) => all.length >= 30, () => "not enough load yet"),
        Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo("30 seconds")))
      )
      const killedAt = Date.now()
      owner.process.kill("SIGKILL")
      yield* owner.exit
      yield* Deferred.succeed(stop, undefined)
      yield* Effect.forEach(loaders, Fiber.join)
      yield* Fiber.join(follower)

      const [, , servingUrl] = yield* line(standby, READY, LEASE_MS + 30_000)
      const tookMs = Date.now() - killedAt
      // A failure limit only (the machine may be loaded); scripts/bench/failover.ts measures the time.
      assert.isBelow(tookMs, LEASE_MS + 2_000 + 20_000)
      assert.strictEqual(servingUrl, standbyUrl)
      const ready = yield* Effect.promise(() => fetch(`${servingUrl}/readyz`))
      assert.strictEqual(ready.status, 200)

      const b = yield* clientFor(servingUrl!)
      const all = yield* b.workers.list({ urlParams: { limit: 500 } })
      const ids = new Set(all.items.map((w) => w.worker_id as string))
      const acked = yield* Ref.get(acknowledged)
      for (const id of [...acked, ...quick.map((q) => q.worker.worker_id), ...held.map((h) => h.worker.worker_id)]) {
        assert.isTrue(ids.has(id), `acknowledged worker ${id} is missing after the failover`)
      }
      for (const [i, h] of held.entries()) {
        const w = yield* b.workers.get({ path: { worker_id: h.worker.worker_id } })
        assert.strictEqual(w.status, "idle")
        assert.deepStrictEqual([w.last_turn?.turn_id, w.last_turn?.outcome], [running[i]!.turn_id, "interrupted"])
        const page = yield* b.workers.transcript({ path: { worker_id: h.worker.worker_id }, urlParams: {} })
        assert.deepStrictEqual(page.items.map((e) => e.data._tag), ["user_input", "notice"])
      }
      for (const q of quick) {
        const page = yield* b.workers.transcript({ path: { worker_id: q.worker.worker_id }, urlParams: {} })
        assert.deepStrictEqual(page.items.map((e) => e.data._tag), ["user_input", "assistant_message"])
      }

      // The follower resumes from its last cursor on the new owner: no gap, no duplicate.
      const head = (yield* b.workers.transcript({ path: { worker_id: "quick-0" }, urlParams: {} })).cursor
      const before = yield* Ref.get(seen)
      assert.isAbove(before.length, 0)
      const upToHead = (stream: Stream.Stream<Domain.RuntimeEvent, unknown>) =>
        Effect.map(Stream.runCollect(Stream.takeUntil(stream, (e) => e.cursor === head)), Chunk.toArray)
      const bEvents = yield* eventsFor(servingUrl!)
      const resumed = yield* upToHead(bEvents.stream({ cursor: before[before.length - 1]!.cursor }))
      const replay = yield* upToHead(bEvents.stream({ cursor: "earliest" }))
      const seqs = (events: ReadonlyArray<Domain.RuntimeEvent>) => durable(events).map((e) => `${e.seq}:${e.kind}`)
      assert.deepStrictEqual([...seqs(before), ...seqs(resumed)], seqs(replay))
      assert.isTrue(resumed.some((e) => e.kind === "turn.interrupted"))
      assert.strictEqual(new Set(seqs(replay)).size, seqs(replay).length)
    }).pipe(Effect.scoped), 180_000)

  it.live("a deposed owner (paused past its lease, then resumed) cannot commit", () =>
    Effect.gen(function*() {
      const { args, env } = yield* setup
      const owner = yield* start(args, env)
      const [, , ownerUrl] = yield* line(owner, READY)
      const standby = yield* start(args, env)
      yield* line(standby, STANDBY)
      const a = yield* clientFor(ownerUrl!)
      yield* a.workers.create({ payload: { worker_id: Ids.WorkerId.make("before"), display_name: "Before" } })
      owner.process.kill("SIGSTOP")
      const [, , servingUrl] = yield* line(standby, READY, LEASE_MS + 30_000)
      const b = yield* clientFor(servingUrl!)
      yield* b.workers.create({ payload: { worker_id: Ids.WorkerId.make("after"), display_name: "After" } })
      owner.process.kill("SIGCONT")
      const refused = yield* Effect.flip(
        a.workers.create({ payload: { worker_id: Ids.WorkerId.make("deposed"), display_name: "Deposed" } })
      )
      assert.strictEqual(refused._tag, "RuntimeUnavailable")
      const list = yield* b.workers.list({ urlParams: {} })
      assert.deepStrictEqual(list.items.map((w) => w.worker_id).sort(), ["after", "before"])
      yield* owner.process.kill("SIGKILL") ? owner.exit : Effect.void
    }).pipe(Effect.scoped), 120_000)

  it.live("a PostgreSQL URL with a password that cannot connect: the password appears nowhere in the output", () =>
    Effect.gen(function*() {
      const password = "pa55-w0rd-that-must-not-leak"
      const url = `postgres://yoi:${password}@127.0.0.1:1/yoi`
      const [byFlag, byEnv] = yield* Effect.all([
        start(["--store", url, "--bind", "127.0.0.1:0", "--insecure-no-auth", "--log-level", "debug"]),
        start(["--bind", "127.0.0.1:0", "--insecure-no-auth", "--log-level", "debug"], { YOI_RUNTIME_STORE: url })
      ], { concurrency: "unbounded" })
      for (const child of [byFlag, byEnv]) {
        assert.strictEqual(yield* child.exit, 1)
        const output = child.stdout() + child.stderr()
        assert.include(child.stderr(), "cannot open the store postgres://yoi@127.0.0.1:1/yoi")
        assert.notInclude(output, password)
        assert.notInclude(output, "YOI_RUNTIME_STORE_YOI_RUNTIME_STORE")
      }
    }).pipe(Effect.scoped), 120_000)
})
