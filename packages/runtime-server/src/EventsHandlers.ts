import { HttpApiBuilder, type HttpApiGroup } from "@effect/platform"
import { type Authorization, RuntimeApi } from "@yoi/runtime-api"
import type { Runtime } from "@yoi/worker-runtime"
import { Effect, Layer } from "effect"
import type { Shutdown } from "./Shutdown.js"
import * as Sse from "./Sse.js"

const parseKinds = (kinds: string | undefined): ReadonlyArray<string> | undefined => {
  if (kinds === undefined) return undefined
  const list = kinds.split(",").map((k) => k.trim()).filter((k) => k.length > 0)
  return list.length === 0 ? undefined : list
}

/** `Last-Event-ID` (set by a reconnecting client) wins over `?cursor=`. */
const resumeFrom = (header: string | undefined, param: string | undefined) =>
  header !== undefined && header.length > 0 ? header : param

/** The `events` group: each handler is one call to `SseStreams.open`. */
export const handlers = HttpApiBuilder.group(RuntimeApi, "events", (handlers) =>
  Effect.gen(function*() {
    const sse = yield* Sse.SseStreams
    return handlers
      .handle("events", ({ headers, urlParams }) =>
        sse.open({
          cursor: resumeFrom(headers["last-event-id"], urlParams.cursor),
          worker_id: urlParams.worker_id,
          kinds: parseKinds(urlParams.kinds)
        }))
      .handle("workerEvents", ({ headers, path, urlParams }) =>
        sse.open({
          cursor: resumeFrom(headers["last-event-id"], urlParams.cursor),
          worker_id: path.worker_id,
          kinds: parseKinds(urlParams.kinds)
        }))
  }))

export type EventsLayer = Layer.Layer<
  HttpApiGroup.ApiGroup<"runtime-api", "events">,
  never,
  Authorization | Runtime.Runtime | Shutdown
>

export const layerWith = (options: Sse.SseOptions): EventsLayer => Layer.provide(handlers, Sse.layer(options))

export const layer: EventsLayer = layerWith(Sse.defaultOptions)
