import { Context, Effect, Layer, Option } from "effect"
import type { Access, AllowRule, DenyRule, ScopeSpec } from "./Domain.js"
import { InvalidInput, type RuntimeUnavailable, ScopeConflict } from "./Errors.js"
import * as Paths from "./internal/paths.js"

/** A live allocation: which worker holds which filesystem scope. Paths are normalised absolute POSIX paths. */
export interface Allocation {
  readonly worker_id: string
  readonly allow: ReadonlyArray<AllowRule>
  readonly deny: ReadonlyArray<DenyRule>
  readonly delegated_from?: string | undefined
  readonly allocated_at: string
}

/**
 * Live allocations of filesystem scopes to workers: two writers on overlapping paths conflict, a delegated child
 * must stay inside its parent's scope, and releasing a parent re-parents its children to the grandparent.
 * (This is not the Backend's RuntimeRegistry.)
 */
export interface AllocationRegistryService {
  readonly allocate: (
    workerId: string,
    scope: ScopeSpec
  ) => Effect.Effect<Allocation, ScopeConflict | InvalidInput | RuntimeUnavailable>
  readonly release: (workerId: string) => Effect.Effect<void, RuntimeUnavailable>
  readonly get: (workerId: string) => Effect.Effect<Option.Option<Allocation>, RuntimeUnavailable>
  readonly list: Effect.Effect<ReadonlyArray<Allocation>, RuntimeUnavailable>
  /** Whether the worker's allocation grants `access` to `path` (for tools that touch the filesystem). */
  readonly check: (workerId: string, path: string, access: Access) => Effect.Effect<boolean, RuntimeUnavailable>
  /**
   * Releases the allocations this instance holds whose worker `exists` denies (orphans left by a crash between
   * allocating and committing a create, or between committing and releasing a delete). Allocations held by other
   * live instances sharing the registry are never touched. Returns the released worker ids.
   */
  readonly sweep: (exists: (workerId: string) => boolean) => Effect.Effect<ReadonlyArray<string>, RuntimeUnavailable>
}

export class AllocationRegistry extends Context.Tag("@yoi/worker-runtime/AllocationRegistry")<
  AllocationRegistry,
  AllocationRegistryService
>() {}

/** Validates and normalises a scope spec into an allocation (no conflict check). */
export const normalize = (
  workerId: string,
  scope: ScopeSpec,
  at: string
): Effect.Effect<Allocation, InvalidInput> =>
  Effect.gen(function*() {
    const allow: Array<AllowRule> = []
    for (const [i, rule] of scope.allow.entries()) {
      const path = Paths.normalize(rule.path)
      if (path === undefined) {
        return yield* new InvalidInput({ field: `scope.allow[${i}].path`, message: `invalid scope path ${rule.path}` })
      }
      allow.push({ path, access: rule.access })
    }
    const deny: Array<DenyRule> = []
    for (const [i, rule] of (scope.deny ?? []).entries()) {
      const path = Paths.normalize(rule.path)
      if (path === undefined) {
        return yield* new InvalidInput({ field: `scope.deny[${i}].path`, message: `invalid scope path ${rule.path}` })
      }
      deny.push({ path })
    }
    if (scope.delegated_from === workerId) {
      return yield* new InvalidInput({ field: "scope.delegated_from", message: "a worker cannot delegate to itself" })
    }
    return { worker_id: workerId, allow, deny, delegated_from: scope.delegated_from, allocated_at: at }
  })

/** Whether an allocation grants `access` on `path`. */
export const grants = (allocation: Allocation, path: string, access: Access): boolean =>
  !allocation.deny.some((d) => Paths.isWithin(path, d.path)) &&
  allocation.allow.some((r) => Paths.isWithin(path, r.path) && (access === "read" || r.access === "write"))

const ancestors = (byId: ReadonlyMap<string, Allocation>, allocation: Allocation): Set<string> => {
  const out = new Set<string>()
  let parent = allocation.delegated_from
  while (parent !== undefined && !out.has(parent)) {
    out.add(parent)
    parent = byId.get(parent)?.delegated_from
  }
  return out
}

/**
 * Checks a new allocation against the live ones: the delegation rule, then write/write overlap. Pure, so a store
 * can run it inside the same transaction that records the allocation.
 */
