import { Chunk, Context, type Duration, Effect, Either, Layer, Option, Scope, Stream, type Types } from "effect"
import * as Backlog from "./Backlog.js"
import * as Cursor from "./Cursor.js"
import { ephemeralKinds, type EventKind, type EventOf, type RuntimeEvent } from "./Domain.js"
import { CursorExpired, CursorInvalid, RuntimeUnavailable } from "./Errors.js"
import * as EventBus from "./EventBus.js"
import { type StoreError, WorkerStore } from "./WorkerStore.js"

/**
 * An event before the log gives it a place: `seq`, `cursor` and `runtime_id` are filled in by `append`. One member
 * per kind, so `data` is checked against the kind's schema type.
 */
export type EventDraft = {
  readonly [K in EventKind]: {
    readonly worker_id?: string | undefined
    readonly turn_id?: string | undefined
    readonly kind: K
    readonly data: EventOf<K>["data"]
  }
}[EventKind]

export interface SubscribeOptions {
  /** An opaque cursor, `"earliest"`, or absent for "from now". */
  readonly cursor?: string | undefined
  readonly workerId?: string | undefined
  readonly kinds?: ReadonlyArray<string> | undefined
  /** Send one `stream.live` event after the replay (for a stream opened with a cursor or `earliest`). */
  readonly live?: boolean | undefined
  /** Send `stream.bookmark` events at the log's bookmark interval when the position moved (for a filtered stream). */
  readonly bookmarks?: boolean | undefined
}

/** Where durable events older than the in-memory backlog come from (the SQLite store); absent for memory. */
export interface DurableBacklog {
  /** The lowest seq from which every durable event is still retained, or none if nothing was ever persisted. */
  readonly retainedFrom: Effect.Effect<Option.Option<number>, RuntimeUnavailable>
  /** Durable events with `seq > after`, ascending, at most `limit`. */
  readonly readAfter: (after: number, limit: number) => Effect.Effect<ReadonlyArray<RuntimeEvent>, RuntimeUnavailable>
}

export interface EventLogOptions {
  readonly runtimeId: string
  readonly epoch: string
  /** The last seq issued by a previous life of this store (0 for a new one). */
  readonly lastSeq: number
  /** How many recent events (deltas included) are kept in memory for resume. */
  readonly backlog: number
  /** How many undelivered events one subscriber may hold before it is ended with `stream.lagged`. */
  readonly subscriberBuffer: number
  /** How often a subscriber with bookmarks may get one; absent: never. */
  readonly bookmarkInterval?: Duration.DurationInput | undefined
  readonly durable?: DurableBacklog | undefined
}

/**
 * The runtime's event log: assigns `seq` and cursors, keeps a bounded replay backlog (`Backlog`), and publishes
 * events live through `PubSub`s (`EventBus`: one for the log, one per watched worker). Each subscriber is held to
 * its own bound; one that falls behind is ended with a `stream.lagged` event carrying the cursor to resume from, so
 * a slow reader never blocks the runtime and never loses events silently.
 */
export interface EventLogService {
  readonly epoch: string
  /** The cursor of the newest event ("now"). */
  readonly headCursor: () => string
  readonly lastSeq: () => number
  readonly subscriberCount: () => number
  /**
   * Stamps drafts with consecutive seqs, lets `persist` write the durable ones, then publishes them, all under one
   * lock, so the order subscribers see is the seq order and nothing is published that was not persisted.
   */
  readonly append: <E>(
    drafts: ReadonlyArray<EventDraft>,
    persist?: (durable: ReadonlyArray<RuntimeEvent>) => Effect.Effect<void, E>
  ) => Effect.Effect<ReadonlyArray<RuntimeEvent>, E>
  /** Runs `f` while no event can be appended: reads inside it see a state consistent with `headCursor()`. */
  readonly consistent: <A, E, R>(f: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /**
   * Subscribes from a cursor. Cursor problems fail before anything streams. The stream replays what follows the
   * cursor and then goes live with no gap and no duplicate; it ends after a `stream.lagged` event if it overflows.
   */
  readonly subscribe: (
    options: SubscribeOptions
  ) => Effect.Effect<
    Stream.Stream<RuntimeEvent, RuntimeUnavailable>,
    CursorInvalid | CursorExpired | RuntimeUnavailable,
    Scope.Scope
  >
}

export class EventLog extends Context.Tag("@yoi/worker-runtime/EventLog")<EventLog, EventLogService>() {}

const REPLAY_PAGE = 1000

export const make = (options: EventLogOptions): Effect.Effect<EventLogService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { epoch, runtimeId } = options
    const backlog = Backlog.make<RuntimeEvent>({ capacity: options.backlog, lastSeq: options.lastSeq })
    let lastSeq = options.lastSeq
    const bus = yield* EventBus.make<RuntimeEvent>({ buffer: options.subscriberBuffer, head: () => lastSeq })
    if (options.bookmarkInterval !== undefined) {
      // One timer for every subscriber: each tick lets each one with bookmarks send one if its position moved.
      yield* Effect.sleep(options.bookmarkInterval).pipe(
        Effect.zipRight(Effect.sync(bus.tick)),
        Effect.forever,
        Effect.forkScoped
      )
    }
    const lock = yield* Effect.makeSemaphore(1)

