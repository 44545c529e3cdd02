import { HttpClient, HttpClientRequest, type HttpClientResponse } from "@effect/platform"
import {
  CursorExpired,
  CursorInvalid,
  Domain,
  InvalidInput,
  RuntimeUnavailable,
  SseWire,
  WorkerNotFound
} from "@yoi/worker-runtime"
import {
  Chunk,
  Context,
  Data,
  Duration,
  Effect,
  Either,
  Layer,
  Option,
  type Redacted,
  Schedule,
  Schema,
  Stream
} from "effect"
import { Unauthorized } from "./Errors.js"
import { streamPath } from "./EventsGroup.js"

export interface RuntimeEventsOptions {
  /** Omit when the provided `HttpClient` already prefixes the runtime's URL (as `NodeHttpServer.layerTest` does). */
  readonly baseUrl?: string | URL | undefined
  readonly token?: Redacted.Redacted | undefined
  /** First reconnect delay; it doubles per failed attempt, with jitter. Default 250 ms. */
  readonly initialDelay?: Duration.DurationInput | undefined
  /** Cap on the reconnect delay. Default 10 s. */
  readonly maxDelay?: Duration.DurationInput | undefined
  /**
   * Consecutive failed attempts before the stream fails with `RuntimeUnavailable`; a connection that delivers an
   * event or a heartbeat starts the count again. Default 20; `Infinity` retries forever.
   */
  readonly maxRetries?: number | undefined
  /** A connection silent for this long (no event, no heartbeat) is dropped and resumed. Default 45 s. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /**
   * The stream's path for a worker (or for all, given `undefined`), for a server that serves this stream under other
   * routes (the Backend's `/api/events`). Default `/v1/events` and `/v1/workers/{worker_id}/events`.
   */
  readonly path?: ((workerId: string | undefined) => string) | undefined
}

export interface EventStreamOptions {
  /** Where to start: a cursor (e.g. a transcript page's), `"earliest"`, or absent for "from now". */
  readonly cursor?: string | undefined
  /** Only this worker's events (`GET /v1/workers/{worker_id}/events`). */
  readonly workerId?: string | undefined
  readonly kinds?: ReadonlyArray<Domain.EventKind> | undefined
  /**
   * Emit the stream's position marks too: `stream.bookmark` events, and one `stream.live` (after the replay of a
   * stream opened with a cursor; the markers of later reconnects are not emitted). Default false: they only move
   * the resume position, like heartbeats.
   */
  readonly markers?: boolean | undefined
}

/**
 * Why an event stream ended. None of these is retried: `CursorExpired` asks the caller to re-list the transcript
 * and stream from its cursor; `RuntimeUnavailable` means the reconnect attempts ran out.
 */
export type EventStreamError =
  | CursorExpired
  | CursorInvalid
  | WorkerNotFound
  | InvalidInput
  | Unauthorized
  | RuntimeUnavailable

export interface EventFollower {
  /**
   * The events, reconnecting and resuming from the last cursor as needed. Running it again resumes after the last
   * chunk received: a consumer that stops in the middle of a chunk should resume from the cursor of the last event it
   * handled instead.
   */
  readonly events: Stream.Stream<Domain.RuntimeEvent, EventStreamError>
  /** The cursor of the last event received (or the start position the runtime announced); none before. */
  readonly lastCursor: Effect.Effect<Option.Option<string>>
}

/** Follows a runtime's SSE event stream over a plain `HttpClient` (the derived client reads whole bodies). */
export interface RuntimeEventsService {
  readonly stream: (options?: EventStreamOptions) => Stream.Stream<Domain.RuntimeEvent, EventStreamError>
  readonly follow: (options?: EventStreamOptions) => EventFollower
}

// --- the line parser ----------------------------------------------------------------------------------------------

// --- the client ---------------------------------------------------------------------------------------------------

/** A failure worth another attempt: transport, 5xx, a closed or silent stream, lag. */
class Retryable extends Data.TaggedError("Retryable")<{ readonly reason: string; readonly cause?: unknown }> {}

type ConnectionError = Retryable | EventStreamError

type Output = Domain.RuntimeEvent | typeof HEARTBEAT | typeof END

const HEARTBEAT: unique symbol = Symbol("heartbeat")
const END: unique symbol = Symbol("end")

const ErrorBody = Schema.Union(CursorExpired, CursorInvalid, WorkerNotFound, InvalidInput, Unauthorized)
const decodeErrorBody = Schema.decodeUnknownOption(ErrorBody)
const decodeEnvelope = Schema.decodeUnknownEither(Schema.parseJson(Domain.RuntimeEvent))
const decodeJson = Schema.decodeUnknownOption(Schema.parseJson())
const StreamErrorData = Schema.Struct({
  _tag: Schema.String,
  message: Schema.String,
  resume_cursor: Schema.optional(Schema.String)
})
const decodeStreamError = Schema.decodeUnknownOption(StreamErrorData)
const LaggedData = Schema.Struct({ resume_cursor: Schema.String })
const decodeLagged = Schema.decodeUnknownOption(LaggedData)

