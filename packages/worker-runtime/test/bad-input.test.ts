import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { AllocationRegistry, type Domain, Ids } from "@yoi/worker-runtime"
import { snapshot, withRuntime, type RuntimeService } from "./utils.js"

interface Case {
  readonly name: string
  readonly run: (rt: RuntimeService) => Effect.Effect<unknown, { readonly _tag: string }, never>
  readonly tag: string
  readonly field?: string
}

const token = (prefix: string, value: string) => Buffer.from(`${prefix}:${value}`).toString("base64url")
const create = (spec: unknown) => (rt: RuntimeService) => rt.createWorker(spec as Domain.CreateWorker)
const input = (id: string, body: unknown) => (rt: RuntimeService) => rt.sendInput(id, body as Domain.SendInput)

const IDLE = "idle-1"
const STOPPED = "stopped-1"
const WRITER = "writer-1"

/** Every rejected call; each must fail with the given tag and change nothing observable. */
const cases: ReadonlyArray<Case> = [
  { name: "create: not an object", run: create(null), tag: "InvalidInput" },
  { name: "create: a string", run: create("worker"), tag: "InvalidInput" },
  { name: "create: no display_name", run: create({}), tag: "InvalidInput", field: "display_name" },
  { name: "create: empty display_name", run: create({ display_name: "" }), tag: "InvalidInput", field: "display_name" },
  { name: "create: long display_name", run: create({ display_name: "x".repeat(201) }), tag: "InvalidInput" },
  { name: "create: display_name a number", run: create({ display_name: 7 }), tag: "InvalidInput" },
  { name: "create: unknown field", run: create({ display_name: "a", colour: "red" }), tag: "InvalidInput" },
  { name: "create: path worker_id", run: create({ worker_id: "../etc", display_name: "a" }), tag: "InvalidInput" },
  { name: "create: slash worker_id", run: create({ worker_id: "a/b", display_name: "a" }), tag: "InvalidInput" },
  { name: "create: dotdot worker_id", run: create({ worker_id: "a..b", display_name: "a" }), tag: "InvalidInput" },
  { name: "create: empty worker_id", run: create({ worker_id: "", display_name: "a" }), tag: "InvalidInput" },
  { name: "create: long worker_id", run: create({ worker_id: "w".repeat(129), display_name: "a" }), tag: "InvalidInput" },
  {
    name: "create: unknown provider",
    run: create({ display_name: "a", engine: { provider: "nope" } }),
    tag: "InvalidInput",
    field: "engine.provider"
  },
  { name: "create: malformed provider", run: create({ display_name: "a", engine: { provider: "Echo!" } }), tag: "InvalidInput" },
  { name: "create: echo with a model", run: create({ display_name: "a", engine: { provider: "echo", model: "m" } }), tag: "InvalidInput" },
  { name: "create: chunk_size 0", run: create({ display_name: "a", engine: { provider: "echo", chunk_size: 0 } }), tag: "InvalidInput" },
  { name: "create: temperature 3", run: create({ display_name: "a", engine: { provider: "echo", temperature: 3 } }), tag: "InvalidInput" },
  {
    name: "create: tools on an engine without tools",
    run: create({ display_name: "a", tools: ["rm_rf"] }),
    tag: "UnsupportedOperation"
  },
  { name: "create: malformed tool", run: create({ display_name: "a", tools: ["Read File"] }), tag: "InvalidInput" },
  { name: "create: system_prompt a number", run: create({ display_name: "a", system_prompt: 1 }), tag: "InvalidInput" },
  {
    name: "create: too much metadata",
    run: create({ display_name: "a", metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])) }),
    tag: "InvalidInput"
  },
  {
    name: "create: relative scope path",
    run: create({ display_name: "a", scope: { allow: [{ path: "repo", access: "write" }] } }),
    tag: "InvalidInput"
  },
  {
    name: "create: bad access",
    run: create({ display_name: "a", scope: { allow: [{ path: "/repo", access: "admin" }] } }),
    tag: "InvalidInput"
  },
  {
    name: "create: relative deny path",
    run: create({ display_name: "a", scope: { allow: [], deny: [{ path: "tmp" }] } }),
    tag: "InvalidInput"
  },
  {
    name: "create: delegation from a worker without an allocation",
    run: create({ display_name: "a", scope: { allow: [{ path: "/x", access: "read" }], delegated_from: IDLE } }),
    tag: "InvalidInput",
    field: "scope.delegated_from"
  },
  {
    name: "create: delegation to itself",
    run: create({
      worker_id: "self",
      display_name: "a",
      scope: { allow: [{ path: "/x", access: "read" }], delegated_from: "self" }
    }),
    tag: "InvalidInput",
    field: "scope.delegated_from"
  },
  {
    name: "create: overlapping writer",
    run: create({ display_name: "a", scope: { allow: [{ path: "/repo/src", access: "write" }] } }),
    tag: "ScopeConflict"
  },
  {
    name: "create: overlapping writer with an initial input",
    run: create({ display_name: "a", initial_input: "go", scope: { allow: [{ path: "/", access: "write" }] } }),
    tag: "ScopeConflict"
  },
  { name: "create: existing id, other spec", run: create({ worker_id: IDLE, display_name: "Other" }), tag: "WorkerAlreadyExists" },

  { name: "input: no body", run: input(IDLE, undefined), tag: "InvalidInput" },
  { name: "input: empty text", run: input(IDLE, { text: "" }), tag: "InvalidInput", field: "text" },
  { name: "input: text a number", run: input(IDLE, { text: 5 }), tag: "InvalidInput" },
  { name: "input: unknown field", run: input(IDLE, { text: "hi", role: "system" }), tag: "InvalidInput" },
  { name: "input: too long", run: input(IDLE, { text: "x".repeat(1_000_001) }), tag: "InvalidInput" },
  { name: "input: malformed id", run: input("../etc/passwd", { text: "hi" }), tag: "InvalidInput", field: "worker_id" },
  { name: "input: unknown worker", run: input("ghost", { text: "hi" }), tag: "WorkerNotFound" },
  { name: "input: stopped worker", run: input(STOPPED, { text: "hi" }), tag: "WorkerStopped" },

  ...(["getWorker", "cancel", "stop", "restore", "delete", "transcript"] as const).flatMap((op): Array<Case> => [
    { name: `${op}: malformed id`, run: (rt) => rt[op]("a/b"), tag: "InvalidInput", field: "worker_id" },
    { name: `${op}: empty id`, run: (rt) => rt[op](""), tag: "InvalidInput", field: "worker_id" },
    { name: `${op}: non-string id`, run: (rt) => rt[op](42 as never), tag: "InvalidInput", field: "worker_id" },
    { name: `${op}: unknown worker`, run: (rt) => rt[op]("ghost"), tag: "WorkerNotFound" }
  ]),
  { name: "delete: idle worker", run: (rt) => rt.delete(IDLE), tag: "WorkerStateConflict" },

  ...[0, 501, 1.5, -1, Number.NaN].flatMap((limit): Array<Case> => [
    { name: `list: limit ${limit}`, run: (rt) => rt.listWorkers({ limit }), tag: "InvalidInput", field: "limit" },
    { name: `transcript: limit ${limit}`, run: (rt) => rt.transcript(IDLE, { limit }), tag: "InvalidInput", field: "limit" },
    { name: `usage: limit ${limit}`, run: (rt) => rt.usage({ limit }), tag: "InvalidInput", field: "limit" }
  ]),
  { name: "diagnostics: limit 0", run: (rt) => rt.diagnostics({ limit: 0 }), tag: "InvalidInput", field: "limit" },
  { name: "diagnostics: limit 1001", run: (rt) => rt.diagnostics({ limit: 1001 }), tag: "InvalidInput", field: "limit" },
  { name: "list: unknown status", run: (rt) => rt.listWorkers({ status: "sleeping" }), tag: "InvalidInput", field: "status" },
  { name: "list: garbage token", run: (rt) => rt.listWorkers({ page_token: "!!" }), tag: "InvalidInput", field: "page_token" },
  {
    name: "list: a transcript token",
    run: (rt) => rt.listWorkers({ page_token: token("t", "3") }),
    tag: "InvalidInput",
    field: "page_token"
  },
  {
    name: "transcript: garbage token",
    run: (rt) => rt.transcript(IDLE, { page_token: "%%%" }),
    tag: "InvalidInput",
    field: "page_token"
  },
  {
    name: "transcript: a list token",
    run: (rt) => rt.transcript(IDLE, { page_token: token("w", IDLE) }),
    tag: "InvalidInput",
    field: "page_token"
  },
  {
    name: "transcript: negative index",
    run: (rt) => rt.transcript(IDLE, { page_token: token("t", "-1") }),
    tag: "InvalidInput",
    field: "page_token"
  },
  {
    name: "transcript: fractional index",
    run: (rt) => rt.transcript(IDLE, { page_token: token("t", "1.5") }),
    tag: "InvalidInput",
    field: "page_token"
  },
  { name: "subscribe: garbage cursor", run: (rt) => Effect.scoped(rt.subscribe({ cursor: "nope" })), tag: "CursorInvalid" },
  { name: "subscribe: unknown kind", run: (rt) => Effect.scoped(rt.subscribe({ kinds: ["boom"] })), tag: "InvalidInput" },
  {
    name: "subscribe: malformed worker",
    run: (rt) => Effect.scoped(rt.subscribe({ worker_id: "a b" })),
    tag: "InvalidInput",
    field: "worker_id"
  },
  { name: "subscribe: unknown worker", run: (rt) => Effect.scoped(rt.subscribe({ worker_id: "ghost" })), tag: "WorkerNotFound" }
]

