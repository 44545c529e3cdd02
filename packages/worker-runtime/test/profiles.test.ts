import { assert, describe, it } from "@effect/vitest"
import { AllocationRegistry, type Domain, Ids, Layers, layerMemory, Runtime, WorkerStore } from "@yoi/worker-runtime"
import { echoProfiles } from "@yoi/worker-runtime/testing"
import { Effect, Either, Layer } from "effect"
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { tempDir, withSqliteRuntime } from "./fixtures/sqlite.js"
import { runTurn, snapshot, withRuntime } from "./utils.js"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/** A scratch tree: `root/` (granted), `root/link -> outside/`, `outside/`, removed with the scope. */
const scratch = Effect.acquireRelease(
  Effect.sync(() => {
    const base = realpathSync(mkdtempSync(join(tmpdir(), "yoi-scope-")))
    const root = join(base, "root")
    const reader = join(base, "reader")
    const outside = join(base, "outside")
    for (const dir of [root, reader, outside, join(root, "repo")]) mkdirSync(dir)
    symlinkSync(outside, join(root, "link"))
    symlinkSync(join(base, "nowhere"), join(root, "dangling"))
    return { base, root, reader, outside }
  }),
  ({ base }) => Effect.sync(() => rmSync(base, { recursive: true, force: true }))
)

