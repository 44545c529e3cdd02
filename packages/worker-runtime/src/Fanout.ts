import { Effect, Mailbox, Option, type Scope, Stream } from "effect"
import type { RuntimeEvent } from "./Domain.js"

/** The marker that ends a subscriber which fell behind; `untilLagged` turns it into a `stream.lagged` event. */
export const LAGGED: unique symbol = Symbol("lagged")
export type Lagged = typeof LAGGED

export interface Registration<A, S> {
  readonly matches: (item: A) => boolean
  /** Whatever the subscriber must read in the same step as it registers, such as a replay backlog. */
  readonly snapshot: S
}

export interface Subscription<A, S> {
  readonly snapshot: S
  /** What was published after the snapshot, ending with `LAGGED` if the subscriber overflowed. */
  readonly live: Stream.Stream<A | Lagged>
}

/**
 * Fan-out to subscribers that each have their own bounded buffer: one that already holds `buffer` undelivered items
 * when another arrives is dropped and ended with `LAGGED`, so a slow reader never blocks the publisher and never
 * loses items silently. (A shared `PubSub` cannot do this: sliding drops silently and bounded stalls every
 * publisher.)
 */
export interface Fanout<A> {
  /** Offers an item to every matching subscriber; synchronous and never waits. */
  readonly publish: (item: A) => void
  /** Ends every subscriber with `LAGGED`, for a source that lost continuity. */
  readonly endAll: () => void
  readonly size: () => number
  /**
   * Registers a subscriber until the scope closes. `register` runs in the same synchronous step as the registration,
   * so a snapshot taken in it and the live items that follow have no gap and no duplicate.
   */
  readonly subscribe: <S>(register: () => Registration<A, S>) => Effect.Effect<Subscription<A, S>, never, Scope.Scope>
}

interface Subscriber<A> {
  readonly queue: Mailbox.Mailbox<A | Lagged>
  readonly matches: (item: A) => boolean
}

export const make = <A>(options: { readonly buffer: number }): Fanout<A> => {
  const subscribers = new Set<Subscriber<A>>()

  const publish = (item: A) => {
    for (const sub of subscribers) {
      if (!sub.matches(item)) continue
      const size = sub.queue.unsafeSize()
      if (Option.isNone(size)) {
        subscribers.delete(sub)
      } else if (size.value >= options.buffer) {
        subscribers.delete(sub)
        sub.queue.unsafeOffer(LAGGED)
      } else {
        sub.queue.unsafeOffer(item)
      }
    }
  }

  const endAll = () => {
    for (const sub of subscribers) sub.queue.unsafeOffer(LAGGED)
    subscribers.clear()
  }

  const subscribe: Fanout<A>["subscribe"] = (register) =>
    Effect.gen(function*() {
      // One slot past the buffer, so that an overflowing subscriber always has room for `LAGGED`.
      const queue = yield* Mailbox.make<A | Lagged>(options.buffer + 1)
      const { snapshot } = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const { matches, snapshot } = register()
          const sub: Subscriber<A> = { queue, matches }
          subscribers.add(sub)
          return { sub, snapshot }
        }),
        ({ sub }) => Effect.zipRight(Effect.sync(() => subscribers.delete(sub)), queue.shutdown)
      )
      return { snapshot, live: Mailbox.toStream(queue) }
    })

  return { publish, endAll, size: () => subscribers.size, subscribe }
}

export interface LaggedOptions {
  readonly runtimeId: string
  readonly workerId?: string | undefined
  /** The position to resume from if the subscriber lags before any event reaches it. */
  readonly cursor: string
  readonly seq: number
  readonly message: string
}

/**
 * Passes events through, turns `LAGGED` into a final `stream.lagged` event carrying the cursor of the last event
 * delivered, and ends there.
 */
export const untilLagged = <E, R>(
  stream: Stream.Stream<RuntimeEvent | Lagged, E, R>,
  options: LaggedOptions
): Stream.Stream<RuntimeEvent, E, R> => {
  let last = options.cursor
  let lastSeq = options.seq
  return stream.pipe(
    Stream.map((item): RuntimeEvent => {
      if (item === LAGGED) {
        return {
          cursor: last,
          seq: lastSeq,
          runtime_id: options.runtimeId,
          ...(options.workerId === undefined ? {} : { worker_id: options.workerId }),
          kind: "stream.lagged",
          at: new Date().toISOString(),
          data: { resume_cursor: last, message: options.message }
        }
      }
      last = item.cursor
      lastSeq = item.seq
      return item
    }),
    Stream.takeUntil((e) => e.kind === "stream.lagged")
  )
}
