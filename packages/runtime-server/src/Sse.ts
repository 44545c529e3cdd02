import { HttpServerResponse } from "@effect/platform"
import {
  type CursorExpired,
  type CursorInvalid,
  type Domain,
  type InvalidInput,
  Metrics,
  Runtime,
  RuntimeUnavailable,
  type WorkerNotFound
} from "@yoi/worker-runtime"
import { Chunk, Context, Duration, Effect, Layer, type Scope, Stream } from "effect"
import { Readable } from "node:stream"
import { Shutdown } from "./Shutdown.js"

export const CONTENT_TYPE = "text/event-stream"

/** The kind of the final frame sent when a stream fails after it started. */
export const ERROR_KIND = "stream.error"

/** One event as an SSE frame. JSON never contains a raw newline, so `data` is always a single line. */
export const eventFrame = (event: Domain.RuntimeEvent): string =>
  `id: ${event.cursor}\nevent: ${event.kind}\ndata: ${JSON.stringify(event)}\n\n`

// Every subscriber receives the same event objects from the log, in seq order, and readers that keep up receive
// the same chunks. Two small rings (no WeakMap: its GC cost per event is higher than what it saves) serialize each
// event once and join each distinct chunk once, however many readers there are.
const FRAME_CACHE = 4096
const frameEvents: Array<Domain.RuntimeEvent | undefined> = new Array(FRAME_CACHE)
const frameTexts: Array<string> = new Array(FRAME_CACHE)

const cachedFrame = (event: Domain.RuntimeEvent): string => {
  const slot = event.seq % FRAME_CACHE
  if (frameEvents[slot] === event) return frameTexts[slot]!
  const text = eventFrame(event)
  frameEvents[slot] = event
  frameTexts[slot] = text
  return text
}

const CHUNK_CACHE = 8
const chunkEvents: Array<ReadonlyArray<Domain.RuntimeEvent>> = []
const chunkWrites: Array<string> = []
let chunkNext = 0

const sameEvents = (a: ReadonlyArray<Domain.RuntimeEvent>, b: ReadonlyArray<Domain.RuntimeEvent>) => {
  if (a.length !== b.length) return false
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return false
  return true
}

/** A chunk of events as one write. */
const chunkText = (events: ReadonlyArray<Domain.RuntimeEvent>): string => {
  for (let i = 0; i < chunkEvents.length; i++) {
    if (sameEvents(chunkEvents[i]!, events)) return chunkWrites[i]!
  }
  const texts: Array<string> = new Array(events.length)
  for (let i = 0; i < events.length; i++) texts[i] = cachedFrame(events[i]!)
  const text = texts.join("")
  chunkEvents[chunkNext] = events
  chunkWrites[chunkNext] = text
  chunkNext = (chunkNext + 1) % CHUNK_CACHE
  return text
}

export const commentFrame = (text: string): string => `: ${text.replace(/[\r\n]+/g, " ")}\n\n`

/**
 * The frame written at connect: a comment (Node sends the headers only with the first body write) and, when the
 * start is known, an `id` without data, which sets the client's last event id without dispatching an event, so a
 * "from now" stream that drops before its first event still resumes with no gap.
 */
export const openFrame = (startCursor: string | undefined): string =>
  startCursor === undefined ? commentFrame("connected") : `: connected\nid: ${startCursor}\n\n`

export const HEARTBEAT = commentFrame("heartbeat")

export interface StreamErrorData {
  readonly _tag: string
  readonly message: string
  readonly resume_cursor?: string | undefined
}

/** The final frame of a stream that failed after it started. */
export const errorFrame = (error: StreamErrorData): string =>
  `event: ${ERROR_KIND}\ndata: ${JSON.stringify(error)}\n\n`

/** What a running stream registers with its `Control`: how to send it a heartbeat and how to end it. */
export interface Sink {
  /** Sends a heartbeat unless writes are already waiting (then the connection is not idle). */
  readonly beat: () => void
  /** Ends the stream after the writes already pushed, with a final `stream.error` frame. */
  readonly stop: (error: RuntimeUnavailable) => void
}

/**
 * Heartbeats and stop for many streams from one place: one timer for all of them instead of a fiber each, and a
 * shutdown that reaches every open stream.
 */