describe("engine profiles", () => {
  it.effect("a create names a profile; the default is recorded; the worker shows profile, provider and model", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const summary = yield* rt.summary
        assert.strictEqual(summary.capabilities.default_profile, "fast")
        assert.strictEqual(summary.capabilities.kind, "embedded")
        assert.deepStrictEqual(
          summary.capabilities.profiles.map((p) => p.name).sort(),
          ["echo", "fast", "slow"]
        )
        assert.isTrue(summary.capabilities.profiles.every((p) => p.ready))
        assert.deepInclude(summary.capabilities, { scopes: "none", shell: false, git: false, worktree: false, tools: [] })

        const byDefault = yield* rt.createWorker({ worker_id: Ids.WorkerId.make("ada"), display_name: "Ada" })
        assert.deepStrictEqual(byDefault.worker.engine, { profile: "fast", provider: "echo" })
        // A retry of the same request (still naming no profile) is the same worker, not a conflict.
        const again = yield* rt.createWorker({ worker_id: Ids.WorkerId.make("ada"), display_name: "Ada" })
        assert.isFalse(again.created)
        const named = yield* rt.createWorker({ display_name: "Bo", engine: { profile: "slow", temperature: 0.5 } })
        assert.deepStrictEqual(named.worker.engine, { profile: "slow", provider: "echo" })
        const { end } = yield* runTurn(rt, byDefault.worker.worker_id, "abcdefgh")
        assert.strictEqual(end.kind, "turn.completed")
      }), {
      policy: {
        engines: {
          default: "fast",
          profiles: { fast: { provider: "echo", chunk_size: 4 }, slow: { provider: "echo", max_steps: 3 } }
        }
      }
    }))

  it.effect("refuses every engine member but a profile and bounded overrides, under concurrency, changing nothing", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const before = yield* snapshot(rt)
        const attacks: ReadonlyArray<Record<string, unknown>> = [
          { provider: "openai-chat", model: "m", base_url: "http://127.0.0.1:9911/v1", api_key: { env: "HOME" } },
          { profile: "echo", base_url: "http://127.0.0.1:9911/v1" },
          { profile: "echo", api_key: { file: "/etc/passwd" } },
          { profile: "echo", provider: "echo" },
          { profile: "echo", chunk_size: 1 },
          { profile: "missing" },
          { profile: "echo", max_steps: 1000 }
        ]
        const results = yield* Effect.forEach(
          range(70),
          (i) => Effect.either(rt.createWorker({ display_name: `A${i}`, engine: attacks[i % attacks.length] as never })),
          { concurrency: "unbounded" }
        )
        for (const [i, result] of results.entries()) {
          assert.isTrue(Either.isLeft(result))
          const error = (result as Either.Left<{ _tag: string; field?: string }, unknown>).left
          assert.strictEqual(error._tag, "InvalidInput")
          const attack = attacks[i % attacks.length]!
          const member = Object.keys(attack).find((k) => !["profile", "max_steps"].includes(k))
          const expected = member !== undefined
            ? `engine.${member}`
            : attack.profile === "missing"
              ? "engine.profile"
              : "engine.max_steps"
          assert.strictEqual(error.field, expected)
        }
        assert.strictEqual(yield* snapshot(rt), before)
      })))

  it.effect("a bad configuration fails the start with one message naming the field", () =>
    Effect.gen(function*() {
      const start = (policy: NonNullable<Parameters<typeof layerMemory>[0]>["policy"]) =>
        Effect.flip(Effect.scoped(Layer.build(layerMemory({ policy }))))
      const noDefault = yield* start({ engines: { default: "ghost" } })
      assert.strictEqual(noDefault.message, "engines.default: no profile is named \"ghost\"")
      const badEcho = yield* start({ engines: { profiles: { echo: { provider: "openai-chat", model: "m" } } } })
      assert.match(badEcho.message, /^engines\.profiles\.echo\.provider: /)
      const unknown = yield* start({ engines: { profiles: { x: { provider: "nope" } } } })
      assert.match(unknown.message, /^engines\.profiles\.x\.provider: this runtime has no nope engine/)
      const echoModel = yield* start({ engines: { profiles: { x: { provider: "echo", model: "m" } } } })
      assert.match(echoModel.message, /^engines\.profiles\.x\.model: /)
      const tool = yield* start({ tools: ["read_file"] })
      assert.match(tool.message, /^tools: no engine of this runtime implements read_file/)
    }))

  it.scoped("after a restart without its profile a worker still lists and reads, and its turns fail typed", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "rt.db")
      const withProfile = { engines: { profiles: { chatty: { provider: "echo", chunk_size: 2 } } } }
      yield* withSqliteRuntime({ filename, runtimeId: "prof", policy: withProfile }, (rt) =>
        Effect.gen(function*() {
          const { worker } = yield* rt.createWorker({
            worker_id: Ids.WorkerId.make("chatter"),
            display_name: "Chatter",
            engine: { profile: "chatty" }
          })
          assert.strictEqual((yield* runTurn(rt, worker.worker_id, "hello")).end.kind, "turn.completed")
        }))
      yield* withSqliteRuntime({ filename, runtimeId: "prof", policy: {} }, (rt) =>
        Effect.gen(function*() {
          const worker = yield* rt.getWorker("chatter")
          assert.deepStrictEqual(worker.engine, { profile: "chatty", provider: "unavailable" })
          assert.strictEqual((yield* rt.transcript("chatter")).items.length, 2)
          const diagnostics = yield* rt.diagnostics()
          assert.isTrue(diagnostics.some((d) => d.code === "profile_missing" && d.worker_id === "chatter"))
          const { end } = yield* runTurn(rt, "chatter", "again")
          assert.strictEqual(end.kind, "turn.failed")
          assert.strictEqual((end.data as { error: { code: string } }).error.code, "profile_unavailable")
          const last = (yield* rt.transcript("chatter")).items.at(-1)!
          assert.strictEqual(last.data._tag, "notice")
          assert.strictEqual((yield* rt.getWorker("chatter")).status, "idle")
        }))
    }))

  it.effect("a worker stored with an inline engine spec (before profiles) refers to its provider's profile", () =>
    Effect.gen(function*() {
      const store = yield* WorkerStore.makeMemory
      const at = new Date().toISOString()
      const legacy = {
        worker_id: Ids.WorkerId.make("old"),
        display_name: "Old",
        engine: { provider: "echo", chunk_size: 3, temperature: 0.2 }
      } as unknown as Domain.CreateWorker
      yield* store.commit({
        workers: [{
          worker_id: Ids.WorkerId.make("old"),
          spec: legacy,
          status: "idle",
          created_at: at,
          updated_at: at,
          current_turn_id: undefined,
          last_turn: undefined,
          usage: { input_tokens: 0, output_tokens: 0, cached_tokens: 0, turns: 0 },
          transcript_length: 0,
          revision: 1
        }]
      })
      const layer = Layers.layerWith(
        { policy: {} },
        Layer.merge(Layer.succeed(WorkerStore.WorkerStore, store), AllocationRegistry.layerMemory)
      )
      const worker = yield* Effect.flatMap(Runtime.Runtime, (rt) => rt.getWorker("old")).pipe(Effect.provide(layer))
      assert.deepStrictEqual(worker.engine, { profile: "echo", provider: "echo" })
    }))
})

