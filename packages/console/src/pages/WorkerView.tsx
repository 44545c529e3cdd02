import { useChat } from "../chat.js"
import { ChatView } from "../ChatView.js"
import { engineLabel } from "../data.js"
import { navigate } from "../router.js"
import { Empty, ErrorBanner, formatTokens, Link, StatusBadge } from "../ui.js"
import { useWorkerActions, WorkerActions } from "./Workers.js"

/** `/runtimes/:runtime/workers/:worker`: one worker's live conversation. */
export const WorkerView = (props: { readonly runtimeId: string; readonly workerId: string }) => {
  const chat = useChat(props.runtimeId, props.workerId)
  const back = `/runtimes/${encodeURIComponent(props.runtimeId)}`
  const { ask, error, setError, dialog } = useWorkerActions((action) => {
    if (action === "delete") navigate(back)
    else chat.refresh()
  })
  if (chat.missing || chat.deleted) {
    return (
      <Empty>
        <h1>Worker not found</h1>
        <p>{chat.deleted ? "This worker was deleted." : `No worker ${props.workerId} on ${props.runtimeId}.`}</p>
        <Link to={back}>Back to the workers</Link>
      </Empty>
    )
  }
  const w = chat.worker
  const name = w?.display_name ?? props.workerId
  return (
    <section className="page page-chat" aria-labelledby="page-title">
      <header className="page-header">
        <div>
          <p className="crumbs"><Link to={back}>{props.runtimeId}</Link> / <span className="mono">{props.workerId}</span></p>
          <h1 id="page-title">{name}</h1>
          {w !== undefined && (
            <p className="muted small">
              {engineLabel(w.engine)} · {formatTokens(w.usage)} · {w.usage.turns} {w.usage.turns === 1 ? "turn" : "turns"} · {w.transcript_length} entries
            </p>
          )}
        </div>
        <div className="header-side">
          {w !== undefined && <StatusBadge status={w.status} testId="worker-status" />}
          {w !== undefined && <WorkerActions worker={w} ask={ask} />}
        </div>
      </header>
      <ErrorBanner text={error} onDismiss={() => setError(undefined)} />
      <ChatView chat={chat} assistant={name} placeholder={`Message ${name}…`} />
      {dialog}
    </section>
  )
}