    const stamp = (drafts: ReadonlyArray<EventDraft>): Array<RuntimeEvent> => {
      const at = new Date().toISOString()
      let seq = lastSeq
      return drafts.map((d) => {
        seq += 1
        // A draft's kind and data agree (see `EventDraft`); TypeScript cannot follow that through the spread.
        const event = {
          cursor: Cursor.encode(epoch, seq),
          seq,
          runtime_id: runtimeId,
          kind: d.kind,
          at,
          data: d.data
        } as Types.Mutable<RuntimeEvent>
        if (d.worker_id !== undefined) event.worker_id = d.worker_id
        if (d.turn_id !== undefined) event.turn_id = d.turn_id
        return event
      })
    }

    const publish = (events: ReadonlyArray<RuntimeEvent>): Effect.Effect<void> => {
      for (const event of events) backlog.push(event)
      lastSeq = backlog.lastSeq()
      return bus.unsafePublish(events)
    }

    // Appends and consistent reads in flight (holding or waiting for the lock). When there are none, an append that
    // persists nothing can publish at once without taking the lock: nothing can be ordered before it.
    let inFlight = 0
    const locked = <A, E, R>(f: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.suspend(() => {
        inFlight += 1
        return Effect.ensuring(lock.withPermits(1)(f), Effect.sync(() => {
          inFlight -= 1
        }))
      })

    const append: EventLogService["append"] = (drafts, persist) => {
      if (drafts.length === 0) return Effect.succeed([])
      const body = Effect.suspend(() => {
        const events = stamp(drafts)
        if (persist === undefined) return Effect.as(publish(events), events)
        const durable = events.filter((e) => !ephemeralKinds.has(e.kind))
        return Effect.as(Effect.zipRight(persist(durable), Effect.suspend(() => publish(events))), events)
      }).pipe(Effect.uninterruptible)
      if (persist !== undefined) return locked(body)
      return Effect.suspend(() => {
        if (inFlight > 0) return locked(body)
        const events = stamp(drafts)
        return Effect.as(publish(events), events)
      })
    }

    const matcher = (o: SubscribeOptions): ((e: RuntimeEvent) => boolean) => {
      const kinds = o.kinds !== undefined && o.kinds.length > 0 ? new Set(o.kinds) : undefined
      const workerId = o.workerId
      if (workerId === undefined && kinds === undefined) return () => true
      return (e) => (workerId === undefined || e.worker_id === workerId) && (kinds === undefined || kinds.has(e.kind))
    }

    /** The filter left once the worker topic has done its part. */
    const kindsOnly = (o: SubscribeOptions): ((e: RuntimeEvent) => boolean) | undefined => {
      if (o.kinds === undefined || o.kinds.length === 0) return undefined
      const kinds = new Set(o.kinds)
      return (e) => kinds.has(e.kind)
    }

    const resolveStart = (cursor: string | undefined) =>
      Effect.gen(function*() {
        if (cursor === undefined || cursor === "") return lastSeq
        const retained = options.durable === undefined ? Option.none() : yield* options.durable.retainedFrom
        const floor = Option.match(retained, {
          onNone: () => backlog.low(),
          onSome: (from) => Math.min(from, backlog.low())
        })
        if (cursor === Cursor.EARLIEST) return Math.max(0, floor - 1)
        const decoded = Cursor.decode(cursor)
        if (Either.isLeft(decoded)) return yield* decoded.left
        const pos = decoded.right
        if (pos.epoch !== epoch) {
          return yield* new CursorInvalid({
            cursor,
            message: "cursor is invalid: it was issued by another store or a previous life of this runtime"
          })
        }
        if (pos.seq > lastSeq) {
          return yield* new CursorInvalid({ cursor, message: "cursor is invalid: it points past the newest event" })
        }
        if (pos.seq < floor - 1) {
          return yield* new CursorExpired({
            cursor,
            earliest_cursor: Cursor.encode(epoch, Math.max(0, floor - 1)),
            message: "cursor has expired: the events after it are no longer retained; re-list the transcript and " +
              "resume from its cursor"
          })
        }
        return pos.seq
      })

    const replayFromStore = (
      durable: DurableBacklog,
      from: number,
      ringFrom: number,
      upTo: number,
      ringPart: ReadonlyArray<RuntimeEvent>,
      matches: (e: RuntimeEvent) => boolean
    ): Stream.Stream<RuntimeEvent | EventBus.Lagged, RuntimeUnavailable> =>
      Stream.paginateChunkEffect(from, (after) =>
        Effect.zipWith(durable.readAfter(after, REPLAY_PAGE), durable.retainedFrom, (page, retained) => {
          // Events after `after` were pruned while this replay waited: end it as lagged rather than skip them.
          if (Option.isSome(retained) && retained.value - 1 > after) {
            return [Chunk.of<RuntimeEvent | EventBus.Lagged>(EventBus.LAGGED), Option.none<number>()] as const
          }
          const below = page.filter((e) => e.seq < ringFrom)
          const done = page.length < REPLAY_PAGE || below.length < page.length
          const next = page.length === 0 ? after : page[page.length - 1]!.seq
          return [
            Chunk.fromIterable<RuntimeEvent | EventBus.Lagged>(below.filter(matches)),
            done ? Option.none<number>() : Option.some(next)
          ] as const
        })).pipe(Stream.concat(Stream.fromIterable(ringPart.filter((e) => e.seq <= upTo))))

    const subscribe: EventLogService["subscribe"] = (o) =>
      Effect.gen(function*() {
        const start = yield* resolveStart(o.cursor)
        const matches = matcher(o)
        // The replay snapshot is taken as the subscriber registers: events up to `upTo` come from the backlog and
        // everything after it from the subscription, so there is no gap and no duplicate.
        const bookmark = o.bookmarks === true
          ? (seq: number) => EventBus.bookmarkEvent({ runtimeId, workerId: o.workerId }, Cursor.encode(epoch, seq), seq)
          : undefined
        const subscription = yield* bus.subscribe(
          { workerId: o.workerId, matches: kindsOnly(o), bookmark },
          () => {
            const ringFrom = Math.max(backlog.low(), start + 1)
            const ringPart = backlog.range(start, lastSeq, matches)
            return { upTo: lastSeq, snapshot: { upTo: lastSeq, ringFrom, ringPart } }
          }
        )
        const { ringFrom, ringPart, upTo } = subscription.snapshot
        if (start + 1 < ringFrom && options.durable === undefined) {
          // The backlog moved past the cursor between validation and registration.
          return yield* new CursorExpired({
            cursor: o.cursor ?? "",
            earliest_cursor: Cursor.encode(epoch, ringFrom - 1),
            message: "cursor has expired: the events after it are no longer retained; re-list the transcript and " +
              "resume from its cursor"
          })
        }
        const lagged: EventBus.LaggedOptions = {
          runtimeId,
          workerId: o.workerId,
          cursor: Cursor.encode(epoch, start),
          seq: start,
          message: `subscriber fell more than ${options.subscriberBuffer} events behind; resume from the cursor`,
          live: o.live === true ? { cursor: Cursor.encode(epoch, upTo), seq: upTo } : undefined
        }
        if (start + 1 >= ringFrom || options.durable === undefined) {
          return EventBus.stream(ringPart, subscription, lagged)
        }
        let replayed = 0
        const replay = replayFromStore(options.durable, start, ringFrom, upTo, ringPart, matches).pipe(
          Stream.tap((item) => Effect.sync(() => item === EventBus.LAGGED ? undefined : void (replayed += 1)))
        )
        const marker = Stream.suspend(() =>
          lagged.live === undefined ? Stream.empty : Stream.make(EventBus.liveEvent(lagged, replayed))
        )
        return EventBus.untilLagged(Stream.concat(Stream.concat(replay, marker), subscription.live), lagged)
      })

    return {
      epoch,
      headCursor: () => Cursor.encode(epoch, lastSeq),
      lastSeq: () => lastSeq,
      subscriberCount: bus.size,
      append,
      consistent: locked,
      subscribe
    } satisfies EventLogService
  })

/** The log of a runtime over its store: epoch and seq continue from the store, durable replay reads from it. */
export const layer = (options: {
  readonly runtimeId: string
  readonly backlog: number
  readonly subscriberBuffer: number
  readonly bookmarkInterval?: Duration.DurationInput | undefined
}): Layer.Layer<EventLog, StoreError, WorkerStore> =>
  Layer.scoped(
    EventLog,
    Effect.gen(function*() {
      const store = yield* WorkerStore
      const meta = yield* store.meta
      const unavailable = <A>(effect: Effect.Effect<A, StoreError>) =>
        Effect.mapError(effect, (e) => new RuntimeUnavailable({ message: `event replay failed: ${e.message}` }))
      return yield* make({
        ...options,
        epoch: meta.epoch,
        lastSeq: meta.lastSeq,
        durable: store.durable
          ? {
            retainedFrom: unavailable(store.eventsRetainedFrom),
            readAfter: (after, limit) => unavailable(store.eventsAfter(after, limit))
          }
          : undefined
      })
    })
  )
