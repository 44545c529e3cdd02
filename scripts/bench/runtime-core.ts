/**
 * The embedded runtime core, side by side with bare baselines in the same run:
 *   - complete echo turns per second and events per second through one subscriber, with 1, 100 and 10,000 workers
 *     (at most `--turns` of them active, all at once, each running its turns one after another);
 *     baseline: the same events, in the same batches, through a plain `PubSub` to one subscriber;
 *     baseline + stream: that, plus running one 7-element `Stream` per turn (what any engine turn costs to consume);
 *   - heap bytes per idle worker, against a plain `Map` holding the same worker views.
 * Aims: 10,000 idle workers under 40 MB of heap; per-turn time under 5x the baseline.
 *
 *   npx tsx scripts/bench/runtime-core.ts [--turns 2000] [--rounds 3]
 */
import { testPolicy } from "@yoi/worker-runtime/testing"
import { Cursor, type Domain, Ids, layerMemory, Runtime } from "@yoi/worker-runtime"
import { Chunk, Deferred, Effect, Exit, PubSub, Stream } from "effect"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { parseArgs } from "node:util"

const { values: args } = parseArgs({
  options: { turns: { type: "string", default: "2000" }, rounds: { type: "string", default: "3" } }
})
const TURNS = Number(args.turns)
const ROUNDS = Number(args.rounds)
/** 64 characters: four 16-character deltas per echo turn, eleven events in all. */
const TEXT = "the quick brown fox jumps over the lazy dog and keeps on running"

const gc: () => void = (globalThis as { gc?: () => void }).gc ?? (() => {
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
})()

const heapUsed = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

interface Measure {
  readonly turns: number
  readonly events: number
  readonly ms: number
}

/** Runs `turnsPerWorker` turns on every worker at once, each worker's turns one after another. */
const drive = (
  workers: ReadonlyArray<string>,
  turnsPerWorker: number,
  turn: (worker: string, done: Deferred.Deferred<void>) => Effect.Effect<unknown, unknown>,
  pending: Map<string, Deferred.Deferred<void>>
) =>
  Effect.forEach(workers, (worker) =>
    Effect.gen(function*() {
      for (let t = 0; t < turnsPerWorker; t++) {
        const done = yield* Deferred.make<void>()
        pending.set(worker, done)
        yield* turn(worker, done)
        yield* Deferred.await(done)
      }
    }), { concurrency: "unbounded", discard: true })

/** The one subscriber of both sides: counts events and releases a worker's driver when its turn completes. */
const consume = (pending: Map<string, Deferred.Deferred<void>>, counter: { events: number }) =>
  (chunk: Chunk.Chunk<Domain.RuntimeEvent>) =>
    Effect.sync(() => {
      for (const e of chunk) {
        counter.events += 1
        if (e.kind === "turn.completed") Deferred.unsafeDone(pending.get(e.worker_id!)!, Exit.void)
      }
    })

const runtimeTurns = (workerCount: number, active: number, turnsPerWorker: number) =>
  Effect.gen(function*() {
    const rt = yield* Runtime.Runtime
    const workers = yield* Effect.forEach(
      Array.from({ length: workerCount }, (_, i) => i),
      (i) => Effect.map(rt.createWorker({ display_name: `bench ${i}` }), (r) => r.worker.worker_id)
    )
    const pending = new Map<string, Deferred.Deferred<void>>()
    const counter = { events: 0 }
    const stream = yield* rt.subscribe()
    yield* Effect.forkScoped(Stream.runForEachChunk(stream, consume(pending, counter)))
    const start = performance.now()
    yield* drive(workers.slice(0, active), turnsPerWorker, (worker) => rt.sendInput(worker, { text: TEXT }), pending)
    const ms = performance.now() - start
    return { turns: active * turnsPerWorker, events: counter.events, ms } satisfies Measure
  }).pipe(Effect.scoped, Effect.provide(layerMemory({ policy: testPolicy, runtimeId: "bench", subscriberBuffer: 10_000_000 })))

