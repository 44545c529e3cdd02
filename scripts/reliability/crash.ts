/**
 * Crash safety: `yoi-runtime` on SQLite as a child process, many workers driven with streaming turns (and cancels,
 * stops and restores), an SSE reader following every event, and a `SIGKILL` at a random moment of each round. After
 * each restart on the same store it checks that nothing acknowledged is lost:
 *
 * - every acknowledged create is a worker, every acknowledged input (202 with its `turn_id`) is a `user_input` entry
 *   of that turn with that text, and every transcript entry and durable event a client was sent before the kill is
 *   there, identical (events are published only after they commit);
 * - every turn that started has exactly one terminal event; the turns cut by the kill are `turn.interrupted`, with a
 *   `turn_interrupted` notice and `last_turn.outcome = "interrupted"`; acknowledged cancels are `turn.cancelled`;
 * - statuses are right: nothing is `running`, an acknowledged stop is still `stopped`, a restore `idle`;
 * - transcripts are whole (indexes 0..n-1, unique entry ids), usage counts the finished turns;
 * - the reader's last cursor resumes: every durable event after it, no gap, no duplicate, no seq reused.
 *
 *   npx tsx scripts/reliability/crash.ts [--rounds 12] [--workers 8] [--seed <n>]
 */
import { echo } from "@yoi/worker-runtime/testing"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { parseArgs } from "node:util"
import * as Proc from "./lib/proc.js"
import { canonical, check, Figures, fail, finish, heading, note, sleep } from "./lib/report.js"
import { type Frame, openSse, type SseReader, seqOf, waitFrames } from "./lib/sse.js"

const { values: flags } = parseArgs({
  options: {
    rounds: { type: "string", default: "12" },
    workers: { type: "string", default: "8" },
    seed: { type: "string" }
  },
  strict: true
})
const ROUNDS = Number(flags.rounds)
const WORKERS = Number(flags.workers)
let seed = flags.seed === undefined ? Date.now() % 2 ** 31 : Number(flags.seed)
/** A small deterministic generator (mulberry32), so a failing run can be repeated with `--seed`. */
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const pick = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1))

const TOKEN = "crash-suite-token-5e0c7a1f93b2"
const TERMINAL = new Set(["turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"])

interface AckedInput {
  readonly workerId: string
  readonly turnId: string
  readonly text: string
  readonly round: number
}

const figures = new Figures()
const initialSeed = seed
const acked = {
  creates: new Set<string>(),
  inputs: [] as Array<AckedInput>,
  /** turn id → acknowledged with `cancelled: true`. */
  cancels: new Set<string>(),
  /** The last acknowledged lifecycle command per worker, and whether one was in flight at the kill. */
  status: new Map<string, "idle" | "stopped">(),
  pending: new Set<string>()
}
/** Every durable event a client was sent, by seq, across all rounds. */
const seen = new Map<number, Frame>()
/** Every delta seq a client was sent: a later durable event must never reuse one. */
const seenDeltaSeqs = new Set<number>()
let entriesChecked = 0
let eventsChecked = 0
let interrupted = 0
let lost = 0
let resumes = 0
let startKills = 0

const call = async (base: string, method: string, path: string, body?: unknown) => {
  const response = await fetch(base + path, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { "content-type": "application/json" })
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000)
  })
  const text = await response.text()
  return { status: response.status, json: text.length > 0 ? JSON.parse(text) : undefined }
}

const lose = (what: string) => {
  lost += 1
  fail(`LOST: ${what}`)
}

/** One worker's loop: input, follow the turn to its end (sometimes cancelling it), now and then stop and restore. */
const drive = async (base: string, workerId: string, round: number, killed: () => boolean) => {
  for (let n = 0; !killed(); n++) {
    const text = `r${round} ${workerId} n${n} ${"lorem ipsum dolor sit amet ".repeat(pick(1, 8))}`
    const reply = await call(base, "POST", `/v1/workers/${workerId}/input`, { text })
    if (reply.status !== 202) {
      fail(`input to ${workerId} answered ${reply.status}: ${JSON.stringify(reply.json)}`)
      return
    }
    const turnId = reply.json.turn_id as string
    acked.inputs.push({ workerId, turnId, text, round })
    if (random() < 0.15) {
      await sleep(pick(5, 60))
      const cancel = await call(base, "POST", `/v1/workers/${workerId}/cancel`)
      if (cancel.status === 200 && cancel.json.cancelled === true) acked.cancels.add(cancel.json.turn_id)
    }
    for (;;) {
      const w = await call(base, "GET", `/v1/workers/${workerId}`)
      if (w.json.status !== "running") break
      await sleep(15)
    }
    if (random() < 0.1) {
      for (const action of ["stop", "restore"] as const) {
        acked.pending.add(workerId)
        const r = await call(base, "POST", `/v1/workers/${workerId}/${action}`)
        if (r.status !== 200) fail(`${action} of ${workerId} answered ${r.status}`)
        acked.status.set(workerId, action === "stop" ? "stopped" : "idle")
        acked.pending.delete(workerId)
        if (random() < 0.3) await sleep(pick(20, 200))
      }
    }
  }
}

