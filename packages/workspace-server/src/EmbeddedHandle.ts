import { type Domain, Runtime } from "@yoi/worker-runtime"
import { Effect, Option, Stream } from "effect"
import type { HandleError } from "@yoi/backend-api/Errors"
import { mapRuntimeError } from "./internal/upstream.js"
import type { RuntimeHandle } from "./RuntimeHandle.js"

/**
 * An embedded runtime: a `Runtime` composed into the Backend process, reached by direct calls with no socket. Each
 * browser subscription is a subscription of the runtime's own event log, which already gives every subscriber its
 * own bounded buffer and the `stream.lagged` rule.
 */
export const make = (runtime: Runtime.RuntimeService, displayName: string = runtime.runtimeId): RuntimeHandle => {
  const runtimeId = runtime.runtimeId
  const mapError = (workerId?: string) => (e: { readonly _tag: string }): HandleError =>
    mapRuntimeError(runtimeId, e, { workerId })
  const run = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>, workerId?: string) =>
    Effect.mapError(effect, mapError(workerId))
  return {
    runtimeId,
    kind: "embedded",
    displayName,
    describe: Effect.map(runtime.summary, (s) => ({
      runtime_id: runtimeId,
      display_name: s.display_name,
      kind: "embedded" as const,
      compatibility: false,
      status: s.status === "ready" ? "online" as const : "degraded" as const,
      last_seen_at: new Date().toISOString(),
      ...(s.status === "ready" ? {} : { status_reason: "the runtime is draining" }),
      counts: s.counts,
      summary: s
    })),
    listWorkers: (query) => run(runtime.listWorkers(query)),
    getWorker: (workerId) => run(runtime.getWorker(workerId), workerId),
    createWorker: (spec: Domain.CreateWorker) => run(runtime.createWorker(spec), spec.worker_id),
    sendInput: (workerId, input) => run(runtime.sendInput(workerId, input), workerId),
    cancel: (workerId, options) => run(runtime.cancel(workerId, options), workerId),
    queue: (workerId) => run(runtime.queue(workerId), workerId),
    cancelQueued: (workerId, inputId) =>
      inputId === undefined
        ? run(runtime.clearQueue(workerId), workerId)
        : run(runtime.cancelQueued(workerId, inputId), workerId),
    stop: (workerId) => run(runtime.stop(workerId), workerId),
    restore: (workerId) => run(runtime.restore(workerId), workerId),
    delete: (workerId) => run(runtime.delete(workerId), workerId),
    transcript: (workerId, query) => run(runtime.transcript(workerId, query), workerId),
    subscribe: (query) =>
      runtime.subscribe({
        cursor: query.cursor,
        worker_id: query.workerId,
        live: query.live,
        bookmarks: query.workerId !== undefined
      }).pipe(
        Effect.map(Stream.mapError(mapError(query.workerId))),
        Effect.mapError(mapError(query.workerId))
      ),
    headCursor: Effect.map(runtime.headCursor, Option.some)
  }
}
