import { FileSystem, type HttpClient } from "@effect/platform"
import { LlmEngines } from "@yoi/llm-engine"
import { Ids, layerMemory, Runtime, type RuntimeOptions } from "@yoi/worker-runtime"
import { layerSqlite, type SqliteOpenError } from "@yoi/worker-runtime/sqlite"
import { Context, Data, Duration, Effect, Layer, type Scope } from "effect"
import * as NodePath from "node:path"
import {
  BackendConfigError,
  COMPANION_WORKER_ID,
  type CompanionConfig,
  DEFAULT_COMPANION_PROMPT,
  type ResolvedConfig,
  resolveToken
} from "./Config.js"
import * as EmbeddedHandle from "./EmbeddedHandle.js"
import * as LegacyPods from "./LegacyPods.js"
import * as RemoteHandle from "./RemoteHandle.js"
import type { RuntimeHandle } from "./RuntimeHandle.js"
import { RuntimeHandles } from "./RuntimeRegistry.js"
import * as Workspace from "./Workspace.js"

/** The embedded runtime's store could not be opened (locked by another process, schema too new, I/O). */
export class EmbeddedStoreError extends Data.TaggedError("EmbeddedStoreError")<{
  readonly message: string
  readonly cause: SqliteOpenError
}> {}

export interface RuntimesOptions {
  /** How long running turns of the embedded runtime may take to finish at shutdown. Default 5 s. */
  readonly drainGrace?: Duration.DurationInput | undefined
  /** Overrides for every remote (tests shorten probes and reconnects). */
  readonly remote?: Partial<Omit<RemoteHandle.RemoteOptions, "runtimeId" | "endpoint" | "token">> | undefined
}

/**
 * The embedded runtime from its store spec: `memory`, or `sqlite:<path>` (created with its directory). Real LLM
 * engines are offered next to the offline `echo` default; they reach the network only when a worker asks for one.
 */
export const embeddedLayer = (
  config: NonNullable<ResolvedConfig["embedded"]>,
  events?: ResolvedConfig["events"]
): Layer.Layer<Runtime.Runtime, EmbeddedStoreError | BackendConfigError> => {
  const options: RuntimeOptions = {
    runtimeId: config.runtime_id,
    ...(events?.bookmark_ms === undefined ? {} : { bookmarkIntervalMs: events.bookmark_ms }),
    displayName: config.display_name ?? config.runtime_id,
    engineLayer: LlmEngines.layerFetch(),
    policy: {
      engines: config.engines,
      tools: config.tools,
      scope_roots: config.scope_roots,
      ...(config.queue_limit === undefined ? {} : { queue_limit: config.queue_limit })
    }
  }
  const configError = (e: { readonly message: string }) =>
    new BackendConfigError({ message: `invalid config: embedded.${e.message}` })
  if (config.store === "memory") {
    return layerMemory(options).pipe(
      Layer.catchAll((e) => e._tag === "RuntimeConfigError" ? Layer.fail(configError(e)) : Layer.die(e))
    )
  }
  const filename = NodePath.resolve(config.store.slice("sqlite:".length))
  return layerSqlite({ ...options, filename }).pipe(
    Layer.mapError((cause) =>
      cause._tag === "RuntimeConfigError"
        ? configError(cause)
        // Operator-facing only (startup fails with it): the store's own message says which file and why.
        : new EmbeddedStoreError({ message: `the embedded runtime's store could not be opened: ${cause.message}`, cause })
    )
  )
}

/**
 * Creates the Companion when it is absent: a tool-less worker with the configured (or default) profile. An existing
 * one is left as it is, stopped or not, with its transcript.
 */
