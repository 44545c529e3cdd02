import { Effect, Layer, Option } from "effect"
import * as AllocationRegistry from "./AllocationRegistry.js"
import * as Engine from "./Engine.js"
import * as EventLog from "./EventLog.js"
import * as Ids from "./Ids.js"
import * as Metrics from "./Metrics.js"
import * as Profiles from "./Profiles.js"
import * as Runtime from "./Runtime.js"
import * as WorkerStore from "./WorkerStore.js"

export interface RuntimeOptions {
  readonly runtimeId?: string | undefined
  readonly displayName?: string | undefined
  readonly eventBacklog?: number | undefined
  readonly subscriberBuffer?: number | undefined
  /** How often a filtered event stream gets a `stream.bookmark` when its position moved. Default 30,000 ms. */
  readonly bookmarkIntervalMs?: number | undefined
  readonly historyLimit?: number | undefined
  /** The most inputs one worker's queue holds; wins over the policy's `queue_limit` (default 16). */
  readonly queueLimit?: number | undefined
  /** Engines to offer; `echo` is always added unless one with that provider name is given. */
  readonly engines?: ReadonlyArray<Engine.Engine> | undefined
  /**
   * More engines, built from the runtime's own allocation registry (e.g. `@yoi/llm-engine`'s `layerFetch`, whose
   * tools are confined to a worker's scope). Offered alongside `engines`; on a provider name clash `engines` wins.
   */
  readonly engineLayer?: Layer.Layer<Engine.Engines, never, AllocationRegistry.AllocationRegistry> | undefined
  /**
   * Engine profiles, offered tools and scope roots: the same document `yoi-runtime --config` reads. Without it the
   * runtime has the `echo` profile (plus one named after each engine in `engines`), no tools and no scope roots.
   */
  readonly policy?: Profiles.PolicyConfig | undefined
  /** `embedded` (the default) or `process` (served as its own process). */
  readonly kind?: "embedded" | "process" | undefined
  /**
   * Where worker, turn and entry ids come from: ULID-based unless given (tests pin them with `Ids.sequentialIds()`).
   * Time comes from Effect's `Clock`, so `TestClock` pins it.
   */
  readonly ids?: Ids.IdGeneratorService | undefined
}

/** Every service a composed runtime provides. */
export type RuntimeServices =
  | Runtime.Runtime
  | Runtime.RuntimeConfig
  | WorkerStore.WorkerStore
  | EventLog.EventLog
  | AllocationRegistry.AllocationRegistry
  | Engine.Engines

export const configFrom = (options: RuntimeOptions): Runtime.RuntimeConfigShape => {
  const base = Runtime.defaultConfig(options.runtimeId)
  return {
    runtimeId: base.runtimeId,
    displayName: options.displayName ?? options.runtimeId ?? base.displayName,
    eventBacklog: options.eventBacklog ?? base.eventBacklog,
    subscriberBuffer: options.subscriberBuffer ?? base.subscriberBuffer,
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? base.bookmarkIntervalMs,
    historyLimit: options.historyLimit ?? base.historyLimit,
    kind: options.kind ?? base.kind,
    engines: options.policy?.engines,
    implicitProfiles: (options.engines ?? []).map((e) => e.provider),
    tools: options.policy?.tools ?? [],
    scopeRoots: options.policy?.scope_roots ?? [],
    queueLimit: Math.max(
      1,
      Math.min(Runtime.MAX_QUEUE_LIMIT, options.queueLimit ?? options.policy?.queue_limit ?? base.queueLimit)
    )
  }
}

export const enginesFrom = (
  options: RuntimeOptions
): Layer.Layer<Engine.Engines, never, AllocationRegistry.AllocationRegistry> => {
  const given = options.engines ?? []
  const fixed = Engine.makeEngines(given.some((e) => e.provider === "echo") ? given : [Engine.echo, ...given])
  if (options.engineLayer === undefined) return Layer.succeed(Engine.Engines, fixed)
  return Layer.effect(
    Engine.Engines,
    Effect.map(Engine.Engines, (more): Engine.EnginesService => ({
      get: (provider) => Option.orElse(fixed.get(provider), () => more.get(provider)),
      providers: Array.from(new Set([...fixed.providers, ...more.providers])),
      tools: Array.from(new Set([...fixed.tools, ...more.tools]))
    }))
  ).pipe(Layer.provide(options.engineLayer))
}

/**
 * Wires a whole runtime once over a given store and allocation registry: config, engines, event log, runtime.
 * `layerMemory` and `@yoi/worker-runtime/sqlite`'s `layerSqlite` are this with their own store.
 */
export const layerWith = <E, R>(
  options: RuntimeOptions,
  storage: Layer.Layer<WorkerStore.WorkerStore | AllocationRegistry.AllocationRegistry, E, R>
): Layer.Layer<RuntimeServices, E | WorkerStore.StoreError | Profiles.RuntimeConfigError, R> => {
  const config = configFrom(options)
  // Every commit timed and every appended event counted (see `Metrics`), for whatever store is given.
  const timedStorage = Layer.provideMerge(
    Layer.effect(WorkerStore.WorkerStore, Effect.map(WorkerStore.WorkerStore, Metrics.instrumentStore)),
    storage
  )
  const base = Layer.merge(
    Layer.succeed(Runtime.RuntimeConfig, config),
    Layer.provideMerge(enginesFrom(options), timedStorage)
  )
  const log = Layer.effect(EventLog.EventLog, Effect.map(EventLog.EventLog, Metrics.instrumentEventLog)).pipe(
    Layer.provide(EventLog.layer({
      runtimeId: config.runtimeId,
      backlog: config.eventBacklog,
      subscriberBuffer: config.subscriberBuffer,
      bookmarkInterval: config.bookmarkIntervalMs
    }))
  )
  const withLog = Layer.provideMerge(log, base)
  const ids = Layer.succeed(Ids.IdGenerator, options.ids ?? Ids.ulidIds)
  return Layer.provideMerge(Layer.provide(Runtime.layer, ids), withLog)
}

/** A whole runtime in memory: nothing survives the process, cursors of a previous life are foreign. */
export const layerMemory = (
  options: RuntimeOptions = {}
): Layer.Layer<RuntimeServices, WorkerStore.StoreError | Profiles.RuntimeConfigError> =>
  layerWith(options, Layer.merge(WorkerStore.layerMemory, AllocationRegistry.layerMemory))
