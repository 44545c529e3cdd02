/**
 * `@yoi/worker-runtime/pg`: the durable store on PostgreSQL (`@effect/sql-pg`), kept behind its own entry point so
 * embedders who do not use PostgreSQL never load the `pg` driver. The same `WorkerStore` and `AllocationRegistry`
 * contracts as `@yoi/worker-runtime/sqlite`, with an owner lease row in the database in place of the file lock, so
 * a standby on another host can take a runtime over. See docs/storage.md.
 */
import { Context, Effect, Layer, type Redacted, type Scope } from "effect"
import { AllocationRegistry } from "./AllocationRegistry.js"
import * as Allocations from "./internal/pg/Allocations.js"
import * as Database from "./internal/pg/Database.js"
import * as OwnerLease from "./internal/pg/OwnerLease.js"
import * as Store from "./internal/pg/Store.js"
import type { StoreSchemaTooNew } from "./internal/sqlite/errors.js"
import { layerWith, type RuntimeOptions, type RuntimeServices } from "./Layers.js"
import type { RuntimeConfigError } from "./Profiles.js"
import { type StoreError, WorkerStore } from "./WorkerStore.js"

export { DEFAULT_SCHEMA, describeUrl } from "./internal/pg/Database.js"
export { SCHEMA_VERSION } from "./internal/pg/migrations.js"
export { DEFAULT_LEASE_MS, type LeaseHolder } from "./internal/pg/OwnerLease.js"
export { StoreSchemaTooNew } from "./internal/sqlite/errors.js"

export interface PgStoreOptions {
  /** `postgres://user:password@host:port/database`. Redacted: it may carry a password, which is never printed. */
  readonly url: Redacted.Redacted<string>
  /** The runtime whose store this is; the schema records it, and another runtime's schema is refused. */
  readonly runtimeId: string
  /** The schema holding the tables (created if missing; one runtime per schema). Default `yoi_runtime`. */
  readonly schema?: string | undefined
  /** Durable events kept for cursor replay (default 100,000). */
  readonly eventRetention?: number | undefined
  /** How long the owner lease lasts without renewal (default 5 s): a crashed owner is replaced after at most this. */
  readonly leaseMs?: number | undefined
  /** How often the owner renews its lease (default a third of `leaseMs`). */
  readonly renewMs?: number | undefined
  /** How often a standby checks whether the lease expired (default `renewMs`, at most 1 s). */
  readonly pollMs?: number | undefined
  /** Pool size (default 10). */
  readonly maxConnections?: number | undefined
  /** Connection timeout (default 5 s). */
  readonly connectTimeoutMs?: number | undefined
  /**
   * Called once when another live instance owns the store and this one starts waiting as a standby. Whatever it
   * acquires in its scope (a standby health server) is released when this instance takes over.
   */
  readonly onStandby?: ((holder: OwnerLease.LeaseHolder) => Effect.Effect<void, never, Scope.Scope>) | undefined
}

/** Why a PostgreSQL store could not be opened. */
export type PgOpenError = StoreError | StoreSchemaTooNew

const DEFAULT_EVENT_RETENTION = 100_000

/**
 * The worker store and the allocation registry on one PostgreSQL schema. Building it connects, migrates, then takes
 * the owner lease, waiting as a standby while another live instance holds it. Closing its scope gives the lease up
 * (a standby takes over at once) and closes the pool.
 */
export const layerStorage = (options: PgStoreOptions): Layer.Layer<WorkerStore | AllocationRegistry, PgOpenError> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const db = yield* Database.open(options)
      const lease = yield* OwnerLease.acquire(db, {
        ...OwnerLease.leaseOptions(options),
        runtimeId: options.runtimeId,
        onStandby: options.onStandby
      })
      const registry = yield* Allocations.make(db, lease)
      const store = yield* Store.make(db, lease, {
        eventRetention: options.eventRetention ?? DEFAULT_EVENT_RETENTION
      })
      return Context.make(WorkerStore, store).pipe(Context.add(AllocationRegistry, registry))
    })
  )

/**
 * A whole durable runtime on PostgreSQL: `Layers.layerWith` over `layerStorage`. Recovery runs once this instance
 * owns the store, so turns a dead owner left running are recorded as interrupted before the runtime serves.
 */
export const layerPg = (
  options: PgStoreOptions & RuntimeOptions
): Layer.Layer<RuntimeServices, PgOpenError | RuntimeConfigError> => layerWith(options, layerStorage(options))
