import type { Views } from "@yoi/backend-api"
import type { Domain } from "@yoi/worker-runtime/schema"
import { useCallback, useEffect, useRef, useState } from "react"
import { call, describe } from "./api.js"
import * as Events from "./events.js"

// One worker's conversation: the transcript listed page by page, then watched through the tab's event stream.
// Events that arrive while the pages load are held and applied after; a `transcript.appended` is applied only if its
// index is the next one (an earlier index is already listed, a later one means a gap: re-list). So a reload, a
// resumed stream or a re-list never shows an entry twice and never skips one.

export type Entry = Domain.TranscriptEntry
export type Worker = Views.WorkerView

export interface Pending {
  readonly turnId: string | undefined
  readonly text: string
  /** False when the page joined the turn after it started (a reload): the text shown is only its tail. */
  readonly fromStart: boolean
}

export interface TurnSummary {
  readonly outcome: string
  readonly input_tokens: number
  readonly output_tokens: number
}

export interface Chat {
  readonly worker: Worker | undefined
  readonly missing: boolean
  readonly deleted: boolean
  readonly entries: ReadonlyArray<Entry>
  readonly loading: boolean
  readonly loadedCount: number
  readonly pending: Pending | undefined
  readonly turns: ReadonlyMap<string, TurnSummary>
  readonly error: string | undefined
  readonly notice: string | undefined
  readonly send: (text: string) => Promise<boolean>
  readonly cancel: () => Promise<void>
  readonly refresh: () => void
  readonly setWorker: (worker: Worker) => void
  readonly dismiss: () => void
}

const PAGE = "500"
const endKinds = new Set(["turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"])

