import { Layer } from "effect"
import * as AllocationRegistry from "./AllocationRegistry.js"
import * as Engine from "./Engine.js"
import * as EventLog from "./EventLog.js"
import * as Runtime from "./Runtime.js"
import * as WorkerStore from "./WorkerStore.js"

export interface RuntimeOptions {
  readonly runtimeId?: string | undefined
  readonly displayName?: string | undefined
  readonly eventBacklog?: number | undefined
  readonly subscriberBuffer?: number | undefined
  readonly historyLimit?: number | undefined
  /** Engines to offer; `echo` is always added unless one with that provider name is given. */
  readonly engines?: ReadonlyArray<Engine.Engine> | undefined
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
    historyLimit: options.historyLimit ?? base.historyLimit
  }
}

export const enginesFrom = (options: RuntimeOptions): Layer.Layer<Engine.Engines> => {
  const given = options.engines ?? []
  return Engine.layer(given.some((e) => e.provider === "echo") ? given : [Engine.echo, ...given])
}

/**
 * Wires a whole runtime once over a given store and allocation registry: config, engines, event log, runtime.
 * `layerMemory` and `@yoi/worker-runtime/sqlite`'s `layerSqlite` are this with their own store.
 */
export const layerWith = <E, R>(
  options: RuntimeOptions,
  storage: Layer.Layer<WorkerStore.WorkerStore | AllocationRegistry.AllocationRegistry, E, R>
): Layer.Layer<RuntimeServices, E | WorkerStore.StoreError, R> => {
  const config = configFrom(options)
  const base = Layer.mergeAll(
    Layer.succeed(Runtime.RuntimeConfig, config),
    enginesFrom(options),
    storage
  )
  const log = EventLog.layer({
    runtimeId: config.runtimeId,
    backlog: config.eventBacklog,
    subscriberBuffer: config.subscriberBuffer
  })
  const withLog = Layer.provideMerge(log, base)
  return Layer.provideMerge(Runtime.layer, withLog)
}

/** A whole runtime in memory: nothing survives the process, cursors of a previous life are foreign. */
export const layerMemory = (
  options: RuntimeOptions = {}
): Layer.Layer<RuntimeServices, WorkerStore.StoreError> =>
  layerWith(options, Layer.merge(WorkerStore.layerMemory, AllocationRegistry.layerMemory))