const rejected = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<never, ConnectionError> => {
  const status = response.status
  if (status >= 500 || status === 429 || status === 408) {
    return Effect.zipRight(
      Effect.ignore(response.text),
      Effect.fail(new Retryable({ reason: `the runtime answered ${status}` }))
    )
  }
  return Effect.flatMap(Effect.orElseSucceed(response.json, () => undefined), (body) =>
    Option.match(decodeErrorBody(body), {
      onSome: (error): Effect.Effect<never, ConnectionError> => Effect.fail(error),
      onNone: () =>
        Effect.fail(
          status === 401
            ? new Unauthorized({ message: "the runtime refused the token" })
            : new RuntimeUnavailable({ message: `the runtime refused the event stream with status ${status}` })
        )
    }))
}

/**
 * The delay before each reconnect: exponential from `initialDelay`, capped at `maxDelay`, with jitter that only
 * scales it down (to between half and all of it), so the cap holds.
 */
export const reconnectBackoff = (
  options: Pick<RuntimeEventsOptions, "initialDelay" | "maxDelay">
): Schedule.Schedule<unknown> =>
  Schedule.exponential(options.initialDelay ?? Duration.millis(250)).pipe(
    Schedule.union(Schedule.spaced(options.maxDelay ?? Duration.seconds(10))),
    Schedule.jitteredWith({ min: 0.5, max: 1 })
  )

