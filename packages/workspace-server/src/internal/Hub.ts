import { Backlog, Cursor, type Domain, EventBus } from "@yoi/worker-runtime"
import { type Duration, Effect, Either, Option, type Scope, type Stream } from "effect"

// The fan-out behind one upstream subscription: a `Backlog` of recent events (for resume) and an `EventBus` (the
// `PubSub`-based fan-out the runtime's own event log uses), which holds each browser to its own bound. A browser
// that falls `subscriberBuffer` events behind gets a final `stream.lagged` event with the cursor to resume from: a
// slow browser never holds the upstream back and never silently loses events.

export type Coverage =
  /** The hub can serve everything after the cursor: from its ring, or live once it gets there. */
  | { readonly _tag: "Covered"; readonly seq: number }
  /** Older than the ring, from another epoch, or the hub has not seen this runtime yet: ask the runtime itself. */
  | { readonly _tag: "Upstream" }
  | { readonly _tag: "Malformed" }

export interface HubOptions {
  readonly runtimeId: string
  readonly backlog: number
  readonly subscriberBuffer: number
  /** How often a worker subscriber gets a `stream.bookmark` when its position moved; absent: never. */
  readonly bookmarkInterval?: Duration.DurationInput | undefined
}

export interface Hub {
  /** Feeds events from the upstream subscription, in seq order. */
  readonly publish: (events: Iterable<Domain.RuntimeEvent>) => Effect.Effect<void>
  /** The upstream starts at the runtime's head; subscribers that came earlier simply continue from there. */
  readonly start: (head: string) => void
  /** The upstream lost continuity (new epoch, expired cursor): every subscriber ends with `stream.lagged`. */
  readonly reset: Effect.Effect<void>
  /** The newest cursor the hub knows: the last event seen, or the runtime's head when it connected. */
  readonly head: () => Option.Option<string>
  readonly covers: (cursor: string) => Coverage
  readonly subscriberCount: () => number
  /**
   * Subscribes from "now" (`after` absent) or after a covered seq; `live` adds a `stream.live` event after the
   * replay, and a worker subscriber gets bookmarks.
   */
  readonly subscribe: (options: {
    readonly after?: number | undefined
    readonly workerId?: string | undefined
    readonly live?: boolean | undefined
  }) => Effect.Effect<Stream.Stream<Domain.RuntimeEvent>, never, Scope.Scope>
}

export const make = (options: HubOptions): Effect.Effect<Hub, never, Scope.Scope> =>
  Effect.gen(function*() {
    const backlog = Backlog.make<Domain.RuntimeEvent>({ capacity: options.backlog, lastSeq: -1 })
    const bus = yield* EventBus.make<Domain.RuntimeEvent>({ buffer: options.subscriberBuffer, head: backlog.lastSeq })
    if (options.bookmarkInterval !== undefined) {
      yield* Effect.sleep(options.bookmarkInterval).pipe(
        Effect.zipRight(Effect.sync(bus.tick)),
        Effect.forever,
        Effect.forkScoped
      )
    }
    let epoch: string | undefined
    let headCursor: Option.Option<string> = Option.none()

    const adopt = (cursor: string) => {
      const decoded = Cursor.decode(cursor)
      if (Either.isLeft(decoded)) return
      epoch = decoded.right.epoch
      backlog.reset(decoded.right.seq)
    }

    const publish: Hub["publish"] = (events) =>
      Effect.suspend(() => {
        const cuts: Array<Effect.Effect<void>> = []
        let batch: Array<Domain.RuntimeEvent> = []
        for (const event of events) {
          // Stream-local events (a lag, a live boundary, a bookmark) belong to the upstream connection, not the log.
          if (event.kind.startsWith("stream.")) continue
          // The epoch is read only where continuity is in doubt: the first event, or one that does not follow the last.
          if (epoch === undefined || event.seq !== backlog.lastSeq() + 1) {
            const pos = Cursor.decode(event.cursor)
            if (Either.isRight(pos) && pos.right.epoch !== epoch) {
              if (epoch !== undefined) {
              // Subscribers of the old epoch end before any event of the new one reaches them.
                cuts.push(bus.unsafePublish(batch), bus.unsafeEndAll())
                batch = []
              }
              epoch = pos.right.epoch
              backlog.reset(event.seq - 1)
            }
          }
          backlog.push(event)
          headCursor = Option.some(event.cursor)
          batch.push(event)
        }
        cuts.push(bus.unsafePublish(batch))
        return Effect.all(cuts, { discard: true })
      })

    const reset = Effect.suspend(() => {
      backlog.reset(-1)
      epoch = undefined
      headCursor = Option.none()
      return bus.endAll
    })

    const start = (head: string) => {
      headCursor = Option.some(head)
      adopt(head)
    }

    const covers = (cursor: string): Coverage => {
      const decoded = Cursor.decode(cursor)
      if (Either.isLeft(decoded)) return { _tag: "Malformed" }
      const pos = decoded.right
      if (epoch === undefined || pos.epoch !== epoch) return { _tag: "Upstream" }
      if (pos.seq >= backlog.lastSeq()) return { _tag: "Covered", seq: pos.seq }
      return pos.seq >= backlog.low() - 1 ? { _tag: "Covered", seq: pos.seq } : { _tag: "Upstream" }
    }

    const subscribe: Hub["subscribe"] = (o) =>
      Effect.gen(function*() {
        const workerId = o.workerId
        const byWorker = workerId === undefined
          ? undefined
          : (e: Domain.RuntimeEvent) => e.worker_id === workerId
        // The subscription joins before the replay snapshot is taken: no gap and no duplicate.
        const bookmark = workerId === undefined || epoch === undefined
          ? undefined
          : (seq: number) =>
            EventBus.bookmarkEvent({ runtimeId: options.runtimeId, workerId }, Cursor.encode(epoch!, seq), seq)
        const subscription = yield* bus.subscribe({ workerId, bookmark }, () => {
          const lastSeq = backlog.lastSeq()
          const start = o.after ?? lastSeq
          // Events at or before `after` are skipped live (a cursor the hub has not reached yet).
          return {
            upTo: Math.max(start, lastSeq),
            snapshot: { replay: backlog.range(start, lastSeq, byWorker), start, upTo: Math.max(start, lastSeq) }
          }
        })
        const { replay, start, upTo } = subscription.snapshot
        return EventBus.stream(replay, subscription, {
          live: o.live === true && epoch !== undefined ? { cursor: Cursor.encode(epoch, upTo), seq: upTo } : undefined,
          runtimeId: options.runtimeId,
          workerId,
          cursor: o.after !== undefined && epoch !== undefined
            ? Cursor.encode(epoch, start)
            : Option.getOrElse(headCursor, () => ""),
          seq: start,
          message: `subscriber fell more than ${options.subscriberBuffer} events behind (or the runtime's ` +
          "event stream was reset); resume from the cursor"
        })
      })

    return {
      publish,
      start,
      reset,
      head: () => headCursor,
      covers,
      subscriberCount: bus.size,
      subscribe
    } satisfies Hub
  })
