import { HttpServerResponse } from "@effect/platform"
import {
  type CursorExpired,
  type CursorInvalid,
  type Domain,
  EventBus,
  type InvalidInput,
  Metrics,
  Runtime,
  RuntimeUnavailable,
  SseWire,
  type WorkerNotFound
} from "@yoi/worker-runtime"
import { Chunk, Context, Duration, Effect, Layer, Option, type Scope, Stream } from "effect"
import { Readable } from "node:stream"
import { Shutdown } from "./Shutdown.js"

export const { CONTENT_TYPE, commentFrame, ERROR_KIND, errorFrame, eventFrame, HEARTBEAT, openFrame } = SseWire
export type StreamErrorData = SseWire.StreamErrorData

// Every subscriber receives the same event objects from the log, in seq order, and readers that keep up receive
// the same chunks. Two small rings (no WeakMap: its GC cost per event is higher than what it saves) serialize each
// event once and join each distinct chunk once, however many readers there are.
const FRAME_CACHE = 4096
const frameEvents: Array<Domain.RuntimeEvent | undefined> = new Array(FRAME_CACHE)
const frameTexts: Array<string> = new Array(FRAME_CACHE)

const cachedFrame = (event: Domain.RuntimeEvent): string => {
  const slot = event.seq % FRAME_CACHE
  if (frameEvents[slot] === event) return frameTexts[slot]!
  const text = SseWire.eventFrame(event)
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

/** What a running stream registers with its `Control`: how to send it a heartbeat and how to end it. */
export interface Sink {
  /** Sends a heartbeat unless writes are already waiting (then the connection is not idle). */
  readonly beat: () => void
  /** Ends the stream after the writes already pushed, with a final `stream.error` frame. */
  readonly stop: (error: RuntimeUnavailable) => void
  /**
   * Called every half stall timeout: true while writes are waiting for the socket and none went out since the last
   * call. Two such calls in a row drop the stream (`drop`).
   */
  readonly stalled: () => boolean
  /** Closes the connection of a reader that stopped reading. */
  readonly drop: () => void
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

/** How long a stream may make no progress while writes wait for the socket before it is dropped. */
export const DEFAULT_STALL_TIMEOUT = Duration.seconds(30)

export const makeControl = (
  heartbeat: Duration.DurationInput,
  stallTimeout: Duration.DurationInput = DEFAULT_STALL_TIMEOUT
): Effect.Effect<Control, never, Scope.Scope> =>
  Effect.gen(function*() {
    const sinks = new Set<Sink>()
    // Sinks found stalled at the previous check: a second stalled check in a row (half a timeout later) drops one.
    let suspects = new Set<Sink>()
    yield* Effect.sleep(heartbeat).pipe(
      Effect.zipRight(Effect.sync(() => {
        for (const sink of sinks) sink.beat()
      })),
      Effect.forever,
      Effect.forkScoped
    )
    yield* Effect.sleep(Duration.times(Duration.decode(stallTimeout), 0.5)).pipe(
      Effect.zipRight(Effect.sync(() => {
        const next = new Set<Sink>()
        for (const sink of sinks) {
          if (!sink.stalled()) continue
          if (suspects.has(sink)) sink.drop()
          else next.add(sink)
        }
        suspects = next
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

/** The one heartbeat timer of a server's event streams (the runtime's and the Backend's). */
export class SseControl extends Context.Tag("@yoi/runtime-server/SseControl")<SseControl, Control>() {
  static readonly layer = (
    heartbeat: Duration.DurationInput,
    stallTimeout?: Duration.DurationInput
  ): Layer.Layer<SseControl> => Layer.scoped(SseControl, makeControl(heartbeat, stallTimeout))
}

/**
 * Writes (each a chunk of at most `subscriberBuffer` events) a stream may hold beyond the socket before its events
 * wait, and past the subscriber buffer, lag: a stalled reader costs at most this many chunks of memory.
 */
const HIGH_WATER_MARK = 2

export interface BodyOptions {
  readonly control: Control
  /** Named in the open frame's `id`, and the resume cursor of an error frame sent before any item. */
  readonly startCursor?: string | undefined
  /** The `server` label of the stream metrics (`yoi_sse_*`); default `runtime`. */
  readonly server?: "runtime" | "backend" | undefined
}

// The event stream metrics of each server, tagged once (see `Metrics.family`).
const streamMetrics = (server: string) => ({
  opened: Metrics.family(Metrics.sseOpened, "server")(server),
  open: Metrics.family(Metrics.sseOpen, "server")(server),
  stalls: Metrics.family(Metrics.sseStalled, "server")(server),
  lagged: Metrics.family(Metrics.sseLagged, "server")(server),
  dropped: Metrics.family(Metrics.sseDropped, "server")(server)
})
const metricsOf = { runtime: streamMetrics("runtime"), backend: streamMetrics("backend") }

/**
 * The wire form of a stream of items as a Node `Readable` for `HttpServerResponse.raw`: the open frame, then each
 * chunk of items coalesced into one write (`encode`), heartbeat comments while it is idle, and a final `stream.error`
 * frame (carrying the cursor of the last item written) if the items fail or the stream is stopped.
 *
 * One fiber (in the caller's scope, the request's) pulls the items and pushes them, waiting whenever the readable
 * is full, so the socket's backpressure reaches the subscription. The body is a Node stream rather than an Effect
 * `Stream` because every Effect stream stage (and `Stream.merge` for heartbeats most of all) costs about as much per
 * chunk as serializing a hundred events, and a merged heartbeat costs a fiber and a timer per stream; here there is
 * one stage, one timer for all streams (`Control`), and Node pipes it to the socket.
 */
export const bodyWith = <A, E extends { readonly _tag: string; readonly message: string }>(
  items: Stream.Stream<A, E>,
  encode: (items: ReadonlyArray<A>) => string,
  cursorOf: (item: A) => string | undefined,
  options: BodyOptions,
  /** Whether an item ends the stream because its reader lagged (counted in `yoi_sse_streams_lagged_total`). */
  isLagged: (item: A) => boolean = () => false
): Effect.Effect<Readable, never, Scope.Scope> =>
  Effect.gen(function*() {
    const metrics = metricsOf[options.server ?? "runtime"]
    metrics.opened.unsafeUpdate(1, [])
    metrics.open.unsafeModify(1, [])
    yield* Effect.addFinalizer(() => Effect.sync(() => metrics.open.unsafeModify(-1, [])))
    const writable = yield* Effect.makeLatch(true)
    // Whether the socket took anything since the last stall check.
    let progressed = true
    // Object mode carries strings through to `ServerResponse.write`, which encodes them straight into the socket:
    // no intermediate Buffer per write (those cost more in GC than the encoding itself).
    const readable = new Readable({
      objectMode: true,
      highWaterMark: HIGH_WATER_MARK,
      // Node asks for more only while the socket takes what it is given: that is the progress the stall check reads.
      read: () => {
        progressed = true
        writable.unsafeOpen()
      }
    })
    let ended = false
    // What the client must resume from if the stream ends now: everything pushed will be delivered first.
    let last = options.startCursor
    const push = (text: string) => {
      // A write into an empty buffer starts the wait afresh: an idle stream is not a stalled one.
      if (readable.readableLength === 0) progressed = true
      if (!readable.push(text)) {
        metrics.stalls.unsafeUpdate(1, [])
        writable.unsafeClose()
      }
    }
    const end = (error: E | RuntimeUnavailable | undefined) => {
      if (ended) return
      ended = true
      if (error !== undefined) {
        push(SseWire.errorFrame({
          _tag: error._tag,
          message: error.message,
          ...(last === undefined ? {} : { resume_cursor: last })
        }))
      }
      readable.push(null)
      writable.unsafeOpen()
    }
    push(SseWire.openFrame(options.startCursor))
    const write = (chunk: Chunk.Chunk<A>): Effect.Effect<void> => {
      const batch = Chunk.toReadonlyArray(chunk)
      if (ended || batch.length === 0) return Effect.void
      push(encode(batch))
      if (isLagged(batch[batch.length - 1]!)) metrics.lagged.unsafeUpdate(1, [])
      for (let i = batch.length - 1; i >= 0; i--) {
        const cursor = cursorOf(batch[i]!)
        if (cursor !== undefined) {
          last = cursor
          break
        }
      }
      return writable.await
    }
    // A subscription's own pull, when the stream is one, is a loop on one fiber with no stream machinery behind it.
    const run: Effect.Effect<void, E> = Option.match(EventBus.pullOf(items), {
      onNone: () => Stream.runForEachChunk(items, write),
      onSome: (pull) =>
        Effect.forever(Effect.flatMap(pull, write)).pipe(
          Effect.catchAll((e) => Option.isSome(e) ? Effect.fail(e.value) : Effect.void)
        )
    })
    yield* run.pipe(
      Effect.catchAll((error) => Effect.sync(() => end(error))),
      Effect.zipRight(Effect.sync(() => end(undefined))),
      Effect.forkScoped
    )
    yield* options.control.register({
      beat: () => {
        if (!ended && readable.readableLength === 0) push(SseWire.HEARTBEAT)
      },
      stop: end,
      stalled: () => {
        const waiting = readable.readableLength > 0 && !progressed
        progressed = false
        return waiting
      },
      drop: () => {
        // No final frame can reach a reader that stopped reading: the connection closes, and the reader resumes with
        // the `Last-Event-ID` of the last frame it did receive (every frame is whole or not received at all).
        ended = true
        metrics.dropped.unsafeUpdate(1, [])
        writable.unsafeOpen()
        readable.destroy()
      }
    })
    return readable
  })

/** A runtime event stream as a body: a `stream.lagged` event is the last one the core emits, so it ends there. */
export const body = (
  events: Stream.Stream<Domain.RuntimeEvent, RuntimeUnavailable>,
  options: BodyOptions
): Effect.Effect<Readable, never, Scope.Scope> => bodyWith(events, chunkText, cursorOfEvent, options, isLaggedEvent)

const cursorOfEvent = (event: Domain.RuntimeEvent) => event.cursor
const isLaggedEvent = (event: Domain.RuntimeEvent) => event.kind === "stream.lagged"

/** The response for a body: `text/event-stream`, never cached, never buffered by a proxy. */
export const response = (
  readable: Readable,
  headers: Record<string, string> = { "cache-control": "no-cache" }
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.raw(readable, {
    contentType: SseWire.CONTENT_TYPE,
    headers: { ...headers, "x-accel-buffering": "no" }
  })

export interface SseOptions {
  /** Interval between heartbeat comments. */
  readonly heartbeat: Duration.DurationInput
  /** Event streams open at once; one more is refused with `RuntimeUnavailable` (503). */
  readonly maxStreams: number
  /**
   * A stream whose writes wait for the socket with no progress for this long (the reader stopped reading) is
   * dropped, freeing its slot.
   */
  readonly stallTimeout: Duration.DurationInput
}

export const defaultOptions: SseOptions = {
  heartbeat: Duration.seconds(15),
  maxStreams: 1024,
  stallTimeout: DEFAULT_STALL_TIMEOUT
}

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
    const control = yield* makeControl(options.heartbeat, options.stallTimeout)
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
        return Effect.void
      }),
      () => Effect.sync(() => void (active -= 1))
    )

    const subscribe = (given: Runtime.SubscribeQuery) =>
      Effect.gen(function*() {
        // A filtered stream gets bookmarks; one opened with a cursor gets a `stream.live` after its replay.
        const filtered = given.worker_id !== undefined || (given.kinds !== undefined && given.kinds.length > 0)
        const query: Runtime.SubscribeQuery = { ...given, bookmarks: filtered }
        if (query.cursor !== undefined && query.cursor !== "") {
          const events = yield* runtime.subscribe({ ...query, live: true })
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
      return response(yield* body(events, { control, startCursor }))
    })

    return { open, active: Effect.sync(() => active) } satisfies SseStreamsService
  })

export const layer = (
  options: SseOptions = defaultOptions
): Layer.Layer<SseStreams, never, Runtime.Runtime | Shutdown> =>
  Layer.scoped(SseStreams, make(options))
