import { HttpApiBuilder } from "@effect/platform"
import { RuntimeApi } from "@yoi/runtime-api"
import { Metrics, Runtime } from "@yoi/worker-runtime"
import { Effect } from "effect"

const workers = Metrics.family(Metrics.workers, "runtime_id", "status")

/** Sets `yoi_workers` for a runtime from its counts; gauges of state are read when scraped, not kept on hot paths. */
export const recordWorkers = (runtime: Runtime.RuntimeService) =>
  Effect.map(runtime.summary, (summary) => {
    for (const status of ["idle", "running", "stopped"] as const) {
      workers(summary.runtime_id, status).unsafeUpdate(summary.counts[status], [])
    }
  })

export const layer = HttpApiBuilder.group(RuntimeApi, "metrics", (group) =>
  Effect.map(Runtime.Runtime, (runtime) =>
    group.handle("scrape", () => Effect.zipRight(recordWorkers(runtime), Metrics.prometheus))))
