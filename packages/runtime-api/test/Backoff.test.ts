import { assert, describe, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Random, Schedule } from "effect"
import { reconnectBackoff } from "../src/index.js"

describe("reconnectBackoff", () => {
  it.effect("grows from the initial delay and never exceeds maxDelay, jitter included", () =>
    Effect.gen(function*() {
      const schedule = reconnectBackoff({ initialDelay: Duration.millis(100), maxDelay: Duration.millis(1_000) })
      for (const seed of [1, 2, 3, 42, 1234]) {
        const delays = yield* Schedule.run(Schedule.delays(schedule), 0, Array.from({ length: 20 }, () => undefined))
          .pipe(Effect.withRandom(Random.make(seed)))
        const millis = Chunk.toReadonlyArray(delays).map(Duration.toMillis)
        assert.strictEqual(millis.length, 20)
        assert.isTrue(millis[0]! >= 50 && millis[0]! <= 100, `first delay ${millis[0]}`)
        assert.isTrue(millis.every((ms) => ms <= 1_000), `a delay exceeded the cap: ${millis.join(", ")}`)
        assert.isTrue(millis.slice(10).every((ms) => ms >= 500), `late delays stay near the cap: ${millis.join(", ")}`)
      }
    }))
})