describe("bad input", () => {
  it.effect("every operation answers bad input with a typed error and changes nothing", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const allocations = yield* AllocationRegistry.AllocationRegistry
        yield* rt.createWorker({ worker_id: Ids.WorkerId.make(IDLE), display_name: "Idle" })
        yield* rt.createWorker({ worker_id: Ids.WorkerId.make(STOPPED), display_name: "Stopped" })
        yield* rt.stop(STOPPED)
        yield* rt.createWorker({
          worker_id: Ids.WorkerId.make(WRITER),
          display_name: "Writer",
          scope: { allow: [{ path: "/repo", access: "write" }] }
        })
        const state = () => Effect.zip(snapshot(rt), Effect.map(allocations.list, (l) => JSON.stringify(l)))
        const before = yield* state()
        for (const c of cases) {
          const error: { _tag: string; field?: string; message?: string } = yield* Effect.flip(c.run(rt))
          assert.strictEqual(error._tag, c.tag, c.name)
          assert.isString(error.message, c.name)
          assert.isAbove(error.message!.length, 0, c.name)
          if (c.field !== undefined) assert.strictEqual(error.field, c.field, c.name)
          assert.deepStrictEqual(yield* state(), before, `${c.name} changed the runtime`)
        }
      })))

  it.effect("an InvalidInput from a schema names the field and says what was expected", () =>
    withRuntime((rt) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(rt.createWorker({ display_name: "a", engine: { provider: "echo", delay_ms: -5 } }))
        assert.strictEqual(error._tag, "InvalidInput")
        assert.strictEqual(error._tag === "InvalidInput" ? error.field : undefined, "engine.delay_ms")
        assert.include(error.message, "engine.delay_ms")
      })))
})
