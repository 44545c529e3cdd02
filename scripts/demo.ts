/**
 * The main job until the Backend lands: embeds a Runtime in this process (memory store, offline echo engine),
 * creates a worker, sends input, and prints the streamed turn as it happens.
 */
import { echo, testPolicy } from "@yoi/worker-runtime/testing"
import { Effect, Stream } from "effect"
import { layerMemory, Runtime } from "@yoi/worker-runtime"

const program = Effect.gen(function*() {
  const runtime = yield* Runtime.Runtime
  const { worker } = yield* runtime.createWorker({
    display_name: "Companion",
    engine: echo({ chunk_size: 6, delay_ms: 40 })
  })
  yield* Effect.log(`created ${worker.display_ref} (${worker.worker_id})`)
  const events = yield* runtime.subscribe({ worker_id: worker.worker_id })
  const printer = yield* events.pipe(
    Stream.takeUntil((e) => e.kind === "turn.completed" || e.kind === "turn.failed"),
    Stream.runForEach((e) =>
      Effect.sync(() => {
        if (e.kind === "turn.delta") process.stdout.write((e.data as { text: string }).text)
        else process.stdout.write(`\n[${e.seq}] ${e.kind}\n`)
      })
    ),
    Effect.fork
  )
  const accepted = yield* runtime.sendInput(worker.worker_id, {
    text: "Hello from an embedded Yoi Worker Runtime: this reply is streamed back in chunks."
  })
  yield* Effect.log(`turn ${accepted.turn_id} accepted`)
  yield* printer.await
  const page = yield* runtime.transcript(worker.worker_id)
  for (const entry of page.items) yield* Effect.log(`transcript #${entry.index} ${entry.data._tag}`)
  const summary = yield* runtime.summary
  yield* Effect.log(`runtime ${summary.runtime_id}: ${summary.counts.total} worker(s), usage ${JSON.stringify(summary.usage)}`)
})

Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(layerMemory({ policy: testPolicy, runtimeId: "demo" })))).catch((e) => {
  console.error(e)
  process.exit(1)
})
