import { Cause, Chunk, Effect, Option, PubSub, type Queue, type Scope, Stream } from "effect"
import type { RuntimeEvent } from "./Domain.js"

/** The marker that ends a subscriber which fell behind; `untilLagged` turns it into a `stream.lagged` event. */
export const LAGGED: unique symbol = Symbol("lagged")
export type Lagged = typeof LAGGED

/** What the bus needs of an item: its place in the log and, for worker topics, its worker. */
export interface Routed {
  readonly seq: number
  readonly worker_id?: string | undefined
}

export interface Registration<S> {
  /** Items at or below this seq are left out of the live part (the snapshot already holds them). */
  readonly upTo: number
  /** Whatever the subscriber must read as it registers, such as a replay backlog. */
  readonly snapshot: S
}

export interface Subscription<A, S> {
  readonly snapshot: S
  /**
   * Waits for what was published after the snapshot and takes all of it (a publish of many items wakes the reader
   * once); fails with `None` once the subscription has ended.
   */
  readonly take: Effect.Effect<ReadonlyArray<A>, Option.Option<never>>
  /** Once `take` has ended: what a cut subscriber still delivers before it lags; undefined if it was not cut. */
  readonly held: () => ReadonlyArray<A> | undefined
  /** `take` as a stream, ending with `LAGGED` if the subscriber was cut. */
  readonly live: Stream.Stream<A | Lagged>
}

export interface SubscribeOptions<A> {
  /** Subscribes to one worker's topic instead of the whole log. */
  readonly workerId?: string | undefined
  /** A further filter (kinds); the bound counts every item of the topic, matched or not. */
  readonly matches?: ((item: A) => boolean) | undefined
  /**
   * Makes the item that marks a position (`stream.bookmark`). When given, each `tick` of the bus lets this
   * subscriber emit one (the newest position up to which it has seen every item, matched or not) if that moved since
   * the last item or mark it delivered, so a filtered reader of a quiet topic keeps a fresh resume position.
   */
  readonly bookmark?: ((seq: number) => A) | undefined
}

/**
 * The live half of the event log, built on `PubSub`: one unbounded `PubSub` for the whole log and one per worker
 * topic (made when a worker-scoped subscriber arrives, dropped when its last one leaves). Every publish checks the
 * size of each subscription of the topics it reached; one holding more than `buffer` undelivered items is cut: its
 * first `buffer` items are kept, it leaves the `PubSub`, and its stream ends with `LAGGED` after them. So a slow
 * reader never blocks the publisher, never holds more than `buffer` items, and never loses items silently; a
 * sliding `PubSub` would drop silently and a bounded one would stall every publisher.
 */
export interface EventBus<A extends Routed> {
  /** Publishes items in seq order; never waits for a subscriber. */
  readonly publish: (items: ReadonlyArray<A>) => Effect.Effect<void>
  /**
   * Publishes at once, in the caller's synchronous step (so that the order of publishes is the order of calls), and
   * returns the effect that cuts the subscribers it overflowed; run it next.
   */
  readonly unsafePublish: (items: ReadonlyArray<A>) => Effect.Effect<void>
  /** Ends every subscriber with `LAGGED`, for a source that lost continuity. */
  readonly endAll: Effect.Effect<void>
  /** `endAll` in the caller's synchronous step: what is published after it reaches none of today's subscribers. */
  readonly unsafeEndAll: () => Effect.Effect<void>
  readonly size: () => number
  /** Lets every subscriber that asked for bookmarks emit one at its next chance (see `SubscribeOptions.bookmark`). */
  readonly tick: () => void
  /**
   * Subscribes until the scope closes. The subscription joins its `PubSub` before `register` takes its snapshot, and
   * live items up to the snapshot's `upTo` are skipped, so snapshot and live items have no gap and no duplicate.
   */
  readonly subscribe: <S>(
    options: SubscribeOptions<A>,
    register: () => Registration<S>
  ) => Effect.Effect<Subscription<A, S>, never, Scope.Scope>
}

interface Subscriber<A> {
  readonly dequeue: Queue.Dequeue<A>
  readonly topic: Topic<A>
  /** Set when the subscriber is cut: how many of the items it holds it still delivers before `LAGGED`. */
  limit: number
  /** Set when the cut is done: those items. */
  held: ReadonlyArray<A> | undefined
  /** The seq of the newest item offered to this subscriber. */
  offered: number
  /** Only for a subscriber with bookmarks: opened by a publish that reaches it, a tick or a cut. */
  readonly wake: Effect.Latch | undefined
  /** A tick asked for a bookmark. */
  due: boolean
}

interface Topic<A> {
  readonly workerId: string | undefined
  readonly pubsub: PubSub.PubSub<A>
  readonly subscribers: Set<Subscriber<A>>
}

