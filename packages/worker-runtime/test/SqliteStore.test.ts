import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { join } from "node:path"
import { WorkerStore } from "@yoi/worker-runtime"
import { layerWorkerStore } from "@yoi/worker-runtime/sqlite"
import { tempDir } from "./fixtures/sqlite.js"

/** The SQLite store's own rule; the contract it shares with the other stores is in WorkerStoreContract.test.ts. */
describe("SqliteStore", () => {
  it.scoped("a store has one writer: a second instance is refused while the first holds its lease", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "store.db")
      const first = yield* Layer.build(layerWorkerStore({ filename }))
      assert.strictEqual((yield* WorkerStore.WorkerStore.pipe(Effect.provide(first))).kind, "sqlite")
      const error = yield* Effect.flip(
        Effect.scoped(Effect.flatMap(WorkerStore.WorkerStore, (store) => store.meta).pipe(
          Effect.provide(layerWorkerStore({ filename, synchronous: "normal" }))
        ))
      )
      assert.strictEqual(error._tag, "StoreLocked")
      assert.include(error.message, `pid ${process.pid}`)
      assert.include(error.message, "one writer at a time")
    }))
})