export const make = (
  options: RuntimeEventsOptions = {}
): Effect.Effect<RuntimeEventsService, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const base = yield* HttpClient.HttpClient
    const token = options.token
    const client = token === undefined ? base : HttpClient.mapRequest(base, HttpClientRequest.bearerToken(token))
    const baseUrl = options.baseUrl === undefined ? "" : String(options.baseUrl).replace(/\/+$/, "")
    const idleTimeout = options.idleTimeout ?? Duration.seconds(45)
    const maxRetries = options.maxRetries ?? 20
    const backoff = reconnectBackoff(options)
    const bounded: Schedule.Schedule<unknown> = Number.isFinite(maxRetries)
      ? Schedule.intersect(backoff, Schedule.recurs(maxRetries))
      : backoff
    const policy = Schedule.whileInput(bounded, (error: ConnectionError) => error._tag === "Retryable")

    const follow = (streamOptions: EventStreamOptions = {}): EventFollower => {
      let cursor = streamOptions.cursor
      let resumed = false
      const markers = streamOptions.markers === true
      // Only a stream opened with a cursor has a history to end; it is marked once, however often it reconnects.
      let liveSent = streamOptions.cursor === undefined
      const path = options.path !== undefined
        ? options.path(streamOptions.workerId)
        : streamPath(streamOptions.workerId)
      const kinds = streamOptions.kinds === undefined || streamOptions.kinds.length === 0
        ? undefined
        : streamOptions.kinds.join(",")

      const request = () => {
        let req = HttpClientRequest.get(baseUrl + path).pipe(HttpClientRequest.accept(SseWire.CONTENT_TYPE))
        if (kinds !== undefined) req = HttpClientRequest.setUrlParam(req, "kinds", kinds)
        if (cursor !== undefined) {
          // The first attempt states its start as `?cursor=`; a reconnect resumes the way a browser does.
          req = resumed
            ? HttpClientRequest.setHeader(req, "last-event-id", cursor)
            : HttpClientRequest.setUrlParam(req, "cursor", cursor)
        }
        return req
      }

      /** Reads one parsed item: an event to emit, a heartbeat marker, nothing, or why the connection ends. */
      const toOutput = (item: SseWire.SseItem): Either.Either<Output | undefined, ConnectionError> => {
        switch (item._tag) {
          case "Comment":
            return Either.right(item.text === "heartbeat" ? HEARTBEAT : undefined)
          case "Id":
            cursor = item.id
            return Either.right(undefined)
          case "Event": {
            if (item.event === SseWire.ERROR_KIND) return Either.left(streamError(item.data))
            const decoded = decodeEnvelope(item.data)
            if (Either.isLeft(decoded)) {
              return Either.left(
                new RuntimeUnavailable({ message: `the runtime sent an event this client cannot read (${item.event})` })
              )
            }
            const event = decoded.right
            if (event.kind === "stream.lagged") {
              const data = decodeLagged(event.data)
              cursor = Option.isSome(data) ? data.value.resume_cursor : event.cursor
              return Either.left(new Retryable({ reason: "the stream fell behind" }))
            }
            // The frame's `id` is the resume position; a merged stream (the Backend's) sets it to its own cursor.
            cursor = item.id ?? event.cursor
            if (event.kind === "stream.bookmark") return Either.right(markers ? event : HEARTBEAT)
            if (event.kind === "stream.live") {
              const first = !liveSent
              liveSent = true
              return Either.right(markers && first ? event : HEARTBEAT)
            }
            return Either.right(event)
          }
        }
      }

      const streamError = (data: string): ConnectionError => {
        const json = decodeJson(data)
        const typed = Option.flatMap(json, decodeErrorBody)
        if (Option.isSome(typed)) return typed.value
        const info = Option.flatMap(json, decodeStreamError)
        if (Option.isSome(info) && info.value.resume_cursor !== undefined) cursor = info.value.resume_cursor
        return new Retryable({
          reason: Option.match(info, {
            onNone: () => "the runtime ended the stream with an unreadable error",
            onSome: (d) => `the runtime ended the stream: ${d._tag}: ${d.message}`
          })
        })
      }

      // An error frame ends the connection, but the events before it in the same chunk are emitted first: the error
      // is kept in `pending`, the chunk ends with `END`, and the connection stops there.
      let pending: ConnectionError | undefined = undefined

      const read = (parser: SseWire.SseParser) =>
        (texts: Chunk.Chunk<string>): Effect.Effect<Chunk.Chunk<Output>, ConnectionError> =>
          Effect.suspend(() => {
            const out: Array<Output> = []
            for (const text of texts) {
              const items = parser.feed(text)
              if (Either.isLeft(items)) return Effect.fail(new Retryable({ reason: items.left }))
              for (const item of items.right) {
                const output = toOutput(item)
                if (Either.isLeft(output)) {
                  if (out.length === 0) return Effect.fail(output.left)
                  pending = output.left
                  out.push(END)
                  return Effect.succeed(Chunk.unsafeFromArray(out))
                }
                if (output.right !== undefined) out.push(output.right)
              }
            }
            return Effect.succeed(Chunk.unsafeFromArray(out))
          })

      const connection: Stream.Stream<Output, ConnectionError> = Stream.suspend(() => {
        const parser = new SseWire.SseParser()
        const req = request()
        resumed = true
        pending = undefined
        return client.execute(req).pipe(
          Effect.mapError((cause) => new Retryable({ reason: "could not reach the runtime", cause })),
          Effect.flatMap((response) => {
            if (response.status !== 200) return rejected(response)
            const contentType = response.headers["content-type"] ?? ""
            return contentType.startsWith(SseWire.CONTENT_TYPE)
              ? Effect.succeed(response)
              : Effect.fail(new Retryable({ reason: `the runtime answered ${contentType || "no content type"}` }))
          }),
          Effect.map((response) =>
            response.stream.pipe(
              Stream.mapError((cause) => new Retryable({ reason: "the connection failed", cause })),
              Stream.decodeText(),
              Stream.timeoutFail(() => new Retryable({ reason: "the stream went silent" }), idleTimeout),
              Stream.mapChunksEffect(read(parser)),
              Stream.takeWhile((o) => o !== END),
              Stream.concat(Stream.suspend(() =>
                Stream.fail(pending ?? new Retryable({ reason: "the runtime closed the stream" }))
              ))
            )
          ),
          Stream.unwrap
        )
      })

      const events = connection.pipe(
        // `Stream.retry` starts its count again on every chunk, even an empty one (text with no event, such as the
        // connect frame): drop empty chunks so only an event or a heartbeat counts as progress.
        Stream.chunks,
        Stream.flatMap(Stream.fromChunk),
        Stream.tapError((e) =>
          e._tag === "Retryable"
            ? Effect.logDebug("event stream interrupted; resuming").pipe(
              Effect.annotateLogs({ reason: e.reason, cause: String(e.cause ?? "") })
            )
            : Effect.void
        ),
        Stream.retry(policy),
        Stream.filter((o): o is Domain.RuntimeEvent => o !== HEARTBEAT && o !== END),
        Stream.catchTag("Retryable", (e) =>
          Stream.fail(
            new RuntimeUnavailable({ message: `the event stream could not be resumed: ${e.reason}` })
          ))
      )
      return { events, lastCursor: Effect.sync(() => Option.fromNullable(cursor)) }
    }

    return { follow, stream: (o) => follow(o).events } satisfies RuntimeEventsService
  })

/** The SSE event client of a remote runtime. */
export class RuntimeEvents extends Context.Tag("@yoi/runtime-api/RuntimeEvents")<RuntimeEvents, RuntimeEventsService>() {
  static readonly make = make
  static readonly layer = (
    options: RuntimeEventsOptions = {}
  ): Layer.Layer<RuntimeEvents, never, HttpClient.HttpClient> => Layer.effect(RuntimeEvents, make(options))
}
