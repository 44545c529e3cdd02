import { assert, describe, it } from "@effect/vitest"
import { AllocationRegistry } from "@yoi/worker-runtime"
import { Effect, Either } from "effect"
import { execFileSync } from "node:child_process"
import { mkdir, symlink, writeFile } from "node:fs/promises"
import { join } from "node:path"
import * as FsTools from "../src/FsTools.js"
import * as Fakes from "./fakes.js"
import * as H from "./harness.js"

const code = <A>(result: Either.Either<A, FsTools.ToolError>) => (Either.isLeft(result) ? result.left.code : "ok")

const toolsFor = (allow: ReadonlyArray<{ path: string; access: "read" | "write" }>, deny: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const registry = yield* AllocationRegistry.makeMemory
    yield* registry.allocate("w_1", { allow, deny: deny.map((path) => ({ path })) })
    return yield* FsTools.make().pipe(Effect.provideService(AllocationRegistry.AllocationRegistry, registry))
  })

describe("filesystem tools (review)", () => {
  it.scopedLive("a deny rule written through a symlinked directory also denies the directory it points to", () =>
    Effect.gen(function*() {
      const root = yield* H.tempDir
      const ws = join(root, "ws")
      yield* Effect.promise(async () => {
        await mkdir(join(ws, "releases", "v2", "secrets"), { recursive: true })
        await writeFile(join(ws, "releases", "v2", "secrets", "key"), "hunter2")
        await symlink(join(ws, "releases", "v2"), join(ws, "current"))
        await symlink(join(ws, "releases", "v2", "secrets"), join(ws, "alias"))
      })
      const tools = yield* toolsFor([{ path: ws, access: "write" }], [join(ws, "current", "secrets")])
      const read = (path: string) => Effect.either(tools.readFile("w_1", { path }))
      assert.strictEqual(code(yield* read("current/secrets/key")), "outside_scope")
      assert.strictEqual(code(yield* read("releases/v2/secrets/key")), "outside_scope")
      assert.strictEqual(code(yield* read("alias/key")), "outside_scope")
      const write = yield* Effect.either(tools.writeFile("w_1", { path: "releases/v2/secrets/new", content: "x" }))
      assert.strictEqual(code(write), "outside_scope")
    }))

  it.scopedLive("a named pipe in the scope is refused instead of blocking the read or the write", () =>
    Effect.gen(function*() {
      const root = yield* H.tempDir
      yield* Effect.sync(() => execFileSync("mkfifo", [join(root, "pipe")]))
      const tools = yield* toolsFor([{ path: root, access: "write" }], [])
      assert.strictEqual(code(yield* Effect.either(tools.readFile("w_1", { path: "pipe" }))), "not_a_file")
      assert.strictEqual(
        code(yield* Effect.either(tools.writeFile("w_1", { path: "pipe", content: "x" }))),
        "not_a_file"
      )
    }), 10_000)
})

const stringify = (u: unknown) => JSON.stringify(u)

describe("provider failures (review)", () => {
  for (const protocol of ["chat", "responses", "anthropic"] as const) {
    it.scopedLive(`${protocol}: an error code inside a stream that echoes the key never reaches the transcript`, () =>
      Effect.gen(function*() {
        const fake = yield* Fakes.make(protocol)
        const rt = yield* H.runtime({ fake })
        fake.script({ kind: "stream", errorAfterText: { type: `bad_key_${H.KEY}`, message: "refused" } })
        const { worker } = yield* rt.createWorker({ display_name: "Companion", engine: { profile: "llm" } })
        const result = yield* H.turn(rt, worker.worker_id, "Hi")
        assert.strictEqual(result.end.kind, "turn.failed")
        const everything = stringify([result.events, yield* H.transcript(rt, worker.worker_id)])
        assert.notInclude(everything, H.KEY)
      }))
  }

  for (const protocol of ["chat", "responses"] as const) {
    it.scopedLive(`${protocol}: a 429 for an exhausted quota, or any x-should-retry: false, is not retried`, () =>
      Effect.gen(function*() {
        const fake = yield* Fakes.make(protocol)
        const rt = yield* H.runtime({ fake })
        fake.script(
          { kind: "status", status: 429, type: "insufficient_quota", message: "You exceeded your current quota" },
          { kind: "status", status: 503, type: "server_error", message: "no", headers: { "x-should-retry": "false" } },
          { kind: "stream", text: ["never"] },
          { kind: "stream", text: ["never"] }
        )
        const { worker } = yield* rt.createWorker({ display_name: "Companion", engine: { profile: "llm" } })
        const first = yield* H.turn(rt, worker.worker_id, "Hi")
        assert.strictEqual(first.end.kind, "turn.failed")
        assert.isFalse(first.turnEvents.some((e) => e.kind === "turn.retry"))
        assert.strictEqual(fake.requests.length, 1)
        const second = yield* H.turn(rt, worker.worker_id, "Hi")
        assert.strictEqual(second.end.kind, "turn.failed")
        assert.strictEqual(fake.requests.length, 2)
      }))
  }
})
