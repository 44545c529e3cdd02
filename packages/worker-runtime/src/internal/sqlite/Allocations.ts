import { Array as Arr, Clock, Effect, Option } from "effect"
import {
  type Allocation,
  type AllocationRegistryService,
  findConflict,
  grants,
  normalize
} from "../../AllocationRegistry.js"
import { RuntimeUnavailable, ScopeConflict } from "../../Errors.js"
import type { StoreError } from "../../WorkerStore.js"
import * as Paths from "../paths.js"
import type { Database, Tx } from "./Database.js"
import { type Instance, loadAllocations, reclaim, releaseAll } from "./Leases.js"
import { type AllocationRow, allocationParams, decodeAllocation } from "./rows.js"

interface Snapshot {
  readonly version: number
  readonly byId: Map<string, Allocation>
  readonly owners: Map<string, string>
}

const unavailable = (e: StoreError) => new RuntimeUnavailable({ message: `the allocation registry failed: ${e.message}` })

/**
 * The allocation registry over the `allocations` table, shared by every instance that opens the file. Each
 * allocate/release is one IMMEDIATE transaction: dead instances are reclaimed, the live allocations are read, the
 * pure `findConflict`/`releaseFrom` rules decide, and the change is written, so two processes cannot both win.
 * The live allocations are cached and re-read only when another connection has committed (`PRAGMA data_version`).
 */
export const make = (db: Database, me: Instance) => {
  let cache: Snapshot | undefined

  const current = (tx: Tx) =>
    Effect.gen(function*() {
      const version = (yield* tx.all<{ data_version: number }>("PRAGMA data_version"))[0]?.data_version ?? -1
      if (cache !== undefined && cache.version === version) return cache
      const loaded = yield* loadAllocations(tx)
      cache = { version, ...loaded }
      return cache
    })

  const invalidate = () => {
    cache = undefined
  }

  const holderOf = (tx: Tx, instanceId: string) =>
    Effect.map(
      tx.all<{ pid: number; host: string }>("SELECT pid, host FROM instances WHERE instance_id = ?", [instanceId]),
      (rows) => (rows[0] === undefined ? "" : ` (pid ${rows[0].pid} on ${rows[0].host})`)
    )

  const allocate: AllocationRegistryService["allocate"] = (workerId, scope) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      db.transaction((tx) =>
        Effect.gen(function*() {
          if (yield* reclaim(tx, me, now, { adopt: false })) invalidate()
          const snapshot = yield* current(tx)
          const owner = snapshot.owners.get(workerId)
          if (owner !== undefined && owner !== me.id) {
            const held = snapshot.byId.get(workerId)
            return yield* new ScopeConflict({
              path: held?.allow[0]?.path ?? "/",
              holder_worker_id: workerId,
              message: `the allocation of worker ${workerId} is held by live runtime instance ${owner}` +
                `${yield* holderOf(tx, owner)}; it cannot be taken over until that instance's lease expires`
            })
          }
          const candidate = yield* normalize(workerId, scope, new Date().toISOString())
          const conflict = findConflict(snapshot.byId, candidate)
          if (conflict !== undefined) return yield* conflict
          yield* tx.run(
            "INSERT OR REPLACE INTO allocations (worker_id, instance_id, allow, deny, delegated_from, allocated_at) " +
              "VALUES (?, ?, ?, ?, ?, ?)",
            allocationParams(candidate, me.id)
          )
          snapshot.byId.set(workerId, candidate)
          snapshot.owners.set(workerId, me.id)
          return candidate
        })
      )).pipe(
      Effect.tapError(() => Effect.sync(invalidate)),
      Effect.catchTag("StoreError", (e) => Effect.fail(unavailable(e)))
    )

  const release: AllocationRegistryService["release"] = (workerId) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      db.transaction((tx) =>
        Effect.gen(function*() {
          if (yield* reclaim(tx, me, now, { adopt: false })) invalidate()
          const snapshot = yield* current(tx)
          const owner = snapshot.owners.get(workerId)
          if (owner === undefined) return
          if (owner !== me.id) {
            return yield* Effect.logWarning(
              `not releasing the allocation of worker ${workerId}: it is held by live runtime instance ${owner}`
            )
          }
          yield* releaseAll(tx, snapshot.byId, [workerId])
          snapshot.owners.delete(workerId)
        })
      )).pipe(
      Effect.tapError(() => Effect.sync(invalidate)),
      Effect.mapError(unavailable)
    )

  const get: AllocationRegistryService["get"] = (workerId) =>
    db.read((tx) => tx.all<AllocationRow>("SELECT * FROM allocations WHERE worker_id = ?", [workerId])).pipe(
      Effect.map((rows) => (rows[0] === undefined ? Option.none() : Option.getRight(decodeAllocation(rows[0])))),
      Effect.mapError(unavailable)
    )

  const list: AllocationRegistryService["list"] = db.read((tx) =>
    tx.all<AllocationRow>("SELECT * FROM allocations ORDER BY worker_id")
  ).pipe(
    Effect.map((rows) => Arr.getRights(rows.map(decodeAllocation))),
    Effect.mapError(unavailable)
  )

  const check: AllocationRegistryService["check"] = (workerId, path, access) =>
    Effect.map(get(workerId), (allocation) => {
      const normalized = Paths.normalize(path)
      return Option.isSome(allocation) && normalized !== undefined && grants(allocation.value, normalized, access)
    })

  const sweep: AllocationRegistryService["sweep"] = (exists) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      db.transaction((tx) =>
        Effect.gen(function*() {
          if (yield* reclaim(tx, me, now, { adopt: false })) invalidate()
          const snapshot = yield* current(tx)
          const orphans = Array.from(snapshot.owners).flatMap(([id, owner]) =>
            owner === me.id && !exists(id) ? [id] : []
          )
          if (orphans.length > 0) yield* releaseAll(tx, snapshot.byId, orphans)
          for (const id of orphans) snapshot.owners.delete(id)
          return orphans
        })
      )).pipe(
      Effect.tapError(() => Effect.sync(invalidate)),
      Effect.mapError(unavailable)
    )

  const service: AllocationRegistryService = { allocate, release, get, list, check, sweep }
  return { service, invalidate }
}

export type Registry = ReturnType<typeof make>
