import { Cursor, type Domain } from "@yoi/worker-runtime"
import { Effect, Either, Option, Queue, type Scope, Stream } from "effect"

// The fan-out behind one upstream subscription: a bounded ring of recent events (for resume) and, per browser, a
// bounded queue. A browser that falls `subscriberBuffer` events behind gets a final `stream.lagged` event with the
// cursor to resume from, exactly as a runtime treats its own subscribers: a slow browser never holds the upstream
// back and never silently loses events.

const LAGGED: unique symbol = Symbol("lagged")
type Item = Domain.RuntimeEvent | typeof LAGGED

interface Subscriber {
  readonly queue: Queue.Queue<Item>
  readonly matches: (event: Domain.RuntimeEvent) => boolean
  /** Events at or before this seq are skipped (a cursor the hub has not reached yet). */
  readonly after: number
}

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
}

export interface Hub {
  /** Feeds events from the upstream subscription, in seq order. */
  readonly publish: (events: Iterable<Domain.RuntimeEvent>) => void
  /** The upstream starts at the runtime's head; subscribers that came earlier simply continue from there. */
  readonly start: (head: string) => void
  /** The upstream lost continuity (new epoch, expired cursor): every subscriber ends with `stream.lagged`. */
  readonly reset: () => void
  /** The newest cursor the hub knows: the last event seen, or the runtime's head when it connected. */
  readonly head: () => Option.Option<string>
  readonly covers: (cursor: string) => Coverage
  readonly subscriberCount: () => number
  /** Subscribes from "now" (`after` absent) or after a covered seq. */
  readonly subscribe: (options: {
    readonly after?: number | undefined
    readonly workerId?: string | undefined
  }) => Effect.Effect<Stream.Stream<Domain.RuntimeEvent>, never, Scope.Scope>
}

export const make = (options: HubOptions): Hub => {
  const capacity = Math.max(1, options.backlog)
  const ring: Array<Domain.RuntimeEvent | undefined> = new Array(capacity)
  let ringSize = 0
  let epoch: string | undefined
  let lastSeq = -1
  let headCursor: Option.Option<string> = Option.none()
  const subscribers = new Set<Subscriber>()

  const ringLow = () => lastSeq - ringSize + 1

  const endAll = () => {
    for (const sub of subscribers) sub.queue.unsafeOffer(LAGGED)
    subscribers.clear()
  }

  const adopt = (cursor: string) => {
    const decoded = Cursor.decode(cursor)
    if (Either.isLeft(decoded)) return
    if (epoch !== decoded.right.epoch) {
      epoch = decoded.right.epoch
      ringSize = 0
    }
    lastSeq = decoded.right.seq
  }

  const publish = (events: Iterable<Domain.RuntimeEvent>) => {
    for (const event of events) {
      if (event.kind === "stream.lagged") continue
      // The epoch is read only where continuity is in doubt: the first event, or one that does not follow the last.
      if (epoch === undefined || event.seq !== lastSeq + 1) {
        const pos = Cursor.decode(event.cursor)
        if (Either.isRight(pos) && pos.right.epoch !== epoch) {
          if (epoch !== undefined) endAll()
          epoch = pos.right.epoch
          ringSize = 0
        }
        if (ringSize > 0 && event.seq !== lastSeq + 1) ringSize = 0
      }
      lastSeq = event.seq
      ring[event.seq % capacity] = event
      if (ringSize < capacity) ringSize += 1
      headCursor = Option.some(event.cursor)
      for (const sub of subscribers) {
        if (event.seq <= sub.after || !sub.matches(event)) continue
        const size = sub.queue.unsafeSize()
        if (Option.isNone(size)) {
          subscribers.delete(sub)
        } else if (size.value >= options.subscriberBuffer) {
          subscribers.delete(sub)
          sub.queue.unsafeOffer(LAGGED)
        } else {
          sub.queue.unsafeOffer(event)
        }
      }
    }
  }

  const reset = () => {
    endAll()
    ringSize = 0
    epoch = undefined
    lastSeq = -1
    headCursor = Option.none()
  }

  const start = (head: string) => {
    headCursor = Option.some(head)
    adopt(head)
  }

  const covers = (cursor: string): Coverage => {
    const decoded = Cursor.decode(cursor)
    if (Either.isLeft(decoded)) return { _tag: "Malformed" }
    const pos = decoded.right
    if (epoch === undefined || pos.epoch !== epoch) return { _tag: "Upstream" }
    if (pos.seq >= lastSeq) return { _tag: "Covered", seq: pos.seq }
    return pos.seq >= ringLow() - 1 ? { _tag: "Covered", seq: pos.seq } : { _tag: "Upstream" }
  }

  const subscribe: Hub["subscribe"] = (o) =>
    Effect.gen(function*() {
      const workerId = o.workerId
      const matches = workerId === undefined
        ? () => true
        : (e: Domain.RuntimeEvent) => e.worker_id === workerId
      const queue = yield* Queue.bounded<Item>(options.subscriberBuffer + 1)
      // Registration and the replay snapshot happen in one synchronous step: no gap and no duplicate.
      const { replay, start } = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const start = o.after ?? lastSeq
          const sub: Subscriber = { queue, matches, after: Math.max(start, lastSeq) }
          subscribers.add(sub)
          const replay: Array<Domain.RuntimeEvent> = []
          for (let seq = Math.max(start + 1, ringLow()); seq <= lastSeq; seq++) {
            const e = ring[seq % capacity]!
            if (matches(e)) replay.push(e)
          }
          return { sub, replay, start }
        }),
        ({ sub }) => Effect.zipRight(Effect.sync(() => subscribers.delete(sub)), Queue.shutdown(queue))
      )
      let last = o.after !== undefined && epoch !== undefined
        ? Cursor.encode(epoch, start)
        : Option.getOrElse(headCursor, () => "")
      let lastSeen = start
      return Stream.concat(Stream.fromIterable(replay), Stream.fromQueue(queue, { maxChunkSize: 512 })).pipe(
        Stream.map((item): Domain.RuntimeEvent => {
          if (item === LAGGED) {
            return {
              cursor: last,
              seq: lastSeen,
              runtime_id: options.runtimeId,
              ...(workerId === undefined ? {} : { worker_id: workerId }),
              kind: "stream.lagged",
              at: new Date().toISOString(),
              data: {
                resume_cursor: last,
                message: `subscriber fell more than ${options.subscriberBuffer} events behind (or the runtime's ` +
                  "event stream was reset); resume from the cursor"
              }
            }
          }
          last = item.cursor
          lastSeen = item.seq
          return item
        }),
        Stream.takeUntil((e) => e.kind === "stream.lagged")
      )
    })

  return {
    publish,
    start,
    reset,
    head: () => headCursor,
    covers,
    subscriberCount: () => subscribers.size,
    subscribe
  }
}