describe("scope policy", () => {
  it.scoped("a scope must lie inside the roots, symlinks resolved, with no wider access; the recorded path is canonical", () =>
    Effect.gen(function*() {
      const { outside, reader, root } = yield* scratch
      yield* withRuntime((rt) =>
        Effect.gen(function*() {
          const refused = (scope: Domain.ScopeSpec, tools: ReadonlyArray<string> = []) =>
            Effect.flip(rt.createWorker({ display_name: "S", scope, tools }))
          const cases: ReadonlyArray<readonly [Domain.ScopeSpec, string]> = [
            [{ allow: [{ path: outside, access: "read" }] }, "scope.allow[0].path"],
            [{ allow: [{ path: join(root, "link"), access: "read" }] }, "scope.allow[0].path"],
            [{ allow: [{ path: join(root, "link", "deeper"), access: "write" }] }, "scope.allow[0].path"],
            [{ allow: [{ path: join(root, "dangling"), access: "write" }] }, "scope.allow[0].path"],
            [{ allow: [{ path: join(root, "..", "outside"), access: "read" }] }, "scope.allow[0].path"],
            [{ allow: [{ path: reader, access: "write" }] }, "scope.allow[0].access"],
            [{ allow: [{ path: join(root, "repo"), access: "write" }, { path: "/etc", access: "read" }] }, "scope.allow[1].path"]
          ]
          const before = yield* snapshot(rt)
          const errors = yield* Effect.forEach(cases, ([scope]) => refused(scope), { concurrency: "unbounded" })
          for (const [i, error] of errors.entries()) {
            assert.strictEqual(error._tag, "ScopeNotPermitted", `case ${i}`)
            assert.strictEqual((error as { field: string }).field, cases[i]![1], `case ${i}`)
            assert.notInclude(error.message, root, `case ${i} names a root`)
          }
          assert.strictEqual(yield* snapshot(rt), before)

          const noScope = yield* Effect.flip(rt.createWorker({ display_name: "T", tools: ["read_file"] }))
          assert.strictEqual(noScope._tag, "InvalidInput")
          const ok = yield* rt.createWorker({
            display_name: "Ok",
            scope: { allow: [{ path: join(root, "repo", "..", "repo", "new"), access: "write" }, { path: reader, access: "read" }] }
          })
          assert.deepStrictEqual(ok.worker.scope?.allow, [
            { path: join(root, "repo", "new"), access: "write" },
            { path: reader, access: "read" }
          ])
          assert.strictEqual((yield* rt.summary).capabilities.scopes, "write")
        }), {
        engines: [{ provider: "toolish", tools: ["read_file"], validate: () => Effect.void, turn: () => Effect.die("unused") as never }],
        policy: {
          engines: { default: "toolish" },
          tools: ["read_file"],
          scope_roots: [{ path: root, access: "write" }, { path: reader, access: "read" }]
        }
      })
    }))

  it.effect("without roots no scope and no filesystem tool can be granted; an unoffered tool is InvalidInput", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const scope = yield* Effect.flip(rt.createWorker({ display_name: "S", scope: { allow: [{ path: "/srv", access: "read" }] } }))
        assert.strictEqual(scope._tag, "ScopeNotPermitted")
        assert.strictEqual((scope as { field: string }).field, "scope")
        const tool = yield* Effect.flip(rt.createWorker({ display_name: "T", tools: ["read_file"] }))
        assert.strictEqual(tool._tag, "ScopeNotPermitted")
        assert.strictEqual((tool as { field: string }).field, "tools")
        const unoffered = yield* Effect.flip(rt.createWorker({ display_name: "U", tools: ["write_file"] }))
        assert.strictEqual(unoffered._tag, "InvalidInput")
        assert.strictEqual((unoffered as { field?: string }).field, "tools")
        assert.strictEqual((yield* rt.summary).capabilities.scopes, "none")
      }), {
      engines: [{
        provider: "toolish",
        tools: ["read_file", "write_file"],
        validate: () => Effect.void,
        turn: () => Effect.die("unused") as never
      }],
      policy: { engines: { default: "toolish", profiles: echoProfiles }, tools: ["read_file"] }
    }))
})