export const findConflict = (
  byId: ReadonlyMap<string, Allocation>,
  candidate: Allocation
): ScopeConflict | InvalidInput | undefined => {
  if (candidate.delegated_from !== undefined) {
    const parent = byId.get(candidate.delegated_from)
    if (parent === undefined) {
      return new InvalidInput({
        field: "scope.delegated_from",
        message: `delegating worker ${candidate.delegated_from} holds no allocation`
      })
    }
    for (const rule of candidate.allow) {
      const ok = rule.access === "write" ? grants(parent, rule.path, "write") : grants(parent, rule.path, "read")
      if (!ok) {
        return new ScopeConflict({
          path: rule.path,
          holder_worker_id: parent.worker_id,
          message: `${rule.access} access to ${rule.path} is outside the scope delegated by ${parent.worker_id}`
        })
      }
      const uncovered = parent.deny.find((d) =>
        Paths.isWithin(d.path, rule.path) && !candidate.deny.some((cd) => Paths.isWithin(d.path, cd.path))
      )
      if (uncovered !== undefined) {
        return new ScopeConflict({
          path: uncovered.path,
          holder_worker_id: parent.worker_id,
          message: `${rule.path} includes ${uncovered.path}, which ${parent.worker_id} denies; deny it too`
        })
      }
    }
  }
  const lineage = ancestors(byId, candidate)
  const writes = candidate.allow.filter((r) => r.access === "write")
  if (writes.length === 0) return undefined
  for (const other of byId.values()) {
    if (other.worker_id === candidate.worker_id || lineage.has(other.worker_id)) continue
    if (ancestors(byId, other).has(candidate.worker_id)) continue
    for (const mine of writes) {
      for (const theirs of other.allow) {
        if (theirs.access !== "write") continue
        const inner = Paths.isWithin(mine.path, theirs.path)
          ? mine.path
          : Paths.isWithin(theirs.path, mine.path)
            ? theirs.path
            : undefined
        if (inner === undefined) continue
        const carvedOut = [...candidate.deny, ...other.deny].some((d) => Paths.isWithin(inner, d.path))
        if (!carvedOut) {
          return new ScopeConflict({
            path: inner,
            holder_worker_id: other.worker_id,
            message: `write access to ${inner} overlaps the write scope of worker ${other.worker_id}`
          })
        }
      }
    }
  }
  return undefined
}

/** Applies a release: removes the allocation and re-parents its children to its own parent. */
export const releaseFrom = (byId: Map<string, Allocation>, workerId: string): ReadonlyArray<Allocation> => {
  const gone = byId.get(workerId)
  if (gone === undefined) return []
  byId.delete(workerId)
  const reparented: Array<Allocation> = []
  for (const [id, allocation] of byId) {
    if (allocation.delegated_from === workerId) {
      const next = { ...allocation, delegated_from: gone.delegated_from }
      byId.set(id, next)
      reparented.push(next)
    }
  }
  return reparented
}

export const makeMemory: Effect.Effect<AllocationRegistryService> = Effect.sync(() => {
  const byId = new Map<string, Allocation>()
  return {
    allocate: (workerId, scope) =>
      Effect.flatMap(normalize(workerId, scope, new Date().toISOString()), (candidate) => {
        const conflict = findConflict(byId, candidate)
        if (conflict !== undefined) return Effect.fail(conflict)
        byId.set(workerId, candidate)
        return Effect.succeed(candidate)
      }),
    release: (workerId) => Effect.sync(() => void releaseFrom(byId, workerId)),
    get: (workerId) => Effect.sync(() => Option.fromNullable(byId.get(workerId))),
    list: Effect.sync(() => Array.from(byId.values())),
    check: (workerId, path, access) =>
      Effect.sync(() => {
        const allocation = byId.get(workerId)
        const normalized = Paths.normalize(path)
        return allocation !== undefined && normalized !== undefined && grants(allocation, normalized, access)
      }),
    sweep: (exists) =>
      Effect.sync(() => {
        const orphans = Array.from(byId.keys()).filter((id) => !exists(id))
        for (const id of orphans) releaseFrom(byId, id)
        return orphans
      })
  } satisfies AllocationRegistryService
})

export const layerMemory: Layer.Layer<AllocationRegistry> = Layer.effect(AllocationRegistry, makeMemory)
