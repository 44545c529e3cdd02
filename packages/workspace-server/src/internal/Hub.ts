import { Cursor, type Domain, Fanout } from "@yoi/worker-runtime"
import { Effect, Either, Option, type Scope, Stream } from "effect"

// The fan-out behind one upstream subscription: a bounded ring of recent events (for resume) and, per browser, a
// bounded buffer (a `Fanout`, as the runtime's own event log uses). A browser that falls `subscriberBuffer` events
// behind gets a final `stream.lagged` event with the cursor to resume from: a slow browser never holds the upstream
// back and never silently loses events.

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
  const fanout = Fanout.make<Domain.RuntimeEvent>({ buffer: options.subscriberBuffer })

  const ringLow = () => lastSeq - ringSize + 1

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
          if (epoch !== undefined) fanout.endAll()
          epoch = pos.right.epoch
          ringSize = 0
        }
        if (ringSize > 0 && event.seq !== lastSeq + 1) ringSize = 0
      }
      lastSeq = event.seq
      ring[event.seq % capacity] = event
      if (ringSize < capacity) ringSize += 1
      headCursor = Option.some(event.cursor)
      fanout.publish(event)
    }
  }

  const reset = () => {
    fanout.endAll()
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
      const byWorker = workerId === undefined
        ? () => true
        : (e: Domain.RuntimeEvent) => e.worker_id === workerId
      // The replay snapshot is taken as the subscriber registers: no gap and no duplicate.
      const { live, snapshot: { replay, start } } = yield* fanout.subscribe(() => {
        const start = o.after ?? lastSeq
        // Events at or before `after` are skipped live (a cursor the hub has not reached yet).
        const after = Math.max(start, lastSeq)
        const replay: Array<Domain.RuntimeEvent> = []
        for (let seq = Math.max(start + 1, ringLow()); seq <= lastSeq; seq++) {
          const e = ring[seq % capacity]!
          if (byWorker(e)) replay.push(e)
        }
        return { matches: (e) => e.seq > after && byWorker(e), snapshot: { replay, start } }
      })
      return Fanout.untilLagged(Stream.concat(Stream.fromIterable(replay), live), {
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
    subscriberCount: fanout.size,
    subscribe
  }
}
