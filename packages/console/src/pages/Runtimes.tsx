import type { Views } from "@yoi/backend-api"
import { offerOf, useRuntimes } from "../data.js"
import { Empty, ErrorBanner, formatNumber, formatTokens, Link, Spinner, StatusBadge, timeAgo } from "../ui.js"

const kindWords = (r: Views.RuntimeView) => {
  const kind = r.kind === "remote" ? "Remote" : r.kind === "embedded" ? "Embedded" : "Legacy"
  return r.read_only ? `${kind} · read-only` : kind
}

const RuntimeCard = (props: { readonly runtime: Views.RuntimeView }) => {
  const r = props.runtime
  const offer = offerOf(r)
  const counts = r.counts ?? r.summary?.counts
  const usage = r.summary?.usage
  return (
    <article className="card runtime-card" data-runtime={r.runtime_id} aria-labelledby={`rt-${r.runtime_id}`}>
      <header className="card-header">
        <div>
          <h2 id={`rt-${r.runtime_id}`}>{r.display_name}</h2>
          <p className="muted mono">{r.runtime_id}</p>
        </div>
        <StatusBadge status={r.status} testId={`runtime-status-${r.runtime_id}`} />
      </header>
      <dl className="facts">
        <div><dt>Kind</dt><dd>{kindWords(r)}</dd></div>
        <div><dt>Last seen</dt><dd>{r.kind === "embedded" ? "in this process" : timeAgo(r.last_seen_at)}</dd></div>
        {r.status_reason !== undefined && <div className="wide"><dt>Why</dt><dd>{r.status_reason}</dd></div>}
        <div className="wide">
          <dt>Workers</dt>
          <dd>
            {counts === undefined ? "unknown" : (
              <span className="counts">
                <span><b>{formatNumber(counts.total)}</b> total</span>
                <span><b>{formatNumber(counts.running)}</b> running</span>
                <span><b>{formatNumber(counts.idle)}</b> idle</span>
                <span><b>{formatNumber(counts.stopped)}</b> stopped</span>
              </span>
            )}
          </dd>
        </div>
        <div className="wide">
          <dt>Usage</dt>
          <dd>{usage === undefined ? "unknown" : `${formatTokens(usage)} · ${formatNumber(usage.turns)} ${usage.turns === 1 ? "turn" : "turns"}`}</dd>
        </div>
        <div className="wide">
          <dt>{offer.profiles.length > 0 ? "Profiles" : "Engines"}</dt>
          <dd className="chips">
            {offer.profiles.length > 0
              ? offer.profiles.map((p) => (
                <span key={p.name} className={p.ready ? "chip" : "chip chip-off"} title={p.label}>
                  {p.name}{p.ready ? "" : " (not ready)"}
                </span>
              ))
              : offer.engines.length > 0 ? offer.engines.map((e) => <span key={e} className="chip">{e}</span>) : "—"}
          </dd>
        </div>
      </dl>
      <footer className="card-footer">
        <Link to={`/runtimes/${encodeURIComponent(r.runtime_id)}`}>Workers on {r.display_name} →</Link>
      </footer>
    </article>
  )
}

export const Runtimes = () => {
  const { runtimes, error } = useRuntimes()
  return (
    <section className="page" aria-labelledby="page-title">
      <header className="page-header">
        <div>
          <h1 id="page-title">Runtimes</h1>
          <p className="muted">Where workers run. Health is checked continuously.</p>
        </div>
      </header>
      <ErrorBanner text={error} />
      {runtimes === undefined ? <Spinner label="loading" /> : runtimes.length === 0 ? (
        <Empty>No runtime is registered.</Empty>
      ) : (
        <div className="grid">{runtimes.map((r) => <RuntimeCard key={r.runtime_id} runtime={r} />)}</div>
      )}
    </section>
  )
}
