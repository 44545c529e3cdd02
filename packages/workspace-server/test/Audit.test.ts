import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as NodePath from "node:path"
import { Audit, layerSqlite } from "../src/Audit.js"
import { tempDir } from "./support.js"

const entry = (i: number) => ({
  actor: "token",
  runtime_id: i % 2 === 0 ? "local" : "gpu-box",
  worker_id: `w_${i}`,
  action: "stop" as const,
  outcome: "ok" as const,
  request_id: `req-${i}`
})

describe("audit store", () => {
  it.scopedLive("keeps every record across a restart, in order, and pages them newest first", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const file = NodePath.join(dir, "backend.db")
      // More records than one insert batch, written and closed at once: closing writes what is queued.
      yield* Effect.scoped(Effect.gen(function*() {
        const audit = yield* Layer.build(layerSqlite(file)).pipe(Effect.map((ctx) => Context.get(ctx, Audit)))
        for (let i = 0; i < 450; i++) yield* audit.record(entry(i))
      }))
      const audit = yield* Layer.build(layerSqlite(file)).pipe(Effect.map((ctx) => Context.get(ctx, Audit)))
      const first = yield* audit.page({ limit: 500 })
      assert.strictEqual(first.items.length, 450)
      assert.deepStrictEqual(first.items.slice(0, 2).map((r) => r.request_id), ["req-449", "req-448"])
      assert.strictEqual(first.items.at(-1)!.request_id, "req-0")
      yield* audit.record({ ...entry(450), outcome: "denied", error_tag: "Forbidden", worker_id: undefined })
      const latest = yield* audit.page({ limit: 1 })
      assert.deepStrictEqual(
        [latest.items[0]!.request_id, latest.items[0]!.outcome, latest.items[0]!.error_tag, latest.items[0]!.worker_id],
        ["req-450", "denied", "Forbidden", null]
      )
      const byRuntime = yield* audit.page({ runtime_id: "gpu-box", limit: 500 })
      assert.strictEqual(byRuntime.items.length, 225)
      const byWorker = yield* audit.page({ worker_id: "w_7" })
      assert.deepStrictEqual(byWorker.items.map((r) => r.request_id), ["req-7"])
      const bad = yield* audit.page({ limit: 501 }).pipe(Effect.flip)
      assert.strictEqual(bad._tag, "InvalidInput")
    }))
})