/** Reads the whole retained durable log, from earliest to the head the summary names. */
const replay = async (base: string) => {
  const head = (await call(base, "GET", "/v1/runtime")).json.cursor as string
  const headSeq = seqOf(head)!
  const reader = openSse(`${base}/v1/events?cursor=earliest`, { token: TOKEN })
  const reached = (frames: ReadonlyArray<Frame>) => frames.some((f) => f.seq !== undefined && f.seq >= headSeq)
  const complete = await waitFrames(reader, reached, 20_000)
  reader.close()
  if (!complete) fail(`the replay from earliest did not reach the head (seq ${headSeq})`)
  return { events: reader.frames.filter((f) => f.seq !== undefined), head, headSeq }
}

const verify = async (base: string, reader: SseReader, round: number) => {
  const { events, head, headSeq } = await replay(base)
  const bySeq = new Map(events.map((e) => [e.seq!, e]))
  check(bySeq.size === events.length, `round ${round}: the replay repeats a seq`)

  // Every durable event a client was sent is retained, identical; no later event reuses a delta's seq.
  for (const frame of reader.frames) {
    if (frame.seq === undefined) continue
    if (frame.event === "turn.delta" || frame.event === "turn.retry") seenDeltaSeqs.add(frame.seq)
    else seen.set(frame.seq, frame)
  }
  for (const [seq, frame] of seen) {
    eventsChecked += 1
    const kept = bySeq.get(seq)
    if (kept === undefined) lose(`event seq ${seq} (${frame.event}) was sent to a client but is not retained`)
    else if (canonical(kept.data) !== canonical(frame.data)) lose(`event seq ${seq} changed after the restart: sent ${canonical(frame.data).slice(0, 300)} kept ${canonical(kept.data).slice(0, 300)}`)
  }
  for (const seq of seenDeltaSeqs) {
    const kept = bySeq.get(seq)
    if (kept !== undefined) fail(`round ${round}: durable event ${kept.event} reuses seq ${seq}, already sent as a delta`)
  }

  // Turns: exactly one terminal event each; interrupted ones are marked as such.
  const terminals = new Map<string, Array<Frame>>()
  const started = new Set<string>()
  for (const e of events) {
    const turnId = e.data.turn_id as string | undefined
    if (turnId === undefined) continue
    if (e.event === "turn.started") started.add(turnId)
    if (TERMINAL.has(e.event!)) terminals.set(turnId, [...(terminals.get(turnId) ?? []), e])
  }
  for (const turnId of started) {
    const ends = terminals.get(turnId) ?? []
    if (ends.length !== 1) fail(`round ${round}: turn ${turnId} has ${ends.length} terminal events`)
  }
  const terminalsBeforeKill = new Set(reader.frames.filter((f) => TERMINAL.has(f.event ?? "")).map((f) => f.data.turn_id))
  for (const input of acked.inputs) {
    const end = terminals.get(input.turnId)?.[0]
    if (end === undefined) {
      lose(`acknowledged turn ${input.turnId} of ${input.workerId} has no terminal event`)
      continue
    }
    if (acked.cancels.has(input.turnId) && end.event !== "turn.cancelled") {
      fail(`turn ${input.turnId}: its cancel was acknowledged but it ended ${end.event}`)
    }
    if (input.round === round && !terminalsBeforeKill.has(input.turnId) && end.event === "turn.interrupted") interrupted += 1
  }

  // Workers: every acknowledged create exists, statuses are right, transcripts are whole and hold every input.
  const transcripts = new Map<string, Array<any>>()
  for (const workerId of acked.creates) {
    const detail = await call(base, "GET", `/v1/workers/${workerId}`)
    if (detail.status !== 200) {
      lose(`acknowledged worker ${workerId} answered ${detail.status}`)
      continue
    }
    const w = detail.json
    check(w.status !== "running", `round ${round}: ${workerId} is running right after the restart`)
    check(w.current_turn_id === undefined, `round ${round}: ${workerId} still names a current turn`)
    if (!acked.pending.has(workerId)) {
      const expected = acked.status.get(workerId) ?? "idle"
      check(w.status === expected, `round ${round}: ${workerId} is ${w.status}, its last acknowledged command left it ${expected}`)
    }
    // A command cut by the kill may or may not have happened: from now on the status read back is the truth.
    acked.pending.delete(workerId)
    acked.status.set(workerId, w.status)
    const items: Array<any> = []
    let token: string | undefined
    do {
      const page = await call(base, "GET", `/v1/workers/${workerId}/transcript?limit=500${token === undefined ? "" : `&page_token=${token}`}`)
      items.push(...page.json.items)
      token = page.json.next_page_token
    } while (token !== undefined)
    transcripts.set(workerId, items)
    check(items.length === w.transcript_length, `round ${round}: ${workerId} transcript_length ${w.transcript_length} but ${items.length} entries`)
    items.forEach((entry, i) => check(entry.index === i, `round ${round}: ${workerId} entry ${i} has index ${entry.index}`))
    check(new Set(items.map((e) => e.entry_id)).size === items.length, `round ${round}: ${workerId} repeats an entry id`)
    const workerTerminals = events.filter((e) => e.data.worker_id === workerId && TERMINAL.has(e.event!))
    check(w.usage.turns === workerTerminals.length, `round ${round}: ${workerId} usage.turns ${w.usage.turns}, ${workerTerminals.length} turns ended`)
    const last = workerTerminals.at(-1)
    if (last !== undefined) {
      check(w.last_turn?.turn_id === last.data.turn_id, `round ${round}: ${workerId} last_turn is not its last ended turn`)
      check(w.last_turn?.outcome === last.data.data.outcome, `round ${round}: ${workerId} last_turn outcome ${w.last_turn?.outcome}, event says ${last.data.data.outcome}`)
    }
  }
  for (const input of acked.inputs) {
    entriesChecked += 1
    const entry = transcripts.get(input.workerId)?.find((e) => e.turn_id === input.turnId && e.data._tag === "user_input")
    if (entry === undefined) lose(`acknowledged input of turn ${input.turnId} is not in ${input.workerId}'s transcript`)
    else if (entry.data.text !== input.text) lose(`the input of turn ${input.turnId} changed`)
    const end = terminals.get(input.turnId)?.[0]
    if (end?.event === "turn.interrupted") {
      const notice = transcripts.get(input.workerId)?.some((e) =>
        e.turn_id === input.turnId && e.data._tag === "notice" && e.data.code === "turn_interrupted")
      check(notice === true, `interrupted turn ${input.turnId} has no turn_interrupted notice`)
    }
  }
  for (const frame of reader.frames) {
    if (frame.event !== "transcript.appended") continue
    entriesChecked += 1
    const entry = frame.data.data.entry
    const kept = transcripts.get(entry.worker_id)?.[entry.index]
    if (kept === undefined || kept.entry_id !== entry.entry_id || canonical(kept.data) !== canonical(entry.data)) {
      lose(`committed entry ${entry.entry_id} (${entry.worker_id} #${entry.index}) is not in the transcript as sent`)
    }
  }

  // The reader's last cursor resumes after the restart: exactly the durable events after it, in order.
  const lastId = reader.lastId
  if (lastId !== undefined) {
    const lastSeq = seqOf(lastId)!
    const resumed = openSse(`${base}/v1/events`, { token: TOKEN, lastEventId: lastId })
    const status = await resumed.status
    check(status === 200, `round ${round}: resuming from the last cursor answered ${status}: ${resumed.errorBody}`)
    await waitFrames(resumed, (frames) => frames.some((f) => f.id === head) || headSeq <= lastSeq, 10_000)
    resumed.close()
    const got = resumed.frames.filter((f) => f.seq !== undefined).map((f) => f.seq!)
    const want = events.filter((e) => e.seq! > lastSeq).map((e) => e.seq!)
    check(JSON.stringify(got) === JSON.stringify(want), `round ${round}: resuming after seq ${lastSeq} delivered ${got.length} events, the log holds ${want.length} after it`)
    resumes += 1
  }
  return { head }
}

