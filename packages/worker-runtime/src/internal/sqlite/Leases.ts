import { Clock, Effect, Either, type Scope } from "effect"
import { hostname } from "node:os"
import { type Allocation, releaseFrom } from "../../AllocationRegistry.js"
import type { StoreError } from "../../WorkerStore.js"
import { ulid } from "../ulid.js"
import { type Database, insertDiagnostic, type Tx } from "./Database.js"
import { StoreLocked } from "./errors.js"
import { type AllocationRow, decodeAllocation } from "./rows.js"

/**
 * Runtime instances and their leases. Every process that opens a store registers an instance row and renews its
 * lease while alive. An instance whose lease expired (or, on this host, whose process is gone) is dead: its
 * allocations are released with their children re-parented, or adopted by the next owner of the same store.
 */
export interface Instance {
  readonly id: string
  readonly pid: number
  /** When this process started (ms since the epoch): tells a reused pid from the process that had it. */
  readonly origin: number
  readonly host: string
}

export interface LeaseOptions {
  readonly leaseMs: number
  readonly renewMs: number
}

export const defaultLease: LeaseOptions = { leaseMs: 15_000, renewMs: 5_000 }

interface InstanceRow {
  readonly instance_id: string
  readonly pid: number
  readonly process_origin: number
  readonly host: string
  readonly lease_expires_at: number
  readonly store_owner: number
}

export const makeInstance = (): Instance => ({
  id: `i_${ulid()}`,
  pid: process.pid,
  origin: Math.round(performance.timeOrigin),
  host: hostname()
})

const processExists = (pid: number): boolean => {
  const probe = Either.try({ try: () => process.kill(pid, 0), catch: (e) => (e as { code?: string }).code })
  return Either.isRight(probe) || probe.left === "EPERM"
}

const isAlive = (me: Instance, row: InstanceRow, now: number): boolean => {
  if (row.lease_expires_at <= now) return false
  if (row.host !== me.host) return true
  if (row.pid === me.pid) return row.process_origin === me.origin
  return processExists(row.pid)
}

/** Every decodable allocation with its owner. Rows that do not decode are left out (they are reported at open). */
export const loadAllocations = (tx: Tx) =>
  Effect.map(tx.all<AllocationRow>("SELECT * FROM allocations"), (rows) => {
    const byId = new Map<string, Allocation>()
    const owners = new Map<string, string>()
    for (const row of rows) {
      const decoded = decodeAllocation(row)
      if (Either.isRight(decoded)) byId.set(row.worker_id, decoded.right)
      if (typeof row.instance_id === "string") owners.set(row.worker_id, row.instance_id)
    }
    return { byId, owners }
  })

/** Releases workers' allocations (re-parenting their children) and writes the changes. */
export const releaseAll = (
  tx: Tx,
  byId: Map<string, Allocation>,
  workerIds: ReadonlyArray<string>
): Effect.Effect<{ released: number; reparented: number }, StoreError> =>
  Effect.gen(function*() {
    const before = new Map(byId)
    for (const id of workerIds) releaseFrom(byId, id)
    let released = 0
    for (const id of workerIds) released += yield* tx.run("DELETE FROM allocations WHERE worker_id = ?", [id])
    let reparented = 0
    for (const [id, allocation] of byId) {
      if (before.get(id)?.delegated_from === allocation.delegated_from) continue
      reparented += yield* tx.run("UPDATE allocations SET delegated_from = ? WHERE worker_id = ?", [
        allocation.delegated_from ?? null,
        id
      ])
    }
    return { released, reparented }
  })

/**
 * Reclaims dead instances and allocations whose owner is gone, inside the caller's transaction. With `adopt`, the
 * allocations of a dead owner of this store are taken over instead of released (they belong to the workers this
 * instance is about to recover). Answers whether anything changed.
 */
export const reclaim = (
  tx: Tx,
  me: Instance,
  now: number,
  options: { readonly adopt: boolean }
): Effect.Effect<boolean, StoreError> =>
  Effect.gen(function*() {
    const rows = yield* tx.all<InstanceRow>("SELECT * FROM instances WHERE instance_id != ?", [me.id])
    const dead = rows.filter((r) => !isAlive(me, r, now))
    const live = new Set(rows.filter((r) => !dead.includes(r)).map((r) => r.instance_id))
    live.add(me.id)
    const owners = yield* tx.all<{ instance_id: string }>("SELECT DISTINCT instance_id FROM allocations")
    const orphaned = owners.map((o) => o.instance_id).filter((id) => !live.has(id))
    if (dead.length === 0 && orphaned.length === 0) return false
    const adoptFrom = new Set(options.adopt ? dead.filter((r) => r.store_owner === 1).map((r) => r.instance_id) : [])
    for (const id of adoptFrom) {
      const adopted = yield* tx.run("UPDATE allocations SET instance_id = ? WHERE instance_id = ?", [me.id, id])
      if (adopted > 0) {
        yield* insertDiagnostic(tx, {
          severity: "info",
          code: "allocations_adopted",
          message: `${adopted} allocation(s) of the previous instance ${id} were taken over by ${me.id}`
        })
      }
    }
    const releaseFrom = orphaned.filter((id) => !adoptFrom.has(id))
    if (releaseFrom.length > 0) {
      const { byId, owners: ownerOf } = yield* loadAllocations(tx)
      const gone = new Set(releaseFrom)
      const workerIds = Array.from(ownerOf).filter(([, owner]) => gone.has(owner)).map(([id]) => id)
      const { released, reparented } = yield* releaseAll(tx, byId, workerIds)
      yield* tx.run(
        `DELETE FROM allocations WHERE instance_id IN (${releaseFrom.map(() => "?").join(", ")})`,
        releaseFrom
      )
      yield* insertDiagnostic(tx, {
        severity: "warning",
        code: "allocations_reclaimed",
        message: `${released} allocation(s) held by dead runtime instance(s) ${releaseFrom.join(", ")} were ` +
          `released and ${reparented} delegated allocation(s) re-parented`
      })
    }
    for (const row of dead) yield* tx.run("DELETE FROM instances WHERE instance_id = ?", [row.instance_id])
    return true
  })

