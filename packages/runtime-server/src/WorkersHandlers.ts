import { HttpApiBuilder } from "@effect/platform"
import { RuntimeApi } from "@yoi/runtime-api"
import { Runtime } from "@yoi/worker-runtime"
import { Effect } from "effect"

/**
 * One call to `Runtime` each: the server never re-implements a worker rule. `layer` and the read fast path
 * (`FastReads`) both serve these.
 */
export const handlers = (runtime: Runtime.RuntimeService) => ({
  list: HttpApiBuilder.handler(RuntimeApi, "workers", "list", ({ urlParams }) => runtime.listWorkers(urlParams)),
  create: HttpApiBuilder.handler(RuntimeApi, "workers", "create", ({ payload }) => runtime.createWorker(payload)),
  get: HttpApiBuilder.handler(RuntimeApi, "workers", "get", ({ path }) => runtime.getWorker(path.worker_id)),
  input: HttpApiBuilder.handler(
    RuntimeApi,
    "workers",
    "input",
    ({ path, payload }) => runtime.sendInput(path.worker_id, payload)
  ),
  cancel: HttpApiBuilder.handler(
    RuntimeApi,
    "workers",
    "cancel",
    ({ path, payload, urlParams }) =>
      runtime.cancel(path.worker_id, { turn_id: payload?.turn_id, wait_ms: urlParams.wait_ms })
  ),
  queue: HttpApiBuilder.handler(RuntimeApi, "workers", "queue", ({ path }) => runtime.queue(path.worker_id)),
  clearQueue: HttpApiBuilder.handler(
    RuntimeApi,
    "workers",
    "clearQueue",
    ({ path }) => runtime.clearQueue(path.worker_id)
  ),
  cancelQueued: HttpApiBuilder.handler(
    RuntimeApi,
    "workers",
    "cancelQueued",
    ({ path }) => runtime.cancelQueued(path.worker_id, path.input_id)
  ),
  stop: HttpApiBuilder.handler(RuntimeApi, "workers", "stop", ({ path }) => runtime.stop(path.worker_id)),
  restore: HttpApiBuilder.handler(RuntimeApi, "workers", "restore", ({ path }) => runtime.restore(path.worker_id)),
  delete: HttpApiBuilder.handler(RuntimeApi, "workers", "delete", ({ path }) => runtime.delete(path.worker_id)),
  transcript: HttpApiBuilder.handler(
    RuntimeApi,
    "workers",
    "transcript",
    ({ path, urlParams }) => runtime.transcript(path.worker_id, urlParams)
  )
})

export const layer = HttpApiBuilder.group(RuntimeApi, "workers", (group) =>
  Effect.map(Runtime.Runtime, (runtime) => {
    const h = handlers(runtime)
    return group
      .handle("list", h.list)
      .handle("create", h.create)
      .handle("get", h.get)
      .handle("input", h.input)
      .handle("cancel", h.cancel)
      .handle("queue", h.queue)
      .handle("clearQueue", h.clearQueue)
      .handle("cancelQueued", h.cancelQueued)
      .handle("stop", h.stop)
      .handle("restore", h.restore)
      .handle("delete", h.delete)
      .handle("transcript", h.transcript)
  }))