export const make = <A extends Routed>(options: {
  readonly buffer: number
  /** The seq of the newest item published so far (the log's head); a bookmark of an idle subscriber names it. */
  readonly head?: (() => number) | undefined
}): Effect.Effect<EventBus<A>> =>
  Effect.map(PubSub.unbounded<A>(), (all) => {
    let published = 0
    const head = options.head ?? (() => published)
    const buffer = Math.max(1, options.buffer)
    const runtimeTopic: Topic<A> = { workerId: undefined, pubsub: all, subscribers: new Set() }
    const workerTopics = new Map<string, Topic<A>>()
    let count = 0

    const remove = (sub: Subscriber<A>) => {
      if (!sub.topic.subscribers.delete(sub)) return
      count -= 1
      const { workerId } = sub.topic
      if (workerId !== undefined && sub.topic.subscribers.size === 0 && workerTopics.get(workerId) === sub.topic) {
        workerTopics.delete(workerId)
      }
    }

    /** Keeps what a cut subscriber still delivers, then takes it out of its `PubSub`. */
    const cut = (sub: Subscriber<A>) =>
      Effect.flatMap(sub.dequeue.takeAll, (items) => {
        const all = Chunk.toReadonlyArray(items)
        sub.held = all.length > sub.limit ? all.slice(0, sub.limit) : all
        return Effect.zipRight(sub.dequeue.shutdown, Effect.sync(() => sub.wake?.unsafeOpen()))
      })

    const overflowed = (topic: Topic<A>, seq: number, into: Array<Subscriber<A>>) => {
      for (const sub of topic.subscribers) {
        sub.offered = seq
        if (sub.wake !== undefined) sub.wake.unsafeOpen()
        const size = sub.dequeue.unsafeSize()
        if (Option.isSome(size) && size.value <= buffer) continue
        remove(sub)
        sub.limit = buffer
        into.push(sub)
      }
    }

    const unsafePublish: EventBus<A>["unsafePublish"] = (items) => {
      if (items.length === 0) return Effect.void
      published = items[items.length - 1]!.seq
      if (count === 0) return Effect.void
      // Each topic reached, with the seq of the newest item it got.
      const touched = new Map<Topic<A>, number>()
      for (const item of items) {
        if (runtimeTopic.subscribers.size > 0) {
          all.unsafeOffer(item)
          touched.set(runtimeTopic, item.seq)
        }
        const topic = item.worker_id === undefined ? undefined : workerTopics.get(item.worker_id)
        if (topic !== undefined) {
          topic.pubsub.unsafeOffer(item)
          touched.set(topic, item.seq)
        }
      }
      const cuts: Array<Subscriber<A>> = []
      for (const [topic, seq] of touched) overflowed(topic, seq, cuts)
      return cuts.length === 0 ? Effect.void : Effect.uninterruptible(Effect.forEach(cuts, cut, { discard: true }))
    }

    const publish: EventBus<A>["publish"] = (items) => Effect.suspend(() => unsafePublish(items))

    const unsafeEndAll = () => {
      const cuts: Array<Subscriber<A>> = []
      for (const topic of [runtimeTopic, ...workerTopics.values()]) {
        for (const sub of topic.subscribers) {
          remove(sub)
          sub.limit = Option.getOrElse(sub.dequeue.unsafeSize(), () => 0)
          cuts.push(sub)
        }
      }
      return Effect.uninterruptible(Effect.forEach(cuts, cut, { discard: true }))
    }

    const tick = () => {
      for (const topic of [runtimeTopic, ...workerTopics.values()]) {
        for (const sub of topic.subscribers) {
          if (sub.wake === undefined) continue
          sub.due = true
          sub.wake.unsafeOpen()
        }
      }
    }

    /** The topic a subscriber joins, made if it does not exist yet (`fresh` is used only then). */
    const topicFor = (workerId: string | undefined, fresh: PubSub.PubSub<A> | undefined): Topic<A> => {
      if (workerId === undefined || fresh === undefined) return runtimeTopic
      const existing = workerTopics.get(workerId)
      if (existing !== undefined) return existing
      const topic: Topic<A> = { workerId, pubsub: fresh, subscribers: new Set() }
      workerTopics.set(workerId, topic)
      return topic
    }

    const subscribe: EventBus<A>["subscribe"] = (o, register) =>
      Effect.gen(function*() {
        const fresh = o.workerId === undefined ? undefined : yield* PubSub.unbounded<A>()
        const sub = yield* Effect.acquireRelease(
          Effect.suspend(() => {
            const topic = topicFor(o.workerId, fresh)
            return Effect.map(PubSub.subscribe(topic.pubsub), (dequeue): Subscriber<A> => {
              const sub: Subscriber<A> = {
                dequeue,
                topic,
                limit: buffer,
                held: undefined,
                offered: -1,
                wake: o.bookmark === undefined ? undefined : Effect.unsafeMakeLatch(false),
                due: false
              }
              topic.subscribers.add(sub)
              count += 1
              return sub
            })
          }),
          (sub) => Effect.sync(() => remove(sub))
        ).pipe(Effect.uninterruptible)
        const { snapshot, upTo } = register()
        const keep = (item: A) => item.seq > upTo && (o.matches === undefined || o.matches(item))
        // A cut can land between the two takes: the first item is then delivered and the rest are in `held`.
        const rest = Effect.catchAllCause(sub.dequeue.takeAll, () => Effect.succeed(Chunk.empty<A>()))
        const blockingTake = Effect.zipWith(
          sub.dequeue.take,
          rest,
          (first, rest) => {
            const out: Array<A> = []
            if (keep(first)) out.push(first)
            for (const item of rest) if (keep(item)) out.push(item)
            return out
          }
        )
        const take: Effect.Effect<ReadonlyArray<A>, Option.Option<never>> = (
          o.bookmark === undefined ? blockingTake : bookmarkingTake(sub, upTo, keep, o.bookmark)
        ).pipe(
          Effect.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause) ? Effect.fail(Option.none()) : Effect.failCause(cause)
          )
        )
        const held = () => sub.held?.filter(keep)
        const live = Stream.repeatEffectChunkOption(Effect.map(take, Chunk.unsafeFromArray)).pipe(
          Stream.concat(Stream.suspend(() => {
            const rest: Array<A | Lagged> | undefined = held()
            if (rest === undefined) return Stream.empty
            rest.push(LAGGED)
            return Stream.fromIterable(rest)
          }))
        )
        return { snapshot, take, held, live }
      })

    /**
     * The take of a subscriber with bookmarks. It never blocks inside the `PubSub` (a take interrupted there could
     * lose the item handed to it): it takes what is queued and otherwise waits on its own latch, which a publish
     * reaching it, a tick or a cut opens. A bookmark is made only when nothing matched: its position is the newest seq
     * this subscriber has consumed or, when everything offered to it has been consumed, the bus's head (what came
     * after was for other topics). Both are read in one synchronous step with the last take, and every item handed
     * out before was delivered (the caller takes again only then), so resuming from it skips nothing.
     */
    const bookmarkingTake = (
      sub: Subscriber<A>,
      upTo: number,
      keep: (item: A) => boolean,
      bookmark: (seq: number) => A
    ): Effect.Effect<ReadonlyArray<A>> => {
      const wake = sub.wake!
      let consumed = upTo
      let marked = upTo
      const step: Effect.Effect<ReadonlyArray<A>> = Effect.flatMap(sub.dequeue.takeAll, (items) => {
        const out: Array<A> = []
        for (const item of items) {
          if (item.seq > consumed) consumed = item.seq
          if (keep(item)) out.push(item)
        }
        if (out.length > 0) {
          marked = Math.max(marked, out[out.length - 1]!.seq)
          return Effect.succeed(out)
        }
        if (sub.due) {
          sub.due = false
          const position = sub.offered <= consumed ? Math.max(consumed, head()) : consumed
          if (position > marked) {
            marked = position
            return Effect.succeed([bookmark(position)])
          }
        }
        wake.unsafeClose()
        // A publish or a tick between the take and the close opened the latch before it was closed: look again.
        const size = sub.dequeue.unsafeSize()
        if (Option.isNone(size)) return Effect.interrupt
        if (size.value > 0 || sub.due) return step
        return Effect.zipRight(wake.await, step)
      })
      return step
    }

    return {
      publish,
      unsafePublish,
      endAll: Effect.suspend(unsafeEndAll),
      unsafeEndAll,
      size: () => count,
      tick,
      subscribe
    }
  })

