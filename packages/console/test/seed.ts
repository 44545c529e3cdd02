import { Runtime } from "@yoi/worker-runtime"
import { layerSqlite } from "@yoi/worker-runtime/sqlite"
import { Effect, Schedule } from "effect"

/**
 * Gives the embedded runtime's store (before the Backend opens it) a worker with `turns` × 2 transcript entries:
 * real turns of the echo engine through the runtime, not rows written by hand.
 */
export const seedLongTranscript = (filename: string, workerId: string, turns: number): Effect.Effect<number, unknown> =>
  Effect.gen(function*() {
    const runtime = yield* Runtime.Runtime
    yield* runtime.createWorker({
      worker_id: workerId as never,
      display_name: "Long history",
      engine: { profile: "echo" }
    })
    for (let i = 0; i < turns; i++) {
      yield* runtime.sendInput(workerId, { text: `message ${i + 1}` })
      yield* runtime.getWorker(workerId).pipe(
        Effect.filterOrFail((w) => w.status === "idle"),
        Effect.retry(Schedule.spaced("1 millis"))
      )
    }
    return (yield* runtime.getWorker(workerId)).transcript_length
  }).pipe(
    Effect.provide(layerSqlite({ filename, runtimeId: "local" as never, synchronous: "normal" })),
    Effect.scoped
  )
