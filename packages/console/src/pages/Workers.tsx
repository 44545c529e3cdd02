import type { Views } from "@yoi/backend-api"
import { useEffect, useMemo, useRef, useState } from "react"
import { call, describe } from "../api.js"
import { engineLabel, offerOf, usePolling, useRuntimes } from "../data.js"
import * as Events from "../events.js"
import { navigate, workerPath } from "../router.js"
import { ConfirmDialog, Empty, ErrorBanner, formatNumber, Link, Modal, Spinner, StatusBadge, timeAgo } from "../ui.js"

type Worker = Views.WorkerView
type Action = "stop" | "restore" | "delete"

const actionWords: Record<Action, { title: string; body: (name: string) => string; action: string }> = {
  stop: {
    title: "Stop this worker?",
    body: (n) => `${n} will stop; a running turn is cancelled. You can restore it later.`,
    action: "Stop"
  },
  restore: { title: "Restore this worker?", body: (n) => `${n} will accept messages again.`, action: "Restore" },
  delete: {
    title: "Delete this worker?",
    body: (n) => `${n} and its whole transcript will be deleted. This cannot be undone.`,
    action: "Delete"
  }
}

/** Runs stop, restore or delete after a confirmation; reports a typed error in words. */
export const useWorkerActions = (onDone: (action: Action, worker: Worker) => void) => {
  const [asking, setAsking] = useState<{ action: Action; worker: Worker } | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const confirm = async () => {
    if (asking === undefined) return
    const { action, worker } = asking
    setAsking(undefined)
    const path = { runtime_id: worker.runtime_id, worker_id: worker.worker_id }
    const done = action === "stop"
      ? await call((c) => c.workers.stop({ path }))
      : action === "restore"
        ? await call((c) => c.workers.restore({ path }))
        : await call((c) => c.workers.delete({ path }))
    if (!done.ok) setError(describe(done.problem))
    else {
      setError(undefined)
      onDone(action, worker)
    }
  }
  const dialog = (
    <ConfirmDialog
      request={asking === undefined ? undefined : {
        title: actionWords[asking.action].title,
        body: actionWords[asking.action].body(asking.worker.display_name),
        action: actionWords[asking.action].action
      }}
      danger={asking?.action !== "restore"}
      onConfirm={() => void confirm()}
      onCancel={() => setAsking(undefined)}
    />
  )
  return { ask: (action: Action, worker: Worker) => setAsking({ action, worker }), error, setError, dialog }
}

export const WorkerActions = (props: { readonly worker: Worker; readonly ask: (a: Action, w: Worker) => void }) => {
  const w = props.worker
  if (w.compatibility === true) return <span className="muted">read-only</span>
  return (
    <span className="actions">
      {w.status === "stopped" ? (
        <button type="button" className="button button-small" onClick={() => props.ask("restore", w)}
          aria-label={`Restore ${w.display_name}`}>Restore</button>
      ) : (
        <button type="button" className="button button-small" onClick={() => props.ask("stop", w)}
          aria-label={`Stop ${w.display_name}`}>Stop</button>
      )}
      <button type="button" className="button button-small button-danger-quiet" disabled={w.status !== "stopped"}
        title={w.status === "stopped" ? undefined : "Stop the worker before deleting it"}
        onClick={() => props.ask("delete", w)} aria-label={`Delete ${w.display_name}`}>Delete</button>
    </span>
  )
}