export interface Control {
  readonly register: (sink: Sink) => Effect.Effect<void, never, Scope.Scope>
  readonly stopAll: (error: RuntimeUnavailable) => Effect.Effect<void>
  readonly size: () => number
}

export const makeControl = (heartbeat: Duration.DurationInput): Effect.Effect<Control, never, Scope.Scope> =>
  Effect.gen(function*() {
    const sinks = new Set<Sink>()
    yield* Effect.sleep(heartbeat).pipe(
      Effect.zipRight(Effect.sync(() => {
        for (const sink of sinks) sink.beat()
      })),
      Effect.forever,
      Effect.forkScoped
    )
    return {
      register: (sink) =>
        Effect.acquireRelease(
          Effect.sync(() => void sinks.add(sink)),
          () => Effect.sync(() => void sinks.delete(sink))
        ),
      stopAll: (error) =>
        Effect.sync(() => {
          for (const sink of sinks) sink.stop(error)
        }),
      size: () => sinks.size
    }
  })

const stalls = Metrics.family(Metrics.sseStalled, "server")("runtime")
const lagged = Metrics.family(Metrics.sseLagged, "server")("runtime")
const opened = Metrics.family(Metrics.sseOpened, "server")("runtime")
const openStreams = Metrics.family(Metrics.sseOpen, "server")("runtime")

/**
 * Writes (each a chunk of at most `subscriberBuffer` events) a stream may hold beyond the socket before its events
 * wait, and past the subscriber buffer, lag: a stalled reader costs at most this many chunks of memory.
 */
const HIGH_WATER_MARK = 2

/**
 * The wire form of an event stream as a Node `Readable` for `HttpServerResponse.raw`: the open frame, then each
 * chunk of events coalesced into one write, heartbeat comments while it is idle, and a final `stream.error` frame
 * if the events fail or the stream is stopped. A `stream.lagged` event is the last one the core emits, so the body
 * ends right after it.
 *
 * One fiber (in the caller's scope, the request's) pulls the events and pushes them, waiting whenever the readable
 * is full, so the socket's backpressure reaches the subscription. The body is a Node stream rather than an Effect
 * `Stream` because every Effect stream stage (and `Stream.merge` for heartbeats most of all) costs about as much per
 * chunk as serializing a hundred events; here there is one stage, and Node pipes it to the socket.
 */
export const body = (
  events: Stream.Stream<Domain.RuntimeEvent, RuntimeUnavailable>,
  options: { readonly control: Control; readonly startCursor?: string | undefined }
): Effect.Effect<Readable, never, Scope.Scope> =>
  Effect.gen(function*() {
    const writable = yield* Effect.makeLatch(true)
    // Object mode carries strings through to `ServerResponse.write`, which encodes them straight into the socket:
    // no intermediate Buffer per write (those cost more in GC than the encoding itself).
    const readable = new Readable({
      objectMode: true,
      highWaterMark: HIGH_WATER_MARK,
      read: () => writable.unsafeOpen()
    })
    let ended = false
    // What the client must resume from if the stream ends now: everything pushed will be delivered first.
    let last = options.startCursor
    const push = (text: string) => {
      if (!readable.push(text)) {
        stalls.unsafeUpdate(1, [])
        writable.unsafeClose()
      }
    }
    const end = (error: RuntimeUnavailable | undefined) => {
      if (ended) return
      ended = true
      if (error !== undefined) {
        push(errorFrame({
          _tag: error._tag,
          message: error.message,
          ...(last === undefined ? {} : { resume_cursor: last })
        }))
      }
      readable.push(null)
      writable.unsafeOpen()
    }
    push(openFrame(options.startCursor))
    yield* events.pipe(
      Stream.runForEachChunk((chunk) => {
        const events = Chunk.toReadonlyArray(chunk)
        if (ended || events.length === 0) return Effect.void
        push(chunkText(events))
        const newest = events[events.length - 1]!
        last = newest.cursor
        if (newest.kind === "stream.lagged") lagged.unsafeUpdate(1, [])
        return writable.await
      }),
      Effect.catchAll((error) => Effect.sync(() => end(error))),
      Effect.zipRight(Effect.sync(() => end(undefined))),
      Effect.forkScoped
    )
    yield* options.control.register({
      beat: () => {
        if (!ended && readable.readableLength === 0) push(HEARTBEAT)
      },
      stop: end
    })
    return readable
  })

