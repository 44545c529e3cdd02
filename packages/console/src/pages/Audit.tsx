import type { Views } from "@yoi/backend-api"
import { useEffect, useState } from "react"
import { call, describe } from "../api.js"
import { useRuntimes } from "../data.js"
import { Empty, ErrorBanner, formatTime, Spinner } from "../ui.js"

const actions = ["create", "input", "cancel", "stop", "restore", "delete"] as const
const PAGE = 50

/** `/audit`: every command the Backend accepted or refused, newest first. */
export const Audit = () => {
  const { runtimes } = useRuntimes(60_000)
  const [runtimeId, setRuntimeId] = useState("")
  const [workerId, setWorkerId] = useState("")
  const [action, setAction] = useState("")
  const [pages, setPages] = useState<ReadonlyArray<string | undefined>>([undefined])
  const [page, setPage] = useState<Views.AuditPage | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const token = pages[pages.length - 1]

  useEffect(() => {
    let live = true
    setPage(undefined)
    const timer = setTimeout(async () => {
      const got = await call((c) => c.audit.page({
        urlParams: {
          limit: String(PAGE),
          ...(token === undefined ? {} : { page_token: token }),
          ...(runtimeId === "" ? {} : { runtime_id: runtimeId }),
          ...(workerId.trim() === "" ? {} : { worker_id: workerId.trim() }),
          ...(action === "" ? {} : { action: action as Views.AuditAction })
        }
      }))
      if (!live) return
      if (got.ok) {
        setError(undefined)
        setPage(got.value)
      } else setError(describe(got.problem))
    }, 200)
    return () => {
      live = false
      clearTimeout(timer)
    }
  }, [token, runtimeId, workerId, action])

  const restart = () => setPages([undefined])

  return (
    <section className="page" aria-labelledby="page-title">
      <header className="page-header">
        <div>
          <h1 id="page-title">Audit</h1>
          <p className="muted">Every command, who sent it and what came of it. Newest first.</p>
        </div>
      </header>
      <form className="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter the audit trail">
        <label className="inline-label" htmlFor="audit-runtime">Runtime</label>
        <select id="audit-runtime" value={runtimeId} onChange={(e) => {
            setRuntimeId(e.target.value)
            restart()
          }}>
            <option value="">All</option>
          {(runtimes ?? []).map((r) => <option key={r.runtime_id} value={r.runtime_id}>{r.display_name}</option>)}
        </select>
        <label className="inline-label" htmlFor="audit-worker">Worker</label>
        <input id="audit-worker" value={workerId} placeholder="worker id" onChange={(e) => {
            setWorkerId(e.target.value)
          restart()
        }} />
        <label className="inline-label" htmlFor="audit-action">Action</label>
        <select id="audit-action" value={action} onChange={(e) => {
            setAction(e.target.value)
            restart()
          }}>
            <option value="">All</option>
          {actions.map((a) => <option key={a} value={a}>{a}</option>)}
        </select>
      </form>
      <ErrorBanner text={error} />
      {page === undefined ? <Spinner label="loading" /> : page.items.length === 0 ? (
        <Empty>No matching commands.</Empty>
      ) : (
        <div className="table-wrap">
          <table className="table" aria-label="Audit trail">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Action</th>
                <th scope="col">Outcome</th>
                <th scope="col">Runtime</th>
                <th scope="col">Worker</th>
                <th scope="col">Who</th>
                <th scope="col">Request</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((r) => (
                <tr key={r.id} data-audit-action={r.action}>
                  <td className="small">{formatTime(r.at)}</td>
                  <td><span className="chip">{r.action}</span></td>
                  <td>
                    <span className={`outcome outcome-${r.outcome}`}>{r.outcome}</span>
                    {r.error_tag !== null && <div className="muted small">{r.error_tag}</div>}
                  </td>
                  <td>{r.runtime_id}</td>
                  <td className="mono small">{r.worker_id ?? "—"}</td>
                  <td className="small">{r.actor}</td>
                  <td className="mono small muted">{r.request_id.slice(0, 8)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav className="pager" aria-label="Audit pages">
        <button type="button" className="button" disabled={pages.length === 1} onClick={restart}>Newest</button>
        <button type="button" className="button" disabled={pages.length === 1}
          onClick={() => setPages(pages.slice(0, -1))}>← Newer</button>
        <span className="muted small">Page {pages.length}</span>
        <button type="button" className="button" disabled={page?.next_page_token === undefined}
          onClick={() => setPages([...pages, page?.next_page_token])}>Older →</button>
      </nav>
    </section>
  )
}
