/**
 * `@yoi/worker-runtime/sqlite`: the durable store on `@effect/sql-sqlite-node` (WAL), kept behind its own entry point
 * so the in-memory core never loads better-sqlite3. See docs/storage.md for the schema and the promises it keeps.
 */
import { Context, Effect, Layer, type Scope } from "effect"
import { AllocationRegistry } from "./AllocationRegistry.js"
import * as Allocations from "./internal/sqlite/Allocations.js"
import * as Database from "./internal/sqlite/Database.js"
import type { StoreLocked, StoreSchemaTooNew } from "./internal/sqlite/errors.js"
import * as Leases from "./internal/sqlite/Leases.js"
import * as Store from "./internal/sqlite/Store.js"
import { layerWith, type RuntimeOptions, type RuntimeServices } from "./Layers.js"
import type { RuntimeConfigError } from "./Profiles.js"
import { type StoreError, WorkerStore, type WorkerStoreService } from "./WorkerStore.js"

export { StoreLocked, StoreSchemaTooNew } from "./internal/sqlite/errors.js"
export { SCHEMA_VERSION } from "./internal/sqlite/migrations.js"
export { SEQ_GAP_AFTER_CRASH } from "./internal/sqlite/Store.js"

export interface SqliteStoreOptions {
  /** The database file (created with its directory if missing), or `:memory:` for a private throwaway store. */
  readonly filename: string
  /** `full` (default): an acknowledged commit survives power loss. `normal`: it survives a process crash. */
  readonly synchronous?: Database.Synchronous | undefined
  /** Durable events kept for cursor replay across restarts (default 100,000). */
  readonly eventRetention?: number | undefined
  /** How long this instance's lease lasts without renewal (default 15 s). */
  readonly leaseMs?: number | undefined
  /** How often the lease is renewed and dead instances' allocations reclaimed (default 5 s). */
  readonly renewMs?: number | undefined
}

/** Why a SQLite store could not be opened. */
export type SqliteOpenError = StoreError | StoreSchemaTooNew | StoreLocked

const leaseOf = (options: SqliteStoreOptions): Leases.LeaseOptions => ({
  leaseMs: options.leaseMs ?? Leases.defaultLease.leaseMs,
  renewMs: options.renewMs ?? Leases.defaultLease.renewMs
})

const open = (
  options: SqliteStoreOptions,
  roles: { readonly store: boolean; readonly registry: boolean }
): Effect.Effect<
  {
    readonly store: Effect.Effect<WorkerStoreService, StoreError>
    readonly registry: Allocations.Registry | undefined
  },
  SqliteOpenError,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const db = yield* Database.open(options)
    const me = Leases.makeInstance()
    const lease = leaseOf(options)
    yield* Leases.register(db, me, {
      ...lease,
      storeOwner: roles.store,
      adopt: roles.store && roles.registry,
      checkAllocations: roles.registry
    })
    const registry = roles.registry ? Allocations.make(db, me) : undefined
    yield* Leases.keepAlive(db, me, {
      ...lease,
      storeOwner: roles.store,
      reclaim: roles.registry,
      onReclaimed: registry?.invalidate ?? (() => undefined)
    })
    const store = Store.make(db, { eventRetention: options.eventRetention ?? Store.defaultEventRetention })
    return { store, registry }
  })

/**
 * The worker store alone on a SQLite file. The opening instance becomes the store's only writer: another live
 * instance already holding it fails the layer with `StoreLocked`. The database closes when the layer's scope does.
 */
export const layerWorkerStore = (options: SqliteStoreOptions): Layer.Layer<WorkerStore, SqliteOpenError> =>
  Layer.scoped(WorkerStore, Effect.flatMap(open(options, { store: true, registry: false }), (o) => o.store))

/**
 * The allocation registry alone on a SQLite file, which any number of runtime instances may share: conflicts are
 * checked across all live instances in one transaction, and allocations of instances whose lease expired are
 * reclaimed (children re-parented) at startup and every `renewMs`.
 */
export const layerAllocationRegistry = (
  options: SqliteStoreOptions
): Layer.Layer<AllocationRegistry, SqliteOpenError> =>
  Layer.scoped(
    AllocationRegistry,
    Effect.map(open(options, { store: false, registry: true }), (o) => o.registry!.service)
  )

/**
 * The worker store and the allocation registry on one file and one connection, under one instance lease. A new
 * owner of the store adopts the allocations of the previous (dead) owner, so recovered workers keep their scopes.
 */
export const layerStorage = (
  options: SqliteStoreOptions
): Layer.Layer<WorkerStore | AllocationRegistry, SqliteOpenError> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const opened = yield* open(options, { store: true, registry: true })
      const store = yield* opened.store
      return Context.make(WorkerStore, store).pipe(Context.add(AllocationRegistry, opened.registry!.service))
    })
  )

/**
 * A whole durable runtime on one SQLite file: `Layers.layerWith` over `layerStorage`. Closing the layer's scope
 * stops the runtime, gives up the lease and closes the database.
 */
export const layerSqlite = (
  options: SqliteStoreOptions & RuntimeOptions
): Layer.Layer<RuntimeServices, SqliteOpenError | RuntimeConfigError> => layerWith(options, layerStorage(options))