export interface SseOptions {
  /** Interval between heartbeat comments. */
  readonly heartbeat: Duration.DurationInput
  /** Event streams open at once; one more is refused with `RuntimeUnavailable` (503). */
  readonly maxStreams: number
}

export const defaultOptions: SseOptions = { heartbeat: Duration.seconds(15), maxStreams: 1024 }

export type OpenError = CursorInvalid | CursorExpired | WorkerNotFound | InvalidInput | RuntimeUnavailable

/**
 * The runtime's SSE event streams: subscribes through `Runtime` (cursor and worker problems fail before the response
 * starts), enforces the stream limit and ends every open stream with a final frame when its layer shuts down.
 */
export interface SseStreamsService {
  /** Opens one stream; the subscription and the slot live as long as the request scope (the response body). */
  readonly open: (
    query: Runtime.SubscribeQuery
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse, OpenError, Scope.Scope>
  readonly active: Effect.Effect<number>
}

export class SseStreams extends Context.Tag("@yoi/runtime-server/SseStreams")<SseStreams, SseStreamsService>() {}

const shuttingDown = () => new RuntimeUnavailable({ message: "the runtime is shutting down" })

export const make = (
  options: SseOptions
): Effect.Effect<SseStreamsService, never, Runtime.Runtime | Shutdown | Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Runtime.Runtime
    const shutdown = yield* Shutdown
    const control = yield* makeControl(options.heartbeat)
    // Streams end on the server's drain signal, or when this layer closes if nobody signalled (tests, embedding).
    let closing = false
    const stopAll = Effect.suspend(() => {
      closing = true
      return control.stopAll(shuttingDown())
    })
    yield* Effect.forkScoped(Effect.zipRight(shutdown.signal, stopAll))
    yield* Effect.addFinalizer(() => stopAll)
    let active = 0

    const closed = Effect.map(shutdown.isShuttingDown, (signalled) => signalled || closing)

    const slot = Effect.acquireRelease(
      Effect.flatMap(closed, (isClosed) => {
        if (isClosed) return Effect.fail(shuttingDown())
        if (active >= options.maxStreams) {
          return Effect.fail(
            new RuntimeUnavailable({
              message: `too many event streams: at most ${options.maxStreams} may be open at once; retry later`
            })
          )
        }
        active += 1
        opened.unsafeUpdate(1, [])
        openStreams.unsafeModify(1, [])
        return Effect.void
      }),
      () =>
        Effect.sync(() => {
          active -= 1
          openStreams.unsafeModify(-1, [])
        })
    )

    const subscribe = (query: Runtime.SubscribeQuery) =>
      Effect.gen(function*() {
        if (query.cursor !== undefined && query.cursor !== "") {
          const events = yield* runtime.subscribe(query)
          return { events, startCursor: query.cursor === "earliest" ? undefined : query.cursor }
        }
        // "From now" is resolved to an explicit cursor here so the client learns where it started.
        const head = yield* runtime.headCursor
        return yield* runtime.subscribe({ ...query, cursor: head }).pipe(
          Effect.map((events) => ({ events, startCursor: head as string | undefined })),
          // Only if a whole backlog was appended in between; the stream then starts at the new head, unnamed.
          Effect.catchTag("CursorExpired", () =>
            Effect.map(runtime.subscribe({ ...query, cursor: undefined }), (events) => ({
              events,
              startCursor: undefined
            })))
        )
      })

    const open = Effect.fn("SseStreams.open")(function*(query: Runtime.SubscribeQuery) {
      yield* slot
      const { events, startCursor } = yield* subscribe(query)
      const readable = yield* body(events, { control, startCursor })
      return HttpServerResponse.raw(readable, {
        contentType: CONTENT_TYPE,
        headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
      })
    })

    return { open, active: Effect.sync(() => active) } satisfies SseStreamsService
  })

export const layer = (
  options: SseOptions = defaultOptions
): Layer.Layer<SseStreams, never, Runtime.Runtime | Shutdown> =>
  Layer.scoped(SseStreams, make(options))