export const useChat = (runtimeId: string, workerId: string): Chat => {
  const [worker, setWorker] = useState<Worker | undefined>(undefined)
  const [missing, setMissing] = useState(false)
  const [deleted, setDeleted] = useState(false)
  const [entries, setEntries] = useState<ReadonlyArray<Entry>>([])
  const [loading, setLoading] = useState(true)
  const [loadedCount, setLoadedCount] = useState(0)
  const [pending, setPending] = useState<Pending | undefined>(undefined)
  const [turns, setTurns] = useState<ReadonlyMap<string, TurnSummary>>(new Map())
  const [error, setError] = useState<string | undefined>(undefined)
  const [notice, setNotice] = useState<string | undefined>(undefined)
  const entriesRef = useRef<Array<Entry>>([])
  const held = useRef<Array<Events.RuntimeEvent> | undefined>([])
  const generation = useRef(0)
  // Turns whose end event arrived: an input's answer can come after its turn's events (the audit commits first).
  const ended = useRef(new Set<string>())
  const path = { runtime_id: runtimeId, worker_id: workerId }

  const refreshWorker = useCallback(async () => {
    const got = await call((c) => c.workers.get({ path }))
    if (got.ok) setWorker(got.value)
  }, [runtimeId, workerId])

  const apply = useCallback((event: Events.RuntimeEvent) => {
    const data = (event.data ?? {}) as Record<string, any>
    switch (event.kind) {
      case "transcript.appended": {
        const entry = data.entry as Entry | undefined
        if (entry === undefined) return
        const next = entriesRef.current.length
        if (entry.index < next) return
        if (entry.index > next) {
          load()
          return
        }
        entriesRef.current = [...entriesRef.current, entry]
        setEntries(entriesRef.current)
        if (entry.data._tag === "assistant_message") {
          setPending((p) => (p === undefined ? p : { ...p, text: "", fromStart: true }))
        }
        return
      }
      case "turn.started":
        setPending({ turnId: event.turn_id, text: "", fromStart: true })
        setWorker((w) => (w === undefined ? w : { ...w, status: "running" }))
        return
      case "turn.delta": {
        const text = typeof data.text === "string" ? data.text : ""
        setPending((p) =>
          p === undefined || p.turnId !== event.turn_id
            ? { turnId: event.turn_id, text, fromStart: false }
            : { ...p, text: p.text + text })
        return
      }
      case "worker.status":
        setWorker((w) => (w === undefined ? w : { ...w, status: data.status }))
        if (data.status !== "running") setPending(undefined)
        return
      case "worker.deleted":
        setDeleted(true)
        return
      default:
        if (endKinds.has(event.kind)) {
          setPending(undefined)
          if (event.turn_id !== undefined) ended.current.add(event.turn_id)
          if (event.turn_id !== undefined) {
            const usage = (data.usage ?? {}) as Record<string, number>
            const turnId = event.turn_id
            setTurns((t) => new Map(t).set(turnId, {
              outcome: String(data.outcome ?? event.kind.slice("turn.".length)),
              input_tokens: usage.input_tokens ?? 0,
              output_tokens: usage.output_tokens ?? 0
            }))
          }
          void refreshWorker()
        }
    }
  }, [refreshWorker])

  const load = useCallback(() => {
    const mine = ++generation.current
    held.current = []
    setLoading(true)
    void (async () => {
      await Events.ready()
      if (mine !== generation.current) return
      const got = await call((c) => c.workers.get({ path }))
      if (mine !== generation.current) return
      if (!got.ok) {
        if (got.problem.tag === "WorkerNotFound" || got.problem.tag === "RuntimeNotFound") setMissing(true)
        else setError(describe(got.problem))
        setLoading(false)
        return
      }
      setMissing(false)
      setWorker(got.value)
      const all: Array<Entry> = []
      let token: string | undefined
      do {
        const urlParams = { limit: PAGE, ...(token === undefined ? {} : { page_token: token }) }
        const page = await call((c) => c.workers.transcript({ path, urlParams }))
        if (mine !== generation.current) return
        if (!page.ok) {
          setError(describe(page.problem))
          setLoading(false)
          return
        }
        all.push(...page.value.items)
        setLoadedCount(all.length)
        token = page.value.next_page_token
      } while (token !== undefined)
      entriesRef.current = all
      setEntries(all)
      setPending(got.value.status === "running"
        ? { turnId: got.value.current_turn_id, text: "", fromStart: false }
        : undefined)
      const waiting = held.current ?? []
      held.current = undefined
      setLoading(false)
      for (const event of waiting) apply(event)
    })()
  }, [runtimeId, workerId, apply])

  useEffect(() => {
    setWorker(undefined)
    setDeleted(false)
    setMissing(false)
    setError(undefined)
    setTurns(new Map())
    entriesRef.current = []
    setEntries([])
    const unsubscribe = Events.subscribe((event) => {
      if (event.runtime_id !== runtimeId || event.worker_id !== workerId) return
      if (held.current !== undefined) held.current.push(event)
      else apply(event)
    })
    const unRelist = Events.onRelist(load)
    load()
    return () => {
      generation.current++
      unsubscribe()
      unRelist()
    }
  }, [runtimeId, workerId])

  const send = useCallback(async (text: string) => {
    setError(undefined)
    setNotice(undefined)
    const sent = await call((c) => c.workers.input({ path, payload: { text } }))
    if (sent.ok) {
      const accepted = sent.value
      // This console sends no busy policy, so its input always starts a turn (never queued). When the turn's end
      // event came first, the answer's worker and a pending placeholder would both be stale.
      if ("turn_id" in accepted && ended.current.has(accepted.turn_id)) {
        void refreshWorker()
        return true
      }
      setWorker(accepted.worker)
      if ("turn_id" in accepted) setPending((p) => p ?? { turnId: accepted.turn_id, text: "", fromStart: true })
      return true
    }
    if (sent.problem.tag === "WorkerBusy") setNotice(describe(sent.problem))
    else setError(describe(sent.problem))
    return false
  }, [runtimeId, workerId])

  const cancel = useCallback(async () => {
    const done = await call((c) => c.workers.cancel({ path, payload: null, urlParams: {} }))
    if (done.ok) setWorker(done.value.worker)
    else setError(describe(done.problem))
  }, [runtimeId, workerId])

  return {
    worker,
    missing,
    deleted,
    entries,
    loading,
    loadedCount,
    pending,
    turns,
    error,
    notice,
    send,
    cancel,
    refresh: load,
    setWorker,
    dismiss: () => {
      setError(undefined)
      setNotice(undefined)
    }
  }
}