const main = async () => {
  const dir = Proc.tempDir("yoi-crash-")
  const tokenFile = NodePath.join(dir, "token")
  NodeFs.writeFileSync(tokenFile, TOKEN)
  const store = `sqlite:${NodePath.join(dir, "runtime.db")}`
  const started = performance.now()
  console.log(`crash: seed ${initialSeed}, ${ROUNDS} rounds, ${WORKERS} workers`)
  const restarts: Array<number> = []
  const options = { runtimeId: "crash", store, tokenFile, extra: ["--heartbeat-ms", "1000"] }
  let child = await Proc.startRuntime(options)
  let cursor: string | undefined
  for (let i = 0; i < WORKERS; i++) {
    const workerId = `crash-w${i}`
    const r = await call(child.url, "POST", "/v1/workers", {
      worker_id: workerId,
      display_name: `Crash ${i}`,
      engine: echo({ chunk_size: [2, 3, 4, 6][pick(0, 3)], delay_ms: [2, 5][pick(0, 1)] })
    })
    if (r.status === 201) acked.creates.add(workerId)
  }
  for (let round = 1; round <= ROUNDS; round++) {
    heading(`round ${round}`)
    const reader = openSse(`${child.url}/v1/events${cursor === undefined ? "?cursor=earliest" : ""}`, {
      token: TOKEN,
      lastEventId: cursor
    })
    await reader.status
    for (const workerId of acked.creates) {
      if (acked.status.get(workerId) !== "stopped") continue
      const r = await call(child.url, "POST", `/v1/workers/${workerId}/restore`)
      check(r.status === 200, `restore of ${workerId} answered ${r.status}`)
      acked.status.set(workerId, "idle")
    }
    let killed = false
    const drivers = Array.from(acked.creates, (workerId) =>
      drive(child.url, workerId, round, () => killed).catch(() => undefined))
    const at = pick(300, 2_500)
    await sleep(at)
    killed = true
    const kill = Proc.kill(child, "SIGKILL")
    await Promise.all([kill, ...drivers])
    await reader.ended
    note(`SIGKILL after ${at} ms; ${reader.frames.length} frames seen, ${acked.inputs.filter((i) => i.round === round).length} inputs acknowledged this round`)
    if (random() < 0.3) {
      // A second crash while the store is opened and recovered (or just after).
      const after = pick(200, 4_000)
      const { wasReady } = await Proc.killDuringStart(options, after)
      startKills += 1
      note(`SIGKILL again ${after} ms into the restart (${wasReady ? "after" : "before"} it was ready)`)
    }
    child = await Proc.startRuntime(options)
    restarts.push(child.startMs)
    const before = { lost, interrupted }
    const { head } = await verify(child.url, reader, round)
    note(`restarted in ${child.startMs.toFixed(0)} ms; interrupted turns marked: ${interrupted - before.interrupted}; lost: ${lost - before.lost}`)
    cursor = reader.lastId ?? head
  }
  await Proc.kill(child, "SIGTERM")
  NodeFs.rmSync(dir, { recursive: true, force: true })
  figures.add("rounds (SIGKILL + restart)", ROUNDS)
  figures.add("extra SIGKILLs during a restart (recovery)", startKills)
  figures.add("workers", WORKERS)
  figures.add("acknowledged creates checked", acked.creates.size * ROUNDS)
  figures.add("acknowledged inputs", acked.inputs.length)
  figures.add("acknowledged cancels", acked.cancels.size)
  figures.add("transcript entries checked (acknowledged inputs + entries sent to the reader, every round)", entriesChecked)
  figures.add("durable events checked (sent to the reader before a kill, every round)", eventsChecked)
  figures.add("turns cut by a kill and marked interrupted", interrupted)
  figures.add("cursor resumes checked", resumes)
  figures.add("records lost", lost)
  figures.add("restart to ready, median ms", restarts.sort((a, b) => a - b)[Math.floor(restarts.length / 2)]!.toFixed(0))
  figures.total("seconds", Math.round((performance.now() - started) / 1000))
  finish(figures)
}

await main()
