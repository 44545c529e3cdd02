import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

export const RuntimePath = Schema.Struct({ runtime_id: Schema.String })
export const WorkerPath = Schema.Struct({ runtime_id: Schema.String, worker_id: Schema.String })

export const EventStream = HttpApiSchema.Text({ contentType: "text/event-stream" })

export const EventsUrlParams = Schema.Struct({
  cursor: Schema.optional(Schema.String.annotations({
    description: "resume after this cursor; `earliest` replays what the runtimes retain; absent means from now"
  }))
})

export const EventsHeaders = Schema.Struct({
  "last-event-id": Schema.optional(Schema.String.annotations({ description: "wins over ?cursor=" }))
})
