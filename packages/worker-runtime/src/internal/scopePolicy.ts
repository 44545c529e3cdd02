import { Effect } from "effect"
import { lstat, realpath } from "node:fs/promises"
import { posix } from "node:path"
import type { ScopeSpec } from "../Domain.js"
import { InvalidInput, ScopeNotPermitted } from "../Errors.js"
import type { ScopeRoot } from "../Profiles.js"
import * as Paths from "./paths.js"

const errorCode = (e: unknown) => (typeof e === "object" && e !== null && "code" in e ? String(e.code) : "")

/**
 * The path with every symlink resolved. Components that do not exist yet are kept as written (a write scope may
 * name a directory still to be made), but a dangling symlink is refused: it could later point anywhere.
 */
export const canonical = (path: string): Effect.Effect<string | undefined> =>
  Effect.promise(async () => {
    const tail: Array<string> = []
    let head = path
    for (;;) {
      try {
        const real = await realpath(head)
        return tail.length === 0 ? real : posix.join(real, ...tail.reverse())
      } catch (e) {
        const code = errorCode(e)
        if (code !== "ENOENT" && code !== "ENOTDIR") return undefined
        const isLink = await lstat(head).then((s) => s.isSymbolicLink(), () => false)
        if (isLink || head === "/") return undefined
        tail.push(posix.basename(head))
        head = posix.dirname(head)
      }
    }
  })

/** The configured roots, canonical. A root that cannot be resolved is dropped (it grants nothing). */
export const canonicalRoots = (roots: ReadonlyArray<ScopeRoot>): Effect.Effect<ReadonlyArray<ScopeRoot>> =>
  Effect.map(
    Effect.forEach(roots, (root) =>
      Effect.map(canonical(root.path), (path) => (path === undefined ? [] : [{ ...root, path }]))),
    (rs) => rs.flat()
  )

const notPermitted = (field: string, message: string) => Effect.fail(new ScopeNotPermitted({ field, message }))

/**
 * Checks a requested scope and tool grant against the runtime's roots and returns the scope with canonical paths,
 * so the worker is confined to what was checked even if a symlink on the way changes later. Filesystem tools need a
 * scope, and no roots means no scope and no tool can be granted. Messages never name a root.
 */
export const check = (
  roots: ReadonlyArray<ScopeRoot>,
  scope: ScopeSpec | undefined,
  tools: ReadonlyArray<string>
): Effect.Effect<ScopeSpec | undefined, ScopeNotPermitted | InvalidInput> =>
  Effect.gen(function*() {
    if (roots.length === 0) {
      if (tools.length > 0) {
        return yield* notPermitted("tools", "this runtime grants no filesystem scopes, so no filesystem tool can be granted")
      }
      if (scope !== undefined) return yield* notPermitted("scope", "this runtime grants no filesystem scopes")
      return undefined
    }
    if (scope === undefined) {
      if (tools.length > 0) {
        return yield* new InvalidInput({
          field: "scope",
          message: `${tools.join(", ")} need a scope: name the directories the worker may use (scope.allow)`
        })
      }
      return undefined
    }
    const allow: Array<ScopeSpec["allow"][number]> = []
    for (const [i, rule] of scope.allow.entries()) {
      const field = `scope.allow[${i}]`
      const path = Paths.normalize(rule.path)
      const real = path === undefined ? undefined : yield* canonical(path)
      if (real === undefined) return yield* notPermitted(`${field}.path`, `${field}.path cannot be resolved safely`)
      const containing = roots.filter((root) => Paths.isWithin(real, root.path))
      if (containing.length === 0) {
        return yield* notPermitted(`${field}.path`, `${field}.path is outside the directories this runtime grants`)
      }
      if (rule.access === "write" && !containing.some((root) => root.access === "write")) {
        return yield* notPermitted(`${field}.access`, `${field} asks for write access where this runtime grants read only`)
      }
      allow.push({ path: real, access: rule.access })
    }
    const deny: Array<{ readonly path: string }> = []
    for (const [i, rule] of (scope.deny ?? []).entries()) {
      const path = Paths.normalize(rule.path)
      const real = path === undefined ? undefined : yield* canonical(path)
      if (real === undefined) {
        return yield* notPermitted(`scope.deny[${i}].path`, `scope.deny[${i}].path cannot be resolved safely`)
      }
      deny.push({ path: real })
    }
    return {
      allow,
      ...(scope.deny === undefined ? {} : { deny }),
      ...(scope.delegated_from === undefined ? {} : { delegated_from: scope.delegated_from })
    }
  })
