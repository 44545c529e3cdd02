import { FetchHttpClient } from "@effect/platform"
import { Domain, layerMemory, type Profiles, Runtime, type WorkerStore } from "@yoi/worker-runtime"
import { ConfigProvider, Context, Effect, Layer, type Scope, Stream } from "effect"
import { mkdtemp, realpath, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as FsTools from "../src/FsTools.js"
import * as LlmEngines from "../src/LlmEngines.js"
import type { Fake, Protocol } from "./fakes.js"

export const KEY = "sk-test-4f9c2b7e1d"

export const env = new Map([["TEST_LLM_KEY", KEY]])

/** Fast retries so the suite stays quick; `Retry-After` still wins over them. */
export const testConfig: LlmEngines.LlmConfig = {
  retry: { maxRetries: 3, initialDelayMs: 5, maxDelayMs: 20, budgetMs: 10_000 },
  requestTimeoutMs: 10_000
}

export const provider: Record<Protocol, LlmEngines.Provider> = {
  chat: "openai-chat",
  responses: "openai",
  anthropic: "anthropic"
}

/** A worker's engine spec pointing at a fake. */
export const specFor = (fake: Fake, extra: Partial<Domain.EngineSpec> = {}): Domain.EngineSpec => ({
  provider: provider[fake.protocol],
  model: fake.protocol === "anthropic" ? "claude-test" : "gpt-test",
  base_url: fake.protocol === "anthropic" ? fake.origin : `${fake.origin}/v1`,
  api_key: { env: "TEST_LLM_KEY" },
  ...extra
})

/** The path each protocol posts to. */
export const endpoint: Record<Protocol, string> = {
  chat: "/v1/chat/completions",
  responses: "/v1/responses",
  anthropic: "/v1/messages"
}

export interface RuntimeOptions {
  /** The fake model server the `llm` profile points at (with its protocol's provider). */
  readonly fake?: Fake | undefined
  /** More profiles over the same fake, each `specFor(fake, extra)`. */
  readonly profiles?: Readonly<Record<string, Partial<Domain.EngineSpec>>> | undefined
  readonly config?: LlmEngines.LlmConfig | undefined
  readonly vars?: Map<string, string> | undefined
}

/**
 * A real in-memory Runtime with the real engines over fetch, reading secrets from `vars`: profile `llm` points at
 * the fake, every filesystem tool is offered, and scopes may be granted anywhere.
 */
export const runtime = (
  options: RuntimeOptions = {}
): Effect.Effect<Runtime.RuntimeService, WorkerStore.StoreError | Profiles.RuntimeConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const engines = LlmEngines.layer(options.config ?? testConfig).pipe(
      Layer.provide(FetchHttpClient.layer),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(options.vars ?? env)))
    )
    const fake = options.fake
    const profiles: Record<string, Domain.EngineSpec> = fake === undefined ? {} : {
      llm: specFor(fake),
      ...Object.fromEntries(Object.entries(options.profiles ?? {}).map(([name, extra]) => [name, specFor(fake, extra)]))
    }
    const context = yield* Layer.build(layerMemory({
      engineLayer: engines,
      policy: { engines: { profiles }, tools: FsTools.names, scope_roots: [{ path: "/", access: "write" }] }
    }))
    return Context.get(context, Runtime.Runtime)
  })

const terminal = new Set(["turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"])

/** Every event of the worker up to and including the end of the given turn. */
export const awaitTurn = (rt: Runtime.RuntimeService, workerId: string, turnId: string) =>
  Effect.scoped(Effect.gen(function*() {
    const stream = yield* rt.subscribe({ cursor: "earliest", worker_id: workerId })
    const events = yield* stream.pipe(
      Stream.takeUntil((e) => e.turn_id === turnId && terminal.has(e.kind)),
      Stream.runCollect
    )
    return Array.from(events)
  }))

/** Sends input and waits for the turn to end. */
export const turn = (rt: Runtime.RuntimeService, workerId: string, text: string) =>
  Effect.gen(function*() {
    const accepted = yield* rt.sendInput(workerId, { text })
    const events = yield* awaitTurn(rt, workerId, accepted.turn_id)
    const last = events[events.length - 1]!
    const end = Domain.isTurnEnd(last) ? last : yield* Effect.dieMessage(`the turn ended with ${last.kind}`)
    return { turnId: accepted.turn_id, events, end, turnEvents: events.filter((e) => e.turn_id === accepted.turn_id) }
  })

export const transcript = (rt: Runtime.RuntimeService, workerId: string) =>
  Effect.map(rt.transcript(workerId, { limit: 500 }), (page) => page.items.map((e) => e.data))

/** A fresh temporary directory (symlinks resolved), removed with the scope. */
export const tempDir = Effect.acquireRelease(
  Effect.promise(async () => realpath(await mkdtemp(join(tmpdir(), "yoi-llm-")))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)
