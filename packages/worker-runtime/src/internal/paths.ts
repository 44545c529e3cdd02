import { posix } from "node:path"

/** Normalises an absolute POSIX path (no trailing slash except for `/`); undefined when it is not one. */
export const normalize = (path: string): string | undefined => {
  if (!path.startsWith("/") || path.includes("\0")) return undefined
  const normalized = posix.normalize(path)
  return normalized.length > 1 && normalized.endsWith("/") ? normalized.slice(0, -1) : normalized
}

/** Whether `path` is `root` or lies below it (by whole segments: `/ab` is not within `/a`). */
export const isWithin = (path: string, root: string): boolean =>
  path === root || root === "/" || path.startsWith(root + "/")
