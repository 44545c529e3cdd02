import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { api, BACKEND_TOKEN, BIN, type Run, closedPort, RUNTIME_TOKEN, TestServers, yoi } from "./servers.js"
import * as Servers from "./servers.js"

const ESC = "\u001b"

layer(Servers.layer, { timeout: 180_000, excludeTestServices: true })("yoi against a real Backend and runtime", (it) => {
  it.effect("logs in (token from stdin), then reads with the saved login in human and --json mode", () =>
    Effect.gen(function*() {
      const { backendUrl, home } = yield* TestServers
      const env = { XDG_CONFIG_HOME: NodePath.join(home, "login") }

      const refused = yield* yoi(["login", backendUrl], env, "not-the-token\n")
      assert.strictEqual(refused.code, 1, refused.stderr)
      assert.match(refused.stderr, /^yoi: Unauthorized: /)
      const file = NodePath.join(home, "login", "yoi", "config.json")
      assert.isFalse(NodeFs.existsSync(file))

      // The bin as shipped (the built bundle), once; the other runs use the sources bundled.
      const login = yield* yoi(["login", backendUrl], env, `${BACKEND_TOKEN}\n`, BIN)
      assert.strictEqual(login.code, 0, login.stderr)
      assert.match(login.stdout, /^logged in to http:\/\/127\.0\.0\.1:\d+ \(2 runtimes\)/)
      assert.strictEqual(NodeFs.statSync(file).mode & 0o777, 0o600)
      assert.deepStrictEqual(JSON.parse(NodeFs.readFileSync(file, "utf8")), { url: backendUrl, token: BACKEND_TOKEN })
      assert.notInclude(login.stdout + login.stderr, BACKEND_TOKEN)

      const [human, json] = yield* Effect.all([yoi(["runtimes"], env), yoi(["runtimes", "--json"], env)], {
        concurrency: "unbounded"
      })
      assert.strictEqual(human.code, 0, human.stderr)
      const lines = human.stdout.trimEnd().split("\n")
      assert.match(lines[0]!, /^RUNTIME\s+NAME\s+KIND\s+STATUS\s+WORKERS\s+STORE$/)
      assert.match(lines.find((l) => l.startsWith("local"))!, /^local\s+local\s+embedded\s+online\s+\d+ \(/)
      assert.match(lines.find((l) => l.startsWith("edge"))!, /^edge\s+Edge box\s+remote\s+online\s+/)
      assert.notInclude(human.stdout, ESC, "no colour when piped")
      assert.strictEqual(json.code, 0, json.stderr)
      const doc = JSON.parse(json.stdout)
      assert.deepStrictEqual(doc.items.map((r: any) => [r.runtime_id, r.kind, r.status]).sort(), [
        ["edge", "remote", "online"],
        ["local", "embedded", "online"]
      ])
    }))

  it.effect("creates, lists, reads the transcript and runs the lifecycle commands, human and --json", () =>
    Effect.gen(function*() {
      const { backendUrl } = yield* TestServers
      const env = { YOI_URL: backendUrl, YOI_TOKEN: BACKEND_TOKEN }

      const created = yield* yoi(["create", "edge", "--name", "Ada", "--id", "ada"], env)
      assert.strictEqual(created.code, 0, created.stderr)
      assert.strictEqual(created.stdout, "created edge/ada Ada (echo)\n")
      const again = yield* yoi(["create", "edge", "--name", "Ada", "--id", "ada", "--json"], env)
      assert.strictEqual(again.code, 0, again.stderr)
      const againDoc = JSON.parse(again.stdout)
      assert.deepStrictEqual([againDoc.created, againDoc.worker.worker_id, againDoc.worker.runtime_id], [false, "ada", "edge"])

      const sent = yield* yoi(["send", "edge/ada", "hello from the cli"], env)
      assert.strictEqual(sent.code, 0, sent.stderr)
      assert.strictEqual(sent.stdout, "hello from the cli\n")
      assert.match(sent.stderr, /completed · \d+ in · \d+ out tokens/)

      const [list, listJson, byStatus, transcript, transcriptJson] = yield* Effect.all([
        yoi(["workers", "--runtime", "edge"], env),
        yoi(["workers", "--json"], env),
        yoi(["workers", "--status", "stopped", "--json"], env),
        yoi(["transcript", "edge/ada"], env),
        yoi(["transcript", "edge/ada", "--all", "--json"], env)
      ], { concurrency: "unbounded" })
      assert.strictEqual(list.code, 0, list.stderr)
      assert.match(list.stdout, /^WORKER\s+NAME\s+STATUS\s+ENGINE\s+TURNS\s+TOKENS IN\/OUT\s+UPDATED\n/)
      assert.match(list.stdout, /\nedge\/ada\s+Ada\s+idle\s+echo\s+1\s+\d+\/\d+\s+\d{4}-/)
      assert.include(JSON.parse(listJson.stdout).items.map((w: any) => `${w.runtime_id}/${w.worker_id}`), "edge/ada")
      assert.notInclude(JSON.parse(byStatus.stdout).items.map((w: any) => w.worker_id), "ada")
      assert.strictEqual(transcript.stdout, "#0 you: hello from the cli\n#1 worker: hello from the cli\n")
      const page = JSON.parse(transcriptJson.stdout)
      assert.deepStrictEqual(page.items.map((e: any) => e.data._tag), ["user_input", "assistant_message"])
      assert.isString(page.cursor)

      const cancel = yield* yoi(["cancel", "edge/ada"], env)
      assert.strictEqual(cancel.stdout, "edge/ada had no turn running\n")
      const stop = yield* yoi(["stop", "edge/ada", "--json"], env)
      assert.strictEqual(JSON.parse(stop.stdout).status, "stopped")
      const refused = yield* yoi(["send", "edge/ada", "are you there?"], env)
      assert.strictEqual(refused.code, 1)
      assert.match(refused.stderr, /^yoi: WorkerStopped: /)
      const restore = yield* yoi(["restore", "edge/ada"], env)
      assert.strictEqual(restore.stdout, "edge/ada idle\n")
      const cancelJson = yield* yoi(["cancel", "edge/ada", "--json"], env)
      assert.strictEqual(JSON.parse(cancelJson.stdout).cancelled, false)
      const notStopped = yield* yoi(["delete", "edge/ada"], env)
      assert.strictEqual(notStopped.code, 1)
      assert.match(notStopped.stderr, /^yoi: WorkerStateConflict: /)
      const stopHuman = yield* yoi(["stop", "edge/ada"], env)
      assert.strictEqual(stopHuman.stdout, "edge/ada stopped\n")
      const restoreJson = yield* yoi(["restore", "edge/ada", "--json"], env)
      assert.strictEqual(JSON.parse(restoreJson.stdout).status, "idle")
      yield* yoi(["stop", "edge/ada"], env)
      const deleted = yield* yoi(["delete", "edge/ada", "--json"], env)
      assert.deepStrictEqual(JSON.parse(deleted.stdout), { worker_id: "ada", deleted: true })
      const stopped = yield* yoi(["stop", "local/ghost"], env)
      assert.strictEqual(stopped.code, 1)
      assert.match(stopped.stderr, /^yoi: WorkerNotFound: /)

      const [audit, auditJson] = yield* Effect.all([yoi(["audit"], env), yoi(["audit", "--json", "--limit", "50"], env)], {
        concurrency: "unbounded"
      })
      assert.match(audit.stdout, /^TIME\s+ACTOR\s+ACTION\s+TARGET\s+OUTCOME\s+ERROR\n/)
      assert.match(audit.stdout, /\sdelete\s+edge\/ada\s+ok\s/)
      const actions = JSON.parse(auditJson.stdout).items
        .filter((a: any) => a.worker_id === "ada")
        .map((a: any) => `${a.action}:${a.outcome}`)
      assert.includeMembers(actions, ["create:ok", "input:ok", "stop:ok", "input:failed", "restore:ok", "delete:ok"])
    }))

  it.effect("talks to a runtime directly with --runtime-url and its token", () =>
    Effect.gen(function*() {
      const { runtimeUrl } = yield* TestServers
      const env = { YOI_RUNTIME_TOKEN: RUNTIME_TOKEN }
      const created = yield* yoi(["create", "edge", "--id", "direct", "--runtime-url", runtimeUrl], env)
      assert.strictEqual(created.code, 0, created.stderr)
      const [runtimes, sent] = yield* Effect.all([
        yoi(["runtimes", "--runtime-url", runtimeUrl, "--json"], env),
        yoi(["send", "edge/direct", "straight to the runtime", "--runtime-url", runtimeUrl], env)
      ], { concurrency: "unbounded" })
      assert.deepStrictEqual(JSON.parse(runtimes.stdout).items.map((r: any) => [r.runtime_id, r.kind]), [["edge", "direct"]])
      assert.strictEqual(sent.stdout, "straight to the runtime\n", sent.stderr)
      const direct = ["--runtime-url", runtimeUrl]
      const stop = yield* yoi(["stop", "edge/direct", ...direct], env)
      assert.strictEqual(stop.stdout, "edge/direct stopped\n", stop.stderr)
      const deleted = yield* yoi(["delete", "edge/direct", ...direct], env)
      assert.strictEqual(deleted.stdout, "deleted edge/direct\n", deleted.stderr)
      const wrong = yield* yoi(["workers", "--runtime", "local", "--runtime-url", runtimeUrl], env)
      assert.strictEqual(wrong.code, 2)
      assert.include(wrong.stderr, "is edge, not local")
      const noToken = yield* yoi(["workers", "--runtime-url", runtimeUrl], {})
      assert.strictEqual(noToken.code, 1)
      assert.match(noToken.stderr, /^yoi: Unauthorized: /)
    }))

  it.effect("exits 1 on typed errors, 2 on usage errors and 3 when the server cannot be reached", () =>
    Effect.gen(function*() {
      const { backendUrl } = yield* TestServers
      const env = { YOI_URL: backendUrl, YOI_TOKEN: BACKEND_TOKEN }
      const port = yield* closedPort
      const runs = yield* Effect.all([
        yoi(["transcript", "local/nobody"], env),
        yoi(["workers", "--runtime", "mars"], env),
        yoi(["runtimes"], { YOI_URL: backendUrl, YOI_TOKEN: "wrong-token" }),
        yoi(["frobnicate"], env),
        yoi(["send", "edge/x"], env),
        yoi(["send", "no-slash", "hi"], env),
        yoi(["workers", "--status", "sleeping"], env),
        yoi(["runtimes", "--url", "ftp://example"], env),
        yoi(["runtimes"], { YOI_URL: `http://127.0.0.1:${port}`, YOI_TOKEN: BACKEND_TOKEN }),
        yoi(["runtimes", "--url", "http://yoi-backend.invalid"], { YOI_TOKEN: BACKEND_TOKEN }),
        yoi(["--completions", "bash"], env)
      ], { concurrency: 4 })
      const [notFound, noRuntime, badToken, unknown, missingArg, badRef, badStatus, badUrl] = runs
      const [refused, unresolvable, completions] = runs.slice(8) as [Run, Run, Run]
      assert.deepStrictEqual(runs.map((r) => r.code), [1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 0], runs.map((r) => r.stderr).join("\n"))
      assert.match(notFound.stderr, /^yoi: WorkerNotFound: /)
      assert.match(noRuntime.stderr, /^yoi: RuntimeNotFound: /)
      assert.match(badToken.stderr, /^yoi: Unauthorized: /)
      assert.include(unknown.stderr, "Invalid subcommand")
      assert.include(missingArg.stderr, "TEXT")
      assert.include(badRef.stderr, "expected RUNTIME/WORKER")
      assert.include(badStatus.stderr, "--status must be one of idle, running, stopped")
      assert.include(badUrl.stderr, "--url must be an http(s) URL")
      assert.match(refused.stderr, /^yoi: cannot reach the Backend at http:\/\/127\.0\.0\.1:\d+: connection refused/)
      assert.match(unresolvable.stderr, /^yoi: cannot reach the Backend at http:\/\/yoi-backend\.invalid/)
      assert.include(completions.stdout, "complete -F")
      for (const run of runs) assert.notInclude(run.stdout + run.stderr, ESC)
    }))

  it.effect("creates on the embedded runtime with the default engine (no --profile)", () =>
    Effect.gen(function*() {
      const { backendUrl } = yield* TestServers
      const env = { YOI_URL: backendUrl, YOI_TOKEN: BACKEND_TOKEN }
      const created = yield* yoi(["create", "local", "--json"], env)
      assert.strictEqual(created.code, 0, created.stderr)
      const doc = JSON.parse(created.stdout)
      assert.deepStrictEqual([doc.created, doc.worker.display_name, doc.worker.engine.provider], [true, "worker", "echo"])
      const detail = yield* api(backendUrl, BACKEND_TOKEN, "GET", `/api/runtimes/local/workers/${doc.worker.worker_id}`)
      assert.strictEqual(detail.status, 200)

      // --profile names one of the runtime's profiles; an unknown one is the runtime's typed refusal, exit 1.
      const named = yield* yoi(["create", "local", "--profile", "echo-c3", "--json"], env)
      assert.strictEqual(named.code, 0, named.stderr)
      assert.deepStrictEqual(JSON.parse(named.stdout).worker.engine, { profile: "echo-c3", provider: "echo" })
      const unknown = yield* yoi(["create", "local", "--profile", "ghost"], env)
      assert.strictEqual(unknown.code, 1)
      assert.match(unknown.stderr, /InvalidInput: unknown engine profile "ghost"/)
    }))
})
