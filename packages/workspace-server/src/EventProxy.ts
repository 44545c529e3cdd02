import { type Domain, SseWire } from "@yoi/worker-runtime"
import { Chunk, Context, Duration, Effect, Either, Layer, Option, type Scope, Stream } from "effect"
import type { CallerShape } from "./Auth.js"
import * as CompositeCursor from "./CompositeCursor.js"
import type * as Errors from "@yoi/backend-api/Errors"
import type { RuntimeHandle } from "./RuntimeHandle.js"
import { RuntimeRegistry, type RuntimeRegistryService } from "./RuntimeRegistry.js"

/** One SSE frame after the open frame. `Error` is the final frame of a stream that failed after it started. */
export type Frame =
  | { readonly _tag: "Event"; readonly id: string; readonly event: string; readonly data: unknown }
  | { readonly _tag: "Error"; readonly data: { readonly _tag: string; readonly message: string } }

/**
 * A browser event stream: `start` is named in the open frame's `id:` (without data, it sets the browser's last event
 * id without an event, so a stream that drops before its first event still resumes with no gap).
 */
export interface FrameStream {
  readonly start: string | undefined
  readonly frames: Stream.Stream<Frame>
}

/** Frames as text, in one string for one write. */
export const encode = (frames: ReadonlyArray<Frame>): string => {
  let out = ""
  for (const f of frames) {
    out += f._tag === "Event"
      ? SseWire.frame(f.id, f.event, JSON.stringify(f.data))
      : SseWire.errorFrame(f.data)
  }
  return out
}

/** The `id` of a frame, which a browser resumes from. */
export const cursorOf = (frame: Frame): string | undefined => frame._tag === "Event" ? frame.id : undefined

/**
 * Browser event streams. `all` merges every visible runtime into one stream whose `id:` is a composite cursor that
 * resumes each runtime where it was; `worker` is one worker's events with the runtime's own cursor. Each runtime
 * subscription has its own bounded buffer; when one overflows the browser gets `stream.lagged` with the cursor to
 * resume from, and the stream ends.
 */
export interface EventProxyService {
  readonly all: (
    caller: CallerShape,
    cursor: string | undefined
  ) => Effect.Effect<FrameStream, Errors.CursorInvalid | Errors.HandleError, Scope.Scope>
  readonly worker: (
    caller: CallerShape,
    runtimeId: string,
    workerId: string,
    cursor: string | undefined
  ) => Effect.Effect<FrameStream, Errors.RouteError, Scope.Scope>
}

export class EventProxy extends Context.Tag("@yoi/workspace-server/EventProxy")<EventProxy, EventProxyService>() {}

const errorFrame = (e: { readonly _tag: string; readonly message: string }): Frame => ({
  _tag: "Error",
  data: { _tag: e._tag, message: e.message }
})

const eventFrame = (id: string, event: Domain.RuntimeEvent): Frame => ({
  _tag: "Event",
  id,
  event: event.kind,
  data: event
})

/** Runtimes that cannot be reached are left out of a composite stream; their position is kept in the cursor. */
const isUnreachable = (e: Errors.HandleError) => e._tag === "RuntimeUnavailable" || e._tag === "UpstreamTimeout"

export interface EventProxyOptions {
  /** How often `/api/events` sends a `stream.bookmark` when a hidden event or a runtime's bookmark moved it. */
  readonly bookmarkInterval?: Duration.DurationInput | undefined
}

const TICK: unique symbol = Symbol("tick")
type Tick = typeof TICK
type Item = readonly [string, Domain.RuntimeEvent] | Tick

/** A mark of the composite stream: it spans every runtime, so it has no runtime and no seq of its own. */
const compositeMark = (kind: "stream.bookmark" | "stream.live", cursor: string, replayed: number): Frame =>
  eventFrame(
    cursor,
    kind === "stream.bookmark"
      ? { cursor, seq: 0, runtime_id: "", kind, at: new Date().toISOString(), data: { resume_cursor: cursor } }
      : { cursor, seq: 0, runtime_id: "", kind, at: new Date().toISOString(), data: { replayed } }
  )

