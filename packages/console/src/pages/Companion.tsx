import { useEffect } from "react"
import { useChat } from "../chat.js"
import { ChatView } from "../ChatView.js"
import { useRuntimes } from "../data.js"
import { workerPath } from "../router.js"
import { Empty, Link, Spinner, StatusBadge } from "../ui.js"

export const COMPANION_ID = "companion"

const CompanionChat = (props: { readonly runtimeId: string }) => {
  const chat = useChat(props.runtimeId, COMPANION_ID)
  const name = chat.worker?.display_name ?? "Companion"
  if (chat.missing) {
    return (
      <Empty>
        <h1>Companion</h1>
        <p>This Backend has no Companion yet (no worker <code>companion</code> on its embedded runtime).</p>
        <p><Link to="/workers">Open the workers</Link> to talk to another worker.</p>
      </Empty>
    )
  }
  return (
    <section className="page page-chat" aria-labelledby="page-title">
      <header className="page-header">
        <div>
          <h1 id="page-title">{name}</h1>
          <p className="muted">Your assistant on this Backend.</p>
        </div>
        <div className="header-side">
          {chat.worker !== undefined && <StatusBadge status={chat.worker.status} testId="worker-status" />}
          <Link to={workerPath(props.runtimeId, COMPANION_ID)} className="link-quiet">Details</Link>
        </div>
      </header>
      <ChatView chat={chat} assistant={name} placeholder={`Message ${name}…`} />
    </section>
  )
}

const REMEMBERED = "yoi.companion.runtime"

const remembered = (): string | undefined => {
  try {
    return localStorage.getItem(REMEMBERED) ?? undefined
  } catch {
    return undefined
  }
}

/** `/`: the Companion, on the Backend's embedded runtime (remembered, so the chat opens before the list arrives). */
export const Companion = () => {
  const { runtimes, error } = useRuntimes(30_000)
  const embedded = runtimes?.find((r) => r.kind === "embedded")?.runtime_id
  const known = runtimes === undefined ? remembered() : embedded
  useEffect(() => {
    try {
      if (embedded !== undefined) localStorage.setItem(REMEMBERED, embedded)
    } catch {
      // storage may be disabled
    }
  }, [embedded])
  if (known === undefined) {
    if (runtimes === undefined) {
      return error === undefined ? <div className="page-loading"><Spinner label="loading" /></div> : <Empty>{error}</Empty>
    }
    return <Empty><h1>Companion</h1><p>This Backend runs no embedded runtime, so it has no Companion.</p></Empty>
  }
  return <CompanionChat runtimeId={known} key={known} />
}
