import { useEffect, useState } from "react"

// A small history router: the Backend answers `index.html` for each of these paths.

export type Route =
  | { readonly page: "companion" }
  | { readonly page: "signin"; readonly failed: boolean }
  | { readonly page: "runtimes" }
  | { readonly page: "workers"; readonly runtimeId: string | undefined }
  | { readonly page: "worker"; readonly runtimeId: string; readonly workerId: string }
  | { readonly page: "audit" }
  | { readonly page: "notFound" }

export const parse = (pathname: string, search: string): Route => {
  const parts = pathname.split("/").filter((p) => p.length > 0).map(decodeURIComponent)
  if (parts.length === 0) return { page: "companion" }
  if (parts[0] === "signin" && parts.length === 1) {
    return { page: "signin", failed: new URLSearchParams(search).has("failed") }
  }
  if (parts[0] === "audit" && parts.length === 1) return { page: "audit" }
  if (parts[0] === "workers" && parts.length === 1) return { page: "workers", runtimeId: undefined }
  if (parts[0] === "runtimes") {
    if (parts.length === 1) return { page: "runtimes" }
    if (parts.length === 2) return { page: "workers", runtimeId: parts[1] }
    if (parts.length === 4 && parts[2] === "workers") return { page: "worker", runtimeId: parts[1]!, workerId: parts[3]! }
  }
  return { page: "notFound" }
}

const listeners = new Set<() => void>()

export const navigate = (to: string) => {
  if (to === location.pathname + location.search) return
  history.pushState(null, "", to)
  for (const listener of listeners) listener()
}

export const useRoute = (): Route => {
  const [route, setRoute] = useState(() => parse(location.pathname, location.search))
  useEffect(() => {
    const update = () => setRoute(parse(location.pathname, location.search))
    listeners.add(update)
    addEventListener("popstate", update)
    return () => {
      listeners.delete(update)
      removeEventListener("popstate", update)
    }
  }, [])
  return route
}

export const workerPath = (runtimeId: string, workerId: string) =>
  `/runtimes/${encodeURIComponent(runtimeId)}/workers/${encodeURIComponent(workerId)}`
