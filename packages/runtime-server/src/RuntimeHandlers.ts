import { HttpApiBuilder } from "@effect/platform"
import { RuntimeApi } from "@yoi/runtime-api"
import { Runtime } from "@yoi/worker-runtime"
import { Effect } from "effect"

/** One call to `Runtime` each; `layer` and the read fast path (`FastReads`) both serve these. */
export const handlers = (runtime: Runtime.RuntimeService) => ({
  summary: HttpApiBuilder.handler(RuntimeApi, "runtime", "summary", () => runtime.summary),
  usage: HttpApiBuilder.handler(RuntimeApi, "runtime", "usage", ({ urlParams }) => runtime.usage(urlParams)),
  diagnostics: HttpApiBuilder.handler(
    RuntimeApi,
    "runtime",
    "diagnostics",
    ({ urlParams }) => Effect.map(runtime.diagnostics(urlParams), (items) => ({ items }))
  )
})

export const layer = HttpApiBuilder.group(RuntimeApi, "runtime", (group) =>
  Effect.map(Runtime.Runtime, (runtime) => {
    const h = handlers(runtime)
    return group.handle("summary", h.summary).handle("usage", h.usage).handle("diagnostics", h.diagnostics)
  }))