export interface LaggedOptions {
  readonly runtimeId: string
  readonly workerId?: string | undefined
  /** The position to resume from if the subscriber lags before any event reaches it. */
  readonly cursor: string
  readonly seq: number
  readonly message: string
  /**
   * Sends one `stream.live` event at this position once the replay has been delivered (a stream opened with a
   * cursor or `earliest`); absent for a stream opened at "now", which has no history.
   */
  readonly live?: { readonly cursor: string; readonly seq: number } | undefined
}

/** The event between the replay and the live part of a stream. */
export const liveEvent = (options: LaggedOptions, replayed: number): RuntimeEvent => ({
  cursor: options.live!.cursor,
  seq: options.live!.seq,
  runtime_id: options.runtimeId,
  ...(options.workerId === undefined ? {} : { worker_id: options.workerId }),
  kind: "stream.live",
  at: new Date().toISOString(),
  data: { replayed }
})

/** A stream-local position mark (`stream.bookmark`): never stored in the log. */
export const bookmarkEvent = (
  options: { readonly runtimeId: string; readonly workerId?: string | undefined },
  cursor: string,
  seq: number
): RuntimeEvent => ({
  cursor,
  seq,
  runtime_id: options.runtimeId,
  ...(options.workerId === undefined ? {} : { worker_id: options.workerId }),
  kind: "stream.bookmark",
  at: new Date().toISOString(),
  data: { resume_cursor: cursor }
})