const insertInstance = (tx: Tx, me: Instance, expires: number, storeOwner: boolean) =>
  tx.run(
    "INSERT OR REPLACE INTO instances (instance_id, pid, process_origin, host, started_at, lease_expires_at, " +
      "store_owner) VALUES (?, ?, ?, ?, ?, ?, ?)",
    [me.id, me.pid, me.origin, me.host, new Date().toISOString(), expires, storeOwner ? 1 : 0]
  )

/**
 * Registers this instance in one transaction: reclaims dead instances, refuses a store that another live instance
 * owns (`StoreLocked`), and records the lease. The lease is given up (expired, not deleted, so the next owner can
 * adopt its allocations) when the scope closes.
 */
export const register = (
  db: Database,
  me: Instance,
  options: LeaseOptions & {
    readonly storeOwner: boolean
    readonly adopt: boolean
    /** Report allocation rows that do not decode (once, at open). */
    readonly checkAllocations: boolean
  }
): Effect.Effect<void, StoreError | StoreLocked, Scope.Scope> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    yield* db.transaction((tx) =>
      Effect.gen(function*() {
        yield* reclaim(tx, me, now, { adopt: options.adopt })
        if (options.storeOwner) {
          const owners = yield* tx.all<InstanceRow>(
            "SELECT * FROM instances WHERE store_owner = 1 AND instance_id != ?",
            [me.id]
          )
          const holder = owners[0]
          if (holder !== undefined) {
            const expires = new Date(holder.lease_expires_at).toISOString()
            return yield* new StoreLocked({
              filename: db.filename,
              instance_id: holder.instance_id,
              pid: holder.pid,
              host: holder.host,
              lease_expires_at: expires,
              message: `the store ${db.filename} is in use by runtime instance ${holder.instance_id} ` +
                `(pid ${holder.pid} on ${holder.host}, lease valid until ${expires}); a store has one writer at a time`
            })
          }
        }
        yield* insertInstance(tx, me, now + options.leaseMs, options.storeOwner)
        if (options.checkAllocations) {
          const rows = yield* tx.all<AllocationRow>("SELECT * FROM allocations")
          for (const row of rows) {
            const decoded = decodeAllocation(row)
            if (Either.isRight(decoded)) continue
            yield* insertDiagnostic(tx, {
              severity: "error",
              code: "corrupt_allocation_row",
              message: `the stored allocation of worker ${row.worker_id} could not be read and is ignored: ` +
                decoded.left,
              worker_id: row.worker_id
            })
          }
        }
      })
    )
    yield* Effect.addFinalizer(() =>
      Effect.ignore(db.transaction((tx) =>
        tx.run("UPDATE instances SET lease_expires_at = 0 WHERE instance_id = ?", [me.id])
      ))
    )
  })

/**
 * Renews the lease every `renewMs` for as long as the scope is open; with `reclaim`, also reclaims the allocations
 * of instances that died meanwhile and calls `onReclaimed`. A lease found missing (another instance judged this
 * one dead) is taken again and reported.
 */
export const keepAlive = (
  db: Database,
  me: Instance,
  options: LeaseOptions & {
    readonly storeOwner: boolean
    readonly reclaim: boolean
    readonly onReclaimed: () => void
  }
): Effect.Effect<void, never, Scope.Scope> => {
  const renew = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    db.transaction((tx) =>
      Effect.gen(function*() {
        const renewed = yield* tx.run("UPDATE instances SET lease_expires_at = ? WHERE instance_id = ?", [
          now + options.leaseMs,
          me.id
        ])
        if (renewed === 0) {
          yield* insertInstance(tx, me, now + options.leaseMs, options.storeOwner)
          yield* insertDiagnostic(tx, {
            severity: "error",
            code: "lease_lost",
            message: `runtime instance ${me.id} found its lease reclaimed by another instance (it did not renew ` +
              "in time); its allocations may have been released"
          })
          options.onReclaimed()
        }
        if (options.reclaim && (yield* reclaim(tx, me, now, { adopt: false }))) options.onReclaimed()
      })
    ))
  return Effect.sleep(options.renewMs).pipe(
    Effect.zipRight(renew),
    Effect.catchAll((e) => Effect.logWarning(`lease renewal failed: ${e.message}`)),
    Effect.forever,
    Effect.forkScoped,
    Effect.asVoid
  )
}