export const make = (registry: RuntimeRegistryService, options: EventProxyOptions = {}): EventProxyService => {
  const bookmarkInterval = options.bookmarkInterval ?? Duration.seconds(30)
  const subscribeOne = (h: RuntimeHandle, cursor: string | undefined, live: boolean) =>
    h.subscribe({ cursor, live }).pipe(
      Effect.map((stream) => Option.some({ h, stream, marked: live && cursor !== undefined })),
      Effect.catchIf(isUnreachable, (e) =>
        Effect.as(Effect.logDebug(`events: runtime ${h.runtimeId} left out of the stream (${e._tag})`), Option.none()))
    )

  const all: EventProxyService["all"] = (caller, cursor) =>
    Effect.gen(function*() {
      const earliest = cursor === "earliest"
      let given: CompositeCursor.Positions = new Map()
      if (cursor !== undefined && cursor !== "" && !earliest) {
        const decoded = CompositeCursor.decode(cursor)
        if (Either.isLeft(decoded)) return yield* decoded.left
        given = decoded.right
      }
      // A stream opened with a cursor has a history: it gets one `stream.live` once every runtime's replay is done.
      const live = cursor !== undefined && cursor !== ""
      const handles = registry.handles(caller)
      const positions = new Map<string, string>()
      const subscriptions = yield* Effect.forEach(handles, (h) =>
        Effect.gen(function*() {
          const start = earliest ? "earliest" : given.get(h.runtimeId)
          // The starting position is taken before subscribing so that a resume never skips what happens between.
          const position = start ?? Option.getOrUndefined(yield* h.headCursor)
          if (position !== undefined) positions.set(h.runtimeId, position)
          return yield* subscribeOne(h, start ?? position, live)
        }), { concurrency: "unbounded" })
      const streams = subscriptions.flatMap((s) =>
        Option.isSome(s)
          ? [s.value.stream.pipe(Stream.map((event): Item => [s.value.h.runtimeId, event] as const))]
          : []
      )
      const start = CompositeCursor.encode(positions)
      // Runtimes whose replay is still going: each sends `stream.live` when it is done.
      let replaying = subscriptions.filter((s) => Option.isSome(s) && s.value.marked).length
      let liveSent = !live
      let replayed = 0
      // A runtime's bookmark (or an event hidden from this caller) moved the position with no frame sent yet.
      let moved = false
      const toFrames = (items: Chunk.Chunk<Item>) => {
        const out: Array<Frame> = []
        for (const item of items) {
          if (item === TICK) {
            if (moved) {
              moved = false
              out.push(compositeMark("stream.bookmark", CompositeCursor.encode(positions), 0))
            }
            continue
          }
          const [runtimeId, event] = item
          switch (event.kind) {
            case "stream.lagged": {
              const resume = CompositeCursor.encode(positions)
              out.push(eventFrame(resume, {
                ...event,
                runtime_id: runtimeId,
                cursor: resume,
                data: {
                  resume_cursor: resume,
                  message: `the subscription of runtime ${runtimeId} fell too far behind; resume from the cursor`
                }
              }))
              return Chunk.unsafeFromArray(out)
            }
            case "stream.bookmark": {
              positions.set(runtimeId, event.cursor)
              moved = true
              continue
            }
            case "stream.live": {
              if (event.cursor !== "") positions.set(runtimeId, event.cursor)
              replaying -= 1
              replayed += event.data.replayed
              if (!liveSent && replaying <= 0) {
                liveSent = true
                moved = false
                out.push(compositeMark("stream.live", CompositeCursor.encode(positions), replayed))
              }
              continue
            }
            default: {
              positions.set(runtimeId, event.cursor)
              moved = false
              out.push(eventFrame(CompositeCursor.encode(positions), event))
            }
          }
        }
        return Chunk.unsafeFromArray(out)
      }
      const merged = Stream.mergeAll(streams, { concurrency: "unbounded" })
      const ticks = Stream.map(Stream.tick(bookmarkInterval), (): Item => TICK)
      const frames = (streams.length === 0 ? merged : Stream.merge(merged, ticks, { haltStrategy: "left" })).pipe(
        Stream.mapChunks(toFrames),
        Stream.takeUntil((frame) => frame._tag === "Event" && frame.event === "stream.lagged"),
        Stream.catchAll((e) => Stream.make(errorFrame(e)))
      )
      // With no runtime to wait for, a stream opened with a cursor is live at once.
      if (!liveSent && replaying <= 0) {
        liveSent = true
        return { start, frames: Stream.concat(Stream.make(compositeMark("stream.live", start, 0)), frames) }
      }
      return { start, frames }
    })

  const worker: EventProxyService["worker"] = (caller, runtimeId, workerId, cursor) =>
    Effect.gen(function*() {
      const h = yield* registry.handle(caller, runtimeId)
      const given = cursor === "" ? undefined : cursor
      const start = given ?? Option.getOrUndefined(yield* h.headCursor)
      // The runtime's (or the hub's) own marks pass through: they carry this runtime's cursors.
      const stream = yield* h.subscribe({ cursor: start, workerId, live: given !== undefined })
      const frames = stream.pipe(
        Stream.map((event) => eventFrame(event.cursor, event)),
        Stream.catchAll((e) => Stream.make(errorFrame(e)))
      )
      return { start: start === "earliest" ? undefined : start, frames }
    })

  return { all, worker }
}

export const layerWith = (options: EventProxyOptions = {}): Layer.Layer<EventProxy, never, RuntimeRegistry> =>
  Layer.effect(EventProxy, Effect.map(RuntimeRegistry, (registry) => make(registry, options)))

export const layer: Layer.Layer<EventProxy, never, RuntimeRegistry> = layerWith()
