import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { api, BACKEND_TOKEN, eventually, start, TestServers, yoi } from "./servers.js"
import * as Servers from "./servers.js"

const slowEngine = { profile: "echo-c2-d50" }
const LONG = "the quick brown fox jumps over the lazy dog, ".repeat(4).trim()

layer(Servers.layer, { timeout: 180_000, excludeTestServices: true })("yoi send and yoi tail", (it) => {
  it.scoped("send streams the reply: deltas reach stdout while the turn still runs; markers stay on stderr", () =>
    Effect.gen(function*() {
      const { backendUrl } = yield* TestServers
      const env = { YOI_URL: backendUrl, YOI_TOKEN: BACKEND_TOKEN }
      const worker = (id: string) => `/api/runtimes/local/workers/${id}`
      for (const id of ["slow", "fails"]) {
        const engine = id === "slow" ? slowEngine : { profile: "echo-c2-f1" }
        const created = yield* api(backendUrl, BACKEND_TOKEN, "POST", "/api/runtimes/local/workers", {
          worker_id: id,
          display_name: id,
          engine
        })
        assert.strictEqual(created.status, 201)
      }

      const send = yield* start(["send", "local/slow", LONG], env)
      yield* eventually(Effect.sync(send.stdout), (out) => out.length >= 4, "the first delta on stdout")
      const during = yield* api(backendUrl, BACKEND_TOKEN, "GET", worker("slow"))
      assert.strictEqual(during.json.status, "running", "a delta was printed before the turn ended")
      assert.isTrue(LONG.startsWith(send.stdout()), send.stdout())
      const done = yield* send.exit
      assert.strictEqual(done.code, 0, done.stderr)
      assert.strictEqual(done.stdout, `${LONG}\n`, "stdout holds the reply alone")
      assert.match(done.stderr, /— completed · \d+ in · \d+ out tokens\n$/)

      const [json, noWait, piped] = yield* Effect.all([
        yoi(["send", "local/slow", "as json", "--json"], env),
        yoi(["send", "local/fails", "no wait", "--no-wait"], env),
        yoi(["send", "local/fails", "-"], env, "from stdin\n")
      ], { concurrency: 1 })
      assert.strictEqual(json.code, 0, json.stderr)
      const result = JSON.parse(json.stdout)
      assert.deepStrictEqual(
        [result.runtime_id, result.worker_id, result.outcome, result.text],
        ["local", "slow", "completed", "as json"]
      )
      assert.match(result.turn_id, /^t_/)
      assert.isAbove(result.usage.output_tokens, 0)
      assert.strictEqual(json.stderr, "")
      assert.strictEqual(noWait.code, 0, noWait.stderr)
      assert.match(noWait.stdout, /^t_\S+\n$/)

      // The failing engine fails the turn: exit 1, the outcome and the error's tag in words.
      assert.strictEqual(piped.code, 1, piped.stderr)
      assert.match(piped.stderr, /— failed · /)
      assert.match(piped.stderr, /yoi: the turn ended failed: \w+: /)
      const transcript = yield* api(backendUrl, BACKEND_TOKEN, "GET", `${worker("fails")}/transcript`)
      assert.include(transcript.json.items.map((e: any) => e.data.text), "from stdin")

      // Ctrl-C cancels the running turn.
      const interrupted = yield* start(["send", "local/slow", LONG], env)
      yield* eventually(Effect.sync(interrupted.stdout), (out) => out.length >= 4, "the first delta")
      interrupted.child.kill("SIGINT")
      const stopped = yield* interrupted.exit
      assert.strictEqual(stopped.code, 130)
      const after = yield* eventually(
        api(backendUrl, BACKEND_TOKEN, "GET", worker("slow")),
        (r) => r.json.status === "idle",
        "the cancelled turn to end"
      )
      assert.strictEqual(after.json.last_turn.outcome, "cancelled")
    }))

  it.scoped("tail --json resumes from the cursor printed at Ctrl-C with no gap and no duplicate", () =>
    Effect.gen(function*() {
      const { backendUrl } = yield* TestServers
      const env = { YOI_URL: backendUrl, YOI_TOKEN: BACKEND_TOKEN }
      const turn = (runtime: string, id: string, text: string) =>
        Effect.gen(function*() {
          const input = yield* api(backendUrl, BACKEND_TOKEN, "POST", `/api/runtimes/${runtime}/workers/${id}/input`, { text })
          assert.strictEqual(input.status, 202, JSON.stringify(input.json))
          yield* eventually(
            api(backendUrl, BACKEND_TOKEN, "GET", `/api/runtimes/${runtime}/workers/${id}`),
            (r) => r.json.last_turn?.turn_id === input.json.turn_id,
            "the turn to end"
          )
        })
      for (const runtime of ["local", "edge"]) {
        yield* api(backendUrl, BACKEND_TOKEN, "POST", `/api/runtimes/${runtime}/workers`, {
          worker_id: "tailed",
          display_name: "Tailed",
          engine: { profile: "echo-c3" }
        })
        yield* turn(runtime, "tailed", `before ${runtime}`)
      }

      const parse = (text: string) => text.split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l))
      const first = yield* start(["tail", "--json", "--since", "earliest"], env)
      yield* eventually(
        Effect.sync(() => parse(first.stdout())),
        (events) => ["local", "edge"].every((r) => events.some((e) => e.kind === "turn.completed" && e.runtime_id === r)),
        "both runtimes' backlogs"
      )
      yield* turn("edge", "tailed", "while tailing")
      yield* eventually(Effect.sync(first.stdout), (out) => out.includes("while tailing"), "the live turn")
      first.child.kill("SIGINT")
      const firstRun = yield* first.exit
      assert.strictEqual(firstRun.code, 130)
      const cursor = /^cursor: (\S+)$/m.exec(firstRun.stderr)?.[1]
      assert.isString(cursor, firstRun.stderr)

      // Events while nobody tails, then resume.
      yield* turn("local", "tailed", "while away local")
      yield* turn("edge", "tailed", "while away edge")
      const second = yield* start(["tail", "--json", "--since", cursor!], env)
      yield* eventually(
        Effect.sync(() => parse(second.stdout())),
        (events) => events.filter((e) => e.kind === "turn.completed").length >= 2,
        "the turns run while away"
      )
      second.child.kill("SIGINT")
      const secondRun = yield* second.exit

      const events = [...parse(firstRun.stdout), ...parse(secondRun.stdout)]
      for (const runtime of ["local", "edge"]) {
        const seqs = events.filter((e) => e.runtime_id === runtime).map((e) => e.seq as number)
        assert.isAbove(seqs.length, 10)
        assert.strictEqual(new Set(seqs).size, seqs.length, `no duplicate in ${runtime}`)
        const sorted = [...seqs].sort((a, b) => a - b)
        assert.deepStrictEqual(seqs, sorted, `in order in ${runtime}`)
        assert.strictEqual(sorted.at(-1)! - sorted[0]! + 1, seqs.length, `no gap in ${runtime}`)
      }
      const texts = events.filter((e) => e.kind === "transcript.appended").map((e) => e.data.entry.data.text)
      assert.includeMembers(texts, ["before local", "before edge", "while tailing", "while away local", "while away edge"])
    }))

  it.scoped("tail prints one worker's events as lines on a terminal-less stdout", () =>
    Effect.gen(function*() {
      const { backendUrl } = yield* TestServers
      const env = { YOI_URL: backendUrl, YOI_TOKEN: BACKEND_TOKEN }
      const tail = yield* start(["tail", "local/tailed"], env)
      // Only events after the start are shown: send turns until one shows (the stream opens after the process starts).
      const shown = yield* eventually(
        Effect.zipRight(
          api(backendUrl, BACKEND_TOKEN, "POST", "/api/runtimes/local/workers/tailed/input", { text: "watched" }),
          Effect.sync(tail.stdout)
        ),
        (out) => out.includes("turn.completed"),
        "a watched turn"
      )
      assert.match(shown, /\S+ turn\.started\s+local\/tailed t_\S+/)
      assert.match(shown, /transcript\.appended\s+local\/tailed t_\S+ user_input "watched"/)
      assert.notInclude(shown, "edge/")
      tail.child.kill("SIGINT")
      const run = yield* tail.exit
      assert.match(run.stderr, /^cursor: \S+$/m)
    }))
})
