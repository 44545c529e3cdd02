import { HttpApiBuilder } from "@effect/platform"
import { RuntimeApi } from "@yoi/runtime-api"
import { Runtime, RuntimeUnavailable } from "@yoi/worker-runtime"
import { Effect } from "effect"

const draining = new RuntimeUnavailable({ message: "the runtime is shutting down" })

/** `/readyz` is ready once the Runtime layer is built (store open, recovery done) and until draining begins. */
export const handlers = (runtime: Runtime.RuntimeService) => {
  const ready = { status: "ready", runtime_id: runtime.runtimeId } as const
  return {
    healthz: HttpApiBuilder.handler(RuntimeApi, "health", "healthz", () => Effect.succeed({ status: "ok" } as const)),
    readyz: HttpApiBuilder.handler(
      RuntimeApi,
      "health",
      "readyz",
      () => Effect.flatMap(runtime.isDraining, (d) => (d ? Effect.fail(draining) : Effect.succeed(ready)))
    )
  }
}

export const layer = HttpApiBuilder.group(RuntimeApi, "health", (group) =>
  Effect.map(Runtime.Runtime, (runtime) => {
    const h = handlers(runtime)
    return group.handle("healthz", h.healthz).handle("readyz", h.readyz)
  }))