const CreateDialog = (props: {
  readonly open: boolean
  readonly runtimes: ReadonlyArray<Views.RuntimeView>
  readonly fixedRuntime: string | undefined
  readonly onClose: () => void
  readonly onCreated: (worker: Worker) => void
}) => {
  const usable = props.runtimes.filter((r) => !r.read_only && r.kind !== "legacy")
  const [runtimeId, setRuntimeId] = useState(props.fixedRuntime ?? usable[0]?.runtime_id ?? "")
  const runtime = usable.find((r) => r.runtime_id === runtimeId)
  const offer = offerOf(runtime)
  const [name, setName] = useState("")
  const [engine, setEngine] = useState("")
  const [tools, setTools] = useState<ReadonlyArray<string>>([])
  const [prompt, setPrompt] = useState("")
  const [error, setError] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)

  useEffect(() => {
    if (!props.open) return
    setName("")
    setPrompt("")
    setTools([])
    setError(undefined)
    if (props.fixedRuntime !== undefined) setRuntimeId(props.fixedRuntime)
    else if (runtime === undefined) setRuntimeId(usable[0]?.runtime_id ?? "")
  }, [props.open])

  const choices = offer.profiles.length > 0
    ? offer.profiles.map((p) => ({ value: p.name, label: p.ready ? p.name : `${p.name} (not ready)`, ready: p.ready }))
    : offer.engines.map((e) => ({ value: e, label: e, ready: true }))
  const chosen = choices.some((c) => c.value === engine) ? engine : (offer.defaultProfile ?? choices[0]?.value ?? "")

  const submit = async () => {
    if (name.trim().length === 0 || runtime === undefined) return
    setBusy(true)
    // Newer runtimes name a profile; older ones a provider. Either way only what the runtime offered is sent.
    const engineSpec = chosen === "" ? undefined : offer.profiles.length > 0 ? { profile: chosen } : { provider: chosen }
    const payload = {
      display_name: name.trim(),
      ...(engineSpec === undefined ? {} : { engine: engineSpec as never }),
      ...(tools.length === 0 ? {} : { tools }),
      ...(prompt.trim().length === 0 ? {} : { system_prompt: prompt })
    }
    const created = await call((c) => c.workers.create({ path: { runtime_id: runtime.runtime_id }, payload }))
    setBusy(false)
    if (!created.ok) setError(describe(created.problem))
    else props.onCreated(created.value.worker)
  }

  return (
    <Modal open={props.open} title="New worker" onClose={props.onClose}>
      {usable.length === 0 ? <p>No runtime accepts new workers right now.</p> : (
        <form className="form" onSubmit={(e) => {
          e.preventDefault()
          void submit()
        }}>
          <ErrorBanner text={error} />
          <label>Name<input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200}
            autoFocus placeholder="e.g. Release notes writer" /></label>
          <div className="field">
            <label htmlFor="create-runtime">Runtime</label>
            <select id="create-runtime" value={runtimeId} onChange={(e) => setRuntimeId(e.target.value)}
              disabled={props.fixedRuntime !== undefined}>
              {usable.map((r) => <option key={r.runtime_id} value={r.runtime_id}>{r.display_name} ({r.status})</option>)}
            </select>
          </div>
          {choices.length > 0 && (
            <div className="field">
              <label htmlFor="create-engine">{offer.profiles.length > 0 ? "Profile" : "Engine"}</label>
              <select id="create-engine" value={chosen} onChange={(e) => setEngine(e.target.value)}>
                {choices.map((c) => <option key={c.value} value={c.value} disabled={!c.ready}>{c.label}</option>)}
              </select>
            </div>
          )}
          {offer.tools.length > 0 && (
            <fieldset>
              <legend>Tools</legend>
              {offer.tools.map((t) => (
                <label key={t} className="check">
                  <input type="checkbox" checked={tools.includes(t)}
                    onChange={(e) => setTools(e.target.checked ? [...tools, t] : tools.filter((x) => x !== t))} />
                  <code>{t}</code>
                </label>
              ))}
            </fieldset>
          )}
          <label>Instructions (optional)
            <textarea value={prompt} onChange={(e) => setPrompt(e.target.value)} rows={3}
              placeholder="What this worker is for" />
          </label>
          <div className="modal-actions">
            <button type="button" className="button" onClick={props.onClose}>Cancel</button>
            <button type="submit" className="button button-primary" disabled={busy || name.trim().length === 0}>
              {busy ? "Creating…" : "Create worker"}
            </button>
          </div>
        </form>
      )}
    </Modal>
  )
}

const statusFilters = ["all", "running", "idle", "stopped"] as const