const chunks = (text: string, size: number) => {
  const out: Array<string> = []
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size))
  return out
}

/** The same events as a runtime turn, in the same batches, stamped the same way, through a plain PubSub. */
const baselineTurns = (active: number, turnsPerWorker: number, withStream: boolean) =>
  Effect.gen(function*() {
    const workers = Array.from({ length: active }, (_, i) => `w_${i.toString().padStart(26, "0")}`)
    const pubsub = yield* PubSub.unbounded<Domain.RuntimeEvent>()
    const subscription = yield* PubSub.subscribe(pubsub)
    const pending = new Map<string, Deferred.Deferred<void>>()
    const counter = { events: 0 }
    yield* Effect.forkScoped(Stream.runForEachChunk(Stream.fromQueue(subscription), consume(pending, counter)))
    let seq = 0
    let turnNo = 0
    const stamp = <K extends Domain.EventKind>(
      worker: string,
      turnId: string | undefined,
      kind: K,
      data: Domain.EventOf<K>["data"]
    ): Domain.RuntimeEvent => {
      seq += 1
      return {
        cursor: Cursor.encode("0123456789abcdef", seq),
        seq,
        runtime_id: "bench",
        worker_id: worker,
        ...(turnId === undefined ? {} : { turn_id: turnId }),
        kind,
        at: new Date().toISOString(),
        data
      } as Domain.RuntimeEvent
    }
    const deltas = chunks(TEXT, 16)
    const turn = (worker: string) =>
      Effect.gen(function*() {
        turnNo += 1
        const turnId = `t_${turnNo}`
        const at = new Date().toISOString()
        const input: Domain.TranscriptEntry = {
          worker_id: Ids.WorkerId.make(worker),
          index: 0,
          entry_id: `e_${turnNo}`,
          turn_id: Ids.TurnId.make(turnId),
          at,
          data: { _tag: "user_input", text: TEXT }
        }
        yield* PubSub.publishAll(pubsub, [
          stamp(worker, turnId, "turn.started", { input_index: 0 }),
          stamp(worker, turnId, "transcript.appended", { entry: input }),
          stamp(worker, undefined, "worker.status", { status: "running", previous: "idle" })
        ])
        const usage = { input_tokens: 12, output_tokens: 12, cached_tokens: 0 }
        if (withStream) {
          const parts = [...deltas.map((text) => ({ kind: "turn.delta" as const, data: { text } })), {
            kind: "turn.usage" as const,
            data: usage
          }, { kind: "finish" as const, data: null }]
          yield* Stream.runForEach(Stream.fromIterable(parts), (p) =>
            p.kind === "finish" ? Effect.void : PubSub.publish(pubsub, stamp(worker, turnId, p.kind, p.data)))
        } else {
          for (const text of deltas) yield* PubSub.publish(pubsub, stamp(worker, turnId, "turn.delta", { text }))
          yield* PubSub.publish(pubsub, stamp(worker, turnId, "turn.usage", usage))
        }
        const reply: Domain.TranscriptEntry = {
          ...input,
          index: 1,
          entry_id: `e_${turnNo}r`,
          data: { _tag: "assistant_message", text: TEXT }
        }
        yield* PubSub.publishAll(pubsub, [
          stamp(worker, turnId, "transcript.appended", { entry: reply }),
          stamp(worker, turnId, "turn.completed", { outcome: "completed", usage }),
          stamp(worker, undefined, "worker.status", { status: "idle", previous: "running" })
        ])
      })
    const start = performance.now()
    yield* drive(workers, turnsPerWorker, turn, pending)
    const ms = performance.now() - start
    return { turns: active * turnsPerWorker, events: counter.events, ms } satisfies Measure
  }).pipe(Effect.scoped)