export const ensureCompanion = (runtime: Runtime.RuntimeService, companion: CompanionConfig) =>
  runtime.getWorker(COMPANION_WORKER_ID).pipe(
    Effect.asVoid,
    Effect.catchTag("WorkerNotFound", () =>
      runtime.createWorker({
        worker_id: Ids.WorkerId.make(COMPANION_WORKER_ID),
        display_name: companion.display_name ?? "Companion",
        system_prompt: companion.system_prompt ?? DEFAULT_COMPANION_PROMPT,
        ...(companion.profile === undefined ? {} : { engine: { profile: companion.profile } })
      })),
    Effect.mapError((e) =>
      new BackendConfigError({
        message: e._tag === "InvalidInput" && e.field === "engine.profile"
          ? `invalid config: companion.profile: ${e.message}`
          : `cannot create the Companion: ${e.message}`
      })
    ),
    Effect.asVoid
  )

const buildEmbedded = (
  config: NonNullable<ResolvedConfig["embedded"]>,
  companion: CompanionConfig | undefined,
  drainGrace: Duration.DurationInput,
  events: ResolvedConfig["events"]
) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(embeddedLayer(config, events))
    const runtime = Context.get(context, Runtime.Runtime)
    yield* Effect.addFinalizer(() => runtime.drain(Duration.toMillis(drainGrace)))
    if (companion !== undefined) yield* ensureCompanion(runtime, companion)
    return EmbeddedHandle.make(runtime, config.display_name ?? config.runtime_id)
  })

/** Builds one handle per configured runtime, in config order: embedded, remotes, legacy pods. */
export const fromConfig = (
  config: ResolvedConfig,
  options: RuntimesOptions = {}
): Effect.Effect<
  ReadonlyArray<RuntimeHandle>,
  BackendConfigError | EmbeddedStoreError,
  FileSystem.FileSystem | HttpClient.HttpClient | Scope.Scope
> =>
  Effect.gen(function*() {
    const handles: Array<RuntimeHandle> = []
    if (config.embedded !== undefined) {
      const grace = options.drainGrace ?? Duration.seconds(5)
      handles.push(yield* buildEmbedded(config.embedded, config.companion, grace, config.events))
    }
    for (const [i, remote] of config.remotes.entries()) {
      const token = yield* resolveToken(remote.token, `remotes[${i}].token`)
      const remoteHandle = yield* RemoteHandle.make({
        ...RemoteHandle.defaults,
        ...(config.events?.bookmark_ms === undefined
          ? {}
          : { bookmarkInterval: Duration.millis(config.events.bookmark_ms) }),
        ...options.remote,
        runtimeId: remote.runtime_id,
        displayName: remote.display_name,
        endpoint: remote.endpoints ?? remote.endpoint!,
        token,
        ...(remote.timeout_ms === undefined ? {} : { timeout: Duration.millis(remote.timeout_ms) }),
        ...(remote.probe_interval_ms === undefined
          ? {}
          : { probeInterval: Duration.millis(remote.probe_interval_ms) }),
        ...(remote.event_backlog === undefined ? {} : { backlog: remote.event_backlog }),
        ...(remote.subscriber_buffer === undefined ? {} : { subscriberBuffer: remote.subscriber_buffer })
      })
      // A remote may serve several Backends: this one sees only its own workspace's workers there.
      handles.push(Workspace.restrict(remoteHandle, config.workspaceId))
    }
    if (config.legacyPods !== undefined) {
      handles.push(yield* LegacyPods.make({
        runtimeId: config.legacyPods.runtime_id,
        displayName: config.legacyPods.display_name,
        dir: NodePath.resolve(config.legacyPods.dir)
      }))
    }
    return handles
  })

/** `RuntimeHandles` from config; the handles (and the embedded runtime) live as long as the layer. */
export const layer = (
  config: ResolvedConfig,
  options: RuntimesOptions = {}
): Layer.Layer<
  RuntimeHandles,
  BackendConfigError | EmbeddedStoreError,
  FileSystem.FileSystem | HttpClient.HttpClient
> => Layer.scoped(RuntimeHandles, fromConfig(config, options))
