import { type Domain, EventLog } from "@yoi/worker-runtime"
import { Effect } from "effect"
import { SSE_TEST_TOKEN } from "../src/testing.js"

export const TOKEN = SSE_TEST_TOKEN

export { connect, isMark, port, type RawStream } from "../src/testing.js"

/** Appends `count` events (in batches) straight to the log; each carries `bytes` of padding. */
export const appendEvents = (count: number, options: { readonly bytes?: number; readonly batch?: number } = {}) =>
  Effect.gen(function*() {
    const log = yield* EventLog.EventLog
    const pad = "x".repeat(options.bytes ?? 16)
    const batch = options.batch ?? 100
    for (let i = 0; i < count; i += batch) {
      const n = Math.min(batch, count - i)
      yield* log.append(
        Array.from({ length: n }, (_, j) => ({
          kind: "runtime.diagnostic" as const,
          data: { id: i + j, severity: "info" as const, code: "test_event", message: pad }
        }))
      )
    }
  })

/** The number an event of `appendEvents` carries (its `data.id`), or -1 for any other event. */
export const markOf = (event: Domain.RuntimeEvent): number =>
  event.kind === "runtime.diagnostic" ? event.data.id ?? -1 : -1

/** The seqs are exactly `from + 1 .. to`. */
export const contiguous = (events: ReadonlyArray<Domain.RuntimeEvent>, from: number, to: number) => {
  if (events.length !== to - from) return false
  return events.every((e, i) => e.seq === from + 1 + i)
}

/** Polls (live clock) until `check` holds, up to 20 s. */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, what: string) =>
  Effect.gen(function*() {
    while (!(yield* check)) yield* Effect.sleep("5 millis")
  }).pipe(
    Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => `timed out waiting for ${what}` }),
    Effect.orDie
  )