const idleHeap = (count: number) =>
  Effect.gen(function*() {
    const rt = yield* Runtime.Runtime
    const before = heapUsed()
    for (let i = 0; i < count; i++) yield* rt.createWorker({ display_name: `idle ${i}` })
    const runtimeBytes = heapUsed() - before
    const views: Array<Domain.Worker> = []
    let token: string | undefined
    do {
      const page = yield* rt.listWorkers(token === undefined ? { limit: 500 } : { limit: 500, page_token: token })
      views.push(...page.items)
      token = page.next_page_token
    } while (token !== undefined)
    const mid = heapUsed()
    const bare = new Map(views.map((v) => [v.worker_id, structuredClone(v)] as const))
    const bareBytes = heapUsed() - mid
    return { runtimeBytes, bareBytes: Math.max(bareBytes, 1), workers: Math.min(bare.size, views.length) }
  }).pipe(Effect.provide(layerMemory({ policy: testPolicy, runtimeId: "bench" })))

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits })

const program = Effect.gen(function*() {
  const rows: Array<ReadonlyArray<string>> = []
  const turnRatios: Array<number> = []
  yield* runtimeTurns(10, 10, 50)
  yield* baselineTurns(10, 50, false)
  yield* baselineTurns(10, 50, true)
  for (const workers of [1, 100, 10_000]) {
    const active = Math.min(workers, TURNS)
    const perWorker = Math.max(1, Math.round(TURNS / active))
    const rt: Array<Measure> = []
    const base: Array<Measure> = []
    const withStream: Array<Measure> = []
    for (let r = 0; r < ROUNDS; r++) {
      base.push(yield* baselineTurns(active, perWorker, false))
      withStream.push(yield* baselineTurns(active, perWorker, true))
      rt.push(yield* runtimeTurns(workers, active, perWorker))
    }
    const perSec = (f: (m: Measure) => number) => (ms: ReadonlyArray<Measure>) =>
      median(ms.map((m) => (f(m) / m.ms) * 1000))
    const row = (label: string, f: (m: Measure) => number) => {
      const [r, b, s] = [rt, base, withStream].map(perSec(f)) as [number, number, number]
      rows.push([label, fmt(r), fmt(b), `${fmt(b / r, 2)}x`, fmt(s), `${fmt(s / r, 2)}x`])
      return b / r
    }
    const who = workers === active ? `${fmt(workers)} worker(s)` : `${fmt(workers)} workers, ${fmt(active)} active`
    turnRatios.push(row(`turns/s, ${who}`, (m) => m.turns))
    row(`events/s, ${who}`, (m) => m.events)
    rows.push(["  events per turn", fmt(rt[0]!.events / rt[0]!.turns, 2), fmt(base[0]!.events / base[0]!.turns, 2), "", "", ""])
  }
  const heap = yield* idleHeap(10_000)
  rows.push([
    "heap bytes per idle worker (10,000)",
    fmt(heap.runtimeBytes / 10_000),
    fmt(heap.bareBytes / heap.workers),
    `${fmt(heap.runtimeBytes / heap.bareBytes, 2)}x`,
    "",
    ""
  ])

  const header = ["measure", "runtime", "baseline", "ratio", "baseline+stream", "ratio"]
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: ReadonlyArray<string>) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  console.log(`runtime core vs bare baselines (${fmt(TURNS)} turns per scenario, median of ${ROUNDS} rounds)`)
  console.log("ratio = how many times the baseline's rate (or, for heap, the runtime's bytes) the other is")
  console.log("baseline: the same events through a plain PubSub; +stream: plus one 7-element Stream run per turn;")
  console.log("heap baseline: the same worker views in a Map\n")
  console.log(line(header))
  console.log(widths.map((w) => "-".repeat(w)).join("  "))
  for (const r of rows) console.log(line(r))
  const heapMb = heap.runtimeBytes / 1024 / 1024
  const worst = Math.max(...turnRatios)
  console.log("")
  console.log(`aim: 10,000 idle workers under 40 MB of heap: ${fmt(heapMb, 1)} MB (${heapMb < 40 ? "met" : "MISSED"})`)
  console.log(`aim: per-turn time under 5x the baseline: worst ${fmt(worst, 2)}x (${worst < 5 ? "met" : "MISSED"})`)
})

Effect.runPromise(program).catch((e) => {
  console.error(e)
  process.exit(1)
})
