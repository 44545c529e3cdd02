import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { CursorExpired, CursorInvalid, InvalidInput, RuntimeUnavailable, WorkerNotFound } from "@yoi/worker-runtime"
import { Schema } from "effect"

const cursorDoc = "An event cursor to resume after, or `earliest` for the whole backlog; absent means from now. " +
  "The `Last-Event-ID` header wins over it."
const kindsDoc = "Comma-separated event kinds to receive (all when absent)."

export const EventsUrlParams = Schema.Struct({
  cursor: Schema.optional(Schema.String.annotations({ description: cursorDoc })),
  worker_id: Schema.optional(Schema.String.annotations({ description: "Only the events of this worker." })),
  kinds: Schema.optional(Schema.String.annotations({ description: kindsDoc }))
})

export const WorkerEventsUrlParams = Schema.Struct({
  cursor: Schema.optional(Schema.String.annotations({ description: cursorDoc })),
  kinds: Schema.optional(Schema.String.annotations({ description: kindsDoc }))
})

export const EventsHeaders = Schema.Struct({
  "last-event-id": Schema.optional(Schema.String)
})

/** `id: <cursor>`, `event: <kind>`, `data: <json envelope>` frames; see docs/events.md. */
export const EventStream = HttpApiSchema.Text({ contentType: "text/event-stream" }).annotations({
  description: "Server-sent events: `id: <cursor>`, `event: <kind>`, `data: <RuntimeEvent JSON>`, comment " +
    "heartbeats, `stream.live` after the replay of a stream opened with a cursor, `stream.bookmark` resume positions " +
    "on a filtered stream, and a final `stream.lagged` or `stream.error` event when the runtime ends the stream."
})

const events = HttpApiEndpoint.get("events", "/v1/events")
  .setUrlParams(EventsUrlParams)
  .setHeaders(EventsHeaders)
  .addSuccess(EventStream)
  .annotate(OpenApi.Summary, "Stream the runtime's events")

const workerEvents = HttpApiEndpoint.get("workerEvents", "/v1/workers/:worker_id/events")
  .setPath(Schema.Struct({ worker_id: Schema.String }))
  .setUrlParams(WorkerEventsUrlParams)
  .setHeaders(EventsHeaders)
  .addSuccess(EventStream)
  .annotate(OpenApi.Summary, "Stream one worker's events")

/**
 * The path of the event stream (one worker's when `workerId` is given), from the endpoints above: the SSE clients
 * cannot use the derived client (it reads whole bodies), but they take their paths from the same definition.
 */
export const streamPath = (workerId?: string | undefined): string =>
  workerId === undefined ? events.path : workerEvents.path.replace(":worker_id", encodeURIComponent(workerId))

/**
 * The observation stream (SSE). Cursor and worker problems are answered with a typed status before the stream
 * starts; problems after that arrive as a final `stream.error` event.
 */
export class EventsGroup extends HttpApiGroup.make("events")
  .add(events)
  .add(workerEvents)
  .addError(InvalidInput, { status: 400 })
  .addError(CursorInvalid, { status: 400 })
  .addError(CursorExpired, { status: 410 })
  .addError(WorkerNotFound, { status: 404 })
  .addError(RuntimeUnavailable, { status: 503 })
  .annotate(OpenApi.Description, "The observation stream (server-sent events); see docs/events.md.") {}