/** `/workers` (every runtime) and `/runtimes/:id` (one runtime). */
export const Workers = (props: { readonly runtimeId: string | undefined }) => {
  const { runtimes } = useRuntimes(10_000)
  const [filter, setFilter] = useState<(typeof statusFilters)[number]>("all")
  const [creating, setCreating] = useState(false)
  const [error, setError] = useState<string | undefined>(undefined)
  const [unavailable, setUnavailable] = useState<ReadonlyArray<string>>([])
  const [list, refresh] = usePolling<ReadonlyArray<Worker>>(async () => {
    if (props.runtimeId === undefined) {
      const got = await call((c) => c.listings.workers())
      if (!got.ok) {
        setError(describe(got.problem))
        return undefined
      }
      setUnavailable(got.value.unavailable.map((u) => `${u.runtime_id}: ${u.message}`))
      setError(undefined)
      return got.value.items
    }
    const items: Array<Worker> = []
    let token: string | undefined
    do {
      const got = await call((c) => c.workers.list({
        path: { runtime_id: props.runtimeId! },
        urlParams: { limit: "200", ...(token === undefined ? {} : { page_token: token }) }
      }))
      if (!got.ok) {
        setError(describe(got.problem))
        return undefined
      }
      items.push(...got.value.items)
      token = got.value.next_page_token
    } while (token !== undefined && items.length < 2_000)
    setError(undefined)
    setUnavailable([])
    return items
  }, 15_000, [props.runtimeId])
  const [live, setLive] = useState<ReadonlyMap<string, string>>(new Map())

  // Status badges change as events arrive; anything else (usage, last turn) is re-read shortly after.
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined)
  useEffect(() => {
    setLive(new Map())
    return Events.subscribe((event) => {
      if (props.runtimeId !== undefined && event.runtime_id !== props.runtimeId) return
      if (event.worker_id === undefined) return
      if (event.kind === "worker.status") {
        const status = (event.data as { status?: string }).status
        if (status !== undefined) setLive((m) => new Map(m).set(`${event.runtime_id}/${event.worker_id}`, status))
      }
      if (event.kind === "turn.delta" || event.kind === "transcript.appended") return
      if (timer.current === undefined) {
        timer.current = setTimeout(() => {
          timer.current = undefined
          void refresh().then(() => setLive(new Map()))
        }, 400)
      }
    })
  }, [props.runtimeId])

  const { ask, error: actionError, setError: setActionError, dialog } = useWorkerActions(() => void refresh())
  const runtime = runtimes?.find((r) => r.runtime_id === props.runtimeId)
  const workers = useMemo(() => (list ?? []).map((w) => {
    const status = live.get(`${w.runtime_id}/${w.worker_id}`)
    return status === undefined ? w : { ...w, status: status as Worker["status"] }
  }), [list, live])
  const shown = filter === "all" ? workers : workers.filter((w) => w.status === filter)
  const title = props.runtimeId === undefined ? "Workers" : `Workers on ${runtime?.display_name ?? props.runtimeId}`

  return (
    <section className="page" aria-labelledby="page-title">
      <header className="page-header">
        <div>
          <h1 id="page-title">{title}</h1>
          <p className="muted">
            {props.runtimeId === undefined ? "Every worker on every runtime." : <Link to="/workers">All runtimes</Link>}
          </p>
        </div>
        <div className="header-side">
          <label className="inline-label" htmlFor="status-filter">Status</label>
          <select id="status-filter" value={filter} onChange={(e) => setFilter(e.target.value as typeof filter)}>
            {statusFilters.map((s) => <option key={s} value={s}>{s === "all" ? "All" : s[0]!.toUpperCase() + s.slice(1)}</option>)}
          </select>
          <button type="button" className="button button-primary" onClick={() => setCreating(true)}
            disabled={runtimes === undefined}>New worker</button>
        </div>
      </header>
      <ErrorBanner text={error} />
      <ErrorBanner text={actionError} onDismiss={() => setActionError(undefined)} />
      {unavailable.length > 0 && (
        <div className="banner banner-warn" role="status">Not reachable now: {unavailable.join("; ")}</div>
      )}
      {list === undefined ? <Spinner label="loading" /> : shown.length === 0 ? (
        <Empty>{workers.length === 0 ? "No workers yet. Create one to get started." : `No ${filter} workers.`}</Empty>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                {props.runtimeId === undefined && <th scope="col">Runtime</th>}
                <th scope="col">Status</th>
                <th scope="col">Profile</th>
                <th scope="col">Usage</th>
                <th scope="col">Last turn</th>
                <th scope="col"><span className="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {shown.map((w) => (
                <tr key={`${w.runtime_id}/${w.worker_id}`} data-worker={w.worker_id}>
                  <td>
                    <Link to={workerPath(w.runtime_id, w.worker_id)} className="strong">{w.display_name}</Link>
                    <div className="muted mono small">{w.worker_id}</div>
                  </td>
                  {props.runtimeId === undefined && <td>{w.runtime_id}</td>}
                  <td><StatusBadge status={w.status} testId={`status-${w.worker_id}`} /></td>
                  <td>{engineLabel(w.engine)}</td>
                  <td className="small">
                    {formatNumber(w.usage.input_tokens + w.usage.output_tokens)} tokens
                    <div className="muted">{formatNumber(w.usage.turns)} {w.usage.turns === 1 ? "turn" : "turns"}</div>
                  </td>
                  <td className="small">
                    {w.last_turn === undefined ? <span className="muted">none</span> : (
                      <>
                        <span className={`outcome outcome-${w.last_turn.outcome}`}>{w.last_turn.outcome}</span>
                        <div className="muted">{timeAgo(w.last_turn.ended_at)}</div>
                      </>
                    )}
                  </td>
                  <td><WorkerActions worker={w} ask={ask} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {dialog}
      {runtimes !== undefined && (
        <CreateDialog open={creating} runtimes={runtimes} fixedRuntime={props.runtimeId}
          onClose={() => setCreating(false)}
          onCreated={(w) => {
            setCreating(false)
            navigate(workerPath(w.runtime_id, w.worker_id))
          }} />
      )}
    </section>
  )
}
