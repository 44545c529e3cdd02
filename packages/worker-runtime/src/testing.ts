import type { EngineSpec } from "./Domain.js"
import type { PolicyConfig } from "./Profiles.js"

/** Knobs of the offline echo engine, as a profile holds them. */
export interface EchoKnobs {
  readonly chunk_size?: number | undefined
  readonly delay_ms?: number | undefined
  readonly fail_after_chunks?: number | undefined
}

/** The name of the test profile with these knobs: `echo-c4`, `echo-c2-d80`, `echo-c2-f1`, `echo-d60000` ... */
export const echoName = (knobs: EchoKnobs): string =>
  ["echo", knobs.chunk_size === undefined ? "" : `c${knobs.chunk_size}`,
    knobs.delay_ms === undefined ? "" : `d${knobs.delay_ms}`,
    knobs.fail_after_chunks === undefined ? "" : `f${knobs.fail_after_chunks}`].filter((p) => p !== "").join("-")

const knobSets: ReadonlyArray<EchoKnobs> = [
  ...[1, 2, 3, 4, 6, 8].map((chunk_size) => ({ chunk_size })),
  ...[1, 2, 3, 4, 6, 8].flatMap((chunk_size) =>
    [2, 5, 10, 20, 40, 50, 60, 80, 100, 60_000].map((delay_ms) => ({ chunk_size, delay_ms }))
  ),
  { delay_ms: 60_000 },
  { fail_after_chunks: 0 },
  { chunk_size: 2, fail_after_chunks: 1 }
]

/**
 * Echo profiles for tests, demos and benchmarks, named by `echoName`: engine settings are runtime configuration, so
 * a test that wants a slow or failing echo worker names one of these profiles.
 */
export const echoProfiles: Readonly<Record<string, EngineSpec>> = Object.fromEntries(
  knobSets.map((knobs) => [echoName(knobs), { provider: "echo", ...knobs }])
)

/** A runtime policy for tests that are not about policy: every test echo profile, scopes anywhere. */
export const testPolicy: PolicyConfig = {
  engines: { profiles: echoProfiles },
  scope_roots: [{ path: "/", access: "write" }]
}

/** The `engine` of a create request for the test profile with these knobs. */
export const echo = (knobs: EchoKnobs = {}) => ({ profile: echoName(knobs) })
