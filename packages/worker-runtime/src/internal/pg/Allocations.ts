import { Effect, Either, Option } from "effect"
import {
  type Allocation,
  type AllocationRegistryService,
  findConflict,
  grants,
  normalize,
  releaseFrom
} from "../../AllocationRegistry.js"
import { RuntimeUnavailable } from "../../Errors.js"
import type { StoreError } from "../../WorkerStore.js"
import * as Paths from "../paths.js"
import { type AllocationRow, allocationParams, decodeAllocation } from "../sqlite/rows.js"
import { type Database, insertDiagnostic } from "./Database.js"
import type { OwnerLease } from "./OwnerLease.js"

const unavailable = (e: StoreError) => new RuntimeUnavailable({ message: `the allocation registry failed: ${e.message}` })

/**
 * The allocation registry of a PostgreSQL store, over its `allocations` table. Only the owner of the store writes
 * it (every write checks the owner lease in its transaction), so the live allocations are read once at open and
 * kept in memory; changes are decided by the core's pure `findConflict`/`releaseFrom` and written before the memory
 * changes. A new owner adopts the allocations of the previous one: they belong to the workers it recovers.
 */
export const make = (db: Database, lease: OwnerLease): Effect.Effect<AllocationRegistryService, StoreError> =>
  Effect.gen(function*() {
    const s = db.schema
    const byId = yield* db.transaction((tx) =>
      Effect.gen(function*() {
        yield* lease.check(tx)
        const adopted = yield* tx.run(`UPDATE ${s}.allocations SET instance_id = $1 WHERE instance_id != $1`, [
          lease.instanceId
        ])
        if (adopted > 0) {
          yield* insertDiagnostic(db, tx, {
            severity: "info",
            code: "allocations_adopted",
            message: `${adopted} allocation(s) of a previous instance were taken over by ${lease.instanceId}`
          })
        }
        const rows = yield* tx.all<AllocationRow>(`SELECT * FROM ${s}.allocations ORDER BY worker_id`)
        const byId = new Map<string, Allocation>()
        for (const row of rows) {
          const decoded = decodeAllocation(row)
          if (Either.isRight(decoded)) {
            byId.set(row.worker_id, decoded.right)
            continue
          }
          yield* insertDiagnostic(db, tx, {
            severity: "error",
            code: "corrupt_allocation_row",
            message: `the stored allocation of worker ${row.worker_id} could not be read and is ignored: ` +
              decoded.left,
            worker_id: row.worker_id
          })
        }
        return byId
      })
    )
    const lock = yield* Effect.makeSemaphore(1)

    const allocate: AllocationRegistryService["allocate"] = (workerId, scope) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const candidate = yield* normalize(workerId, scope, new Date().toISOString())
        const conflict = findConflict(byId, candidate)
        if (conflict !== undefined) return yield* conflict
        yield* db.transaction((tx) =>
          Effect.zipRight(
            lease.check(tx),
            tx.run(
              `INSERT INTO ${s}.allocations (worker_id, instance_id, allow, deny, delegated_from, allocated_at) ` +
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (worker_id) DO UPDATE SET instance_id = " +
                "EXCLUDED.instance_id, allow = EXCLUDED.allow, deny = EXCLUDED.deny, delegated_from = " +
                "EXCLUDED.delegated_from, allocated_at = EXCLUDED.allocated_at",
              allocationParams(candidate, lease.instanceId)
            )
          )
        ).pipe(Effect.mapError(unavailable))
        byId.set(workerId, candidate)
        return candidate
      }))

    const release: AllocationRegistryService["release"] = (workerId) =>
      lock.withPermits(1)(Effect.gen(function*() {
        if (!byId.has(workerId)) return
        const next = new Map(byId)
        const reparented = releaseFrom(next, workerId)
        yield* db.transaction((tx) =>
          Effect.gen(function*() {
            yield* lease.check(tx)
            yield* tx.run(`DELETE FROM ${s}.allocations WHERE worker_id = $1`, [workerId])
            for (const child of reparented) {
              yield* tx.run(`UPDATE ${s}.allocations SET delegated_from = $1 WHERE worker_id = $2`, [
                child.delegated_from ?? null,
                child.worker_id
              ])
            }
          })
        ).pipe(Effect.mapError(unavailable))
        byId.clear()
        for (const [id, allocation] of next) byId.set(id, allocation)
      }))

    const get: AllocationRegistryService["get"] = (workerId) => Effect.sync(() => Option.fromNullable(byId.get(workerId)))

    const check: AllocationRegistryService["check"] = (workerId, path, access) =>
      Effect.sync(() => {
        const allocation = byId.get(workerId)
        const normalized = Paths.normalize(path)
        return allocation !== undefined && normalized !== undefined && grants(allocation, normalized, access)
      })

    // Every allocation of a PostgreSQL store is its owner's (adopted at open), so every orphan is this instance's.
    const sweep: AllocationRegistryService["sweep"] = (exists) =>
      Effect.gen(function*() {
        const orphans = Array.from(byId.keys()).filter((id) => !exists(id))
        for (const id of orphans) yield* release(id)
        return orphans
      })

    return {
      allocate,
      release,
      sweep,
      get,
      list: Effect.sync(() => Array.from(byId.values()).sort((a, b) => (a.worker_id < b.worker_id ? -1 : 1))),
      check
    } satisfies AllocationRegistryService
  })
