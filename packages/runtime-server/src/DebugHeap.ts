import { Config, Effect, Layer, Option } from "effect"
import * as NodeFs from "node:fs"

/**
 * A soak-test hook, off unless `YOI_DEBUG_HEAP_FILE` names a file: on SIGUSR2 the process collects garbage (when
 * started with `--expose-gc`) and writes `process.memoryUsage()` as JSON to that file (written whole, then renamed),
 * so a test can read a settled heap without a heap snapshot. Nothing of it is reachable over the network.
 */
export const layer: Layer.Layer<never> = Layer.scopedDiscard(Effect.gen(function*() {
  const file = yield* Config.option(Config.string("YOI_DEBUG_HEAP_FILE")).pipe(
    Effect.orElseSucceed(() => Option.none<string>())
  )
  if (Option.isNone(file)) return
  const target = file.value
  const gc = (globalThis as { gc?: () => void }).gc
  const onSignal = () => {
    // Twice: the first pass can leave objects that only finalizers of the first released.
    gc?.()
    gc?.()
    const usage = { ...process.memoryUsage(), gc: gc !== undefined, at: Date.now() }
    NodeFs.writeFileSync(`${target}.tmp`, JSON.stringify(usage))
    NodeFs.renameSync(`${target}.tmp`, target)
  }
  yield* Effect.acquireRelease(
    Effect.sync(() => process.on("SIGUSR2", onSignal)),
    () => Effect.sync(() => process.off("SIGUSR2", onSignal))
  )
  yield* Effect.logInfo(`debug heap hook on SIGUSR2 writes to ${target}`)
}))
