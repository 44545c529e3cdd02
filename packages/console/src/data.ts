import type { Views } from "@yoi/backend-api"
import { useCallback, useEffect, useRef, useState } from "react"
import { call, describe, type Result } from "./api.js"
import * as Events from "./events.js"

/** Re-reads every `ms` while mounted (runtime health has no event: the Backend probes, the page asks). */
export const usePolling = <A>(read: () => Promise<A | undefined>, ms: number, deps: ReadonlyArray<unknown>) => {
  const [value, setValue] = useState<A | undefined>(undefined)
  const readRef = useRef(read)
  readRef.current = read
  const refresh = useCallback(async () => {
    const next = await readRef.current()
    if (next !== undefined) setValue(next)
  }, [])
  useEffect(() => {
    setValue(undefined)
    void refresh()
    const timer = setInterval(() => void refresh(), ms)
    const unRelist = Events.onRelist(() => void refresh())
    return () => {
      clearInterval(timer)
      unRelist()
    }
  }, deps)
  return [value, refresh] as const
}

let prefetched: Promise<Result<Views.RuntimeList>> | undefined = call((c) => c.runtimes.list())

export const useRuntimes = (ms = 2_000) => {
  const [error, setError] = useState<string | undefined>(undefined)
  const [list, refresh] = usePolling(async () => {
    // The first reader takes the list fetched while the page started, if it was answered (not before a sign-in).
    const first = prefetched === undefined ? undefined : await prefetched
    prefetched = undefined
    const got = first?.ok === true ? first : await call((c) => c.runtimes.list())
    if (!got.ok) {
      setError(describe(got.problem))
      return undefined
    }
    setError(undefined)
    return got.value.items
  }, ms, [])
  return { runtimes: list, error, refresh }
}

/** What the runtime offers a new worker: profiles (newer runtimes) or engine providers, and tools. Read defensively. */
export interface Offer {
  readonly profiles: ReadonlyArray<{ readonly name: string; readonly ready: boolean; readonly label: string }>
  readonly defaultProfile: string | undefined
  readonly engines: ReadonlyArray<string>
  readonly tools: ReadonlyArray<string>
}

export const offerOf = (runtime: Views.RuntimeView | undefined): Offer => {
  const capabilities = (runtime?.summary?.capabilities ?? {}) as Record<string, unknown>
  const rawProfiles = Array.isArray(capabilities.profiles)
    ? capabilities.profiles as Array<Record<string, unknown>>
    : []
  const profiles = rawProfiles.filter((p) => typeof p.name === "string").map((p) => ({
    name: String(p.name),
    ready: p.ready !== false,
    label: [p.provider, p.model].filter((x) => typeof x === "string").join(" · ")
  }))
  const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [])
  return {
    profiles,
    defaultProfile: typeof capabilities.default_profile === "string" ? capabilities.default_profile : undefined,
    engines: strings(capabilities.engines),
    tools: strings(capabilities.tools)
  }
}

/** The profile a worker thinks with (newer runtimes), else its engine provider and model. */
export const engineLabel = (engine: unknown): string => {
  const e = (engine ?? {}) as Record<string, unknown>
  const parts = [e.profile, e.provider, e.model].filter((x): x is string => typeof x === "string")
  return [...new Set(parts)].join(" · ") || "—"
}