const laggedEvent = (options: LaggedOptions, cursor: string, seq: number): RuntimeEvent => ({
  cursor,
  seq,
  runtime_id: options.runtimeId,
  ...(options.workerId === undefined ? {} : { worker_id: options.workerId }),
  kind: "stream.lagged",
  at: new Date().toISOString(),
  data: { resume_cursor: cursor, message: options.message }
})

/** Replay chunks are at most this long, so one write stays bounded. */
const REPLAY_CHUNK = 4096

/**
 * A subscription as one stream stage: the replay, then the live events, then (if the subscriber was cut) what it
 * still held and a final `stream.lagged` event carrying the cursor of the last event delivered. Every idle stream
 * holds one of these, so it is a single `repeatEffectChunkOption` over plain state rather than a pipeline of
 * stages (each costs a channel executor and its continuations, several KiB per open stream). It reads one
 * subscription, so it is run once.
 */
export const stream = <S>(
  replay: ReadonlyArray<RuntimeEvent>,
  subscription: Subscription<RuntimeEvent, S>,
  options: LaggedOptions
): Stream.Stream<RuntimeEvent> => {
  let pending = replay
  let last = options.cursor
  let lastSeq = options.seq
  let ended = false
  let marked = options.live === undefined
  const emit = (events: ReadonlyArray<RuntimeEvent>) => {
    if (events.length > 0) {
      const newest = events[events.length - 1]!
      last = newest.cursor
      lastSeq = newest.seq
    }
    return Chunk.unsafeFromArray(events as Array<RuntimeEvent>)
  }
  const live: Effect.Effect<Chunk.Chunk<RuntimeEvent>, Option.Option<never>> = Effect.matchEffect(
    subscription.take,
    {
      onSuccess: (events) => (events.length === 0 ? live : Effect.succeed(emit(events))),
      onFailure: () => {
        ended = true
        const held = subscription.held()
        if (held === undefined) return Effect.fail(Option.none())
        const chunk = emit(held)
        return Effect.succeed(Chunk.append(chunk, laggedEvent(options, last, lastSeq)))
      }
    }
  )
  const pull = Effect.suspend(() => {
    if (ended) return Effect.fail(Option.none())
    if (pending.length === 0) {
      if (marked) return live
      marked = true
      return Effect.succeed(emit([liveEvent(options, replay.length)]))
    }
    const out = pending.length > REPLAY_CHUNK ? pending.slice(0, REPLAY_CHUNK) : pending
    pending = pending.length > REPLAY_CHUNK ? pending.slice(REPLAY_CHUNK) : []
    if (pending.length === 0 && !marked) {
      marked = true
      return Effect.succeed(emit([...out, liveEvent(options, replay.length)]))
    }
    return Effect.succeed(emit(out))
  })
  return withPull(Stream.repeatEffectChunkOption(pull), pull)
}

const PullId: unique symbol = Symbol.for("@yoi/worker-runtime/EventBus/pull")

/** What a subscription's stream is pulled with: a chunk, or `None` when it ended. */
export type Pull<A, E = never> = Effect.Effect<Chunk.Chunk<A>, Option.Option<E>>

const withPull = <A, E>(stream: Stream.Stream<A, E>, pull: Pull<A, E>): Stream.Stream<A, E> =>
  Object.assign(stream, { [PullId]: pull })

/**
 * The pull behind a stream made by `stream`, if `self` is one (any operator applied to it makes a new stream without
 * it). A writer that holds many idle streams, such as the SSE body, pulls with it directly instead of running the
 * stream: the stream's channel machinery costs an idle subscriber more memory than everything else it holds.
 */
export const pullOf = <A, E, R>(self: Stream.Stream<A, E, R>): Option.Option<Pull<A, E>> =>
  PullId in self ? Option.some(self[PullId] as Pull<A, E>) : Option.none()

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
      if (item === LAGGED) return laggedEvent(options, last, lastSeq)
      last = item.cursor
      lastSeq = item.seq
      return item
    }),
    Stream.takeUntil((e) => e.kind === "stream.lagged")
  )
}
