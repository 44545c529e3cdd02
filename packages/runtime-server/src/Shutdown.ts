import { Context, Deferred, Effect, Layer } from "effect"

export interface ShutdownService {
  /** Completes when the server begins to drain: long-lived responses (event streams) end on it. */
  readonly signal: Effect.Effect<void>
  readonly isShuttingDown: Effect.Effect<boolean>
  readonly begin: Effect.Effect<void>
}

/** The server's drain signal, shared by everything that must stop when `SIGTERM`/`SIGINT` arrives. */
export class Shutdown extends Context.Tag("@yoi/runtime-server/Shutdown")<Shutdown, ShutdownService>() {}

export const make: Effect.Effect<ShutdownService> = Effect.map(Deferred.make<void>(), (deferred) => ({
  signal: Deferred.await(deferred),
  isShuttingDown: Deferred.isDone(deferred),
  begin: Effect.asVoid(Deferred.succeed(deferred, undefined))
}))

export const layer: Layer.Layer<Shutdown> = Layer.effect(Shutdown, make)
