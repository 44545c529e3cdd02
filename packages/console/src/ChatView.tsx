import { type KeyboardEvent, type ReactNode, useState } from "react"
import type { Chat, Entry } from "./chat.js"
import { ErrorBanner, formatNumber, Spinner } from "./ui.js"
import { VirtualList } from "./VirtualList.js"

const pretty = (value: unknown) => {
  if (typeof value === "string") return value
  try {
    return JSON.stringify(value, null, 2)
  } catch {
    return String(value)
  }
}

const EntryView = (props: { readonly entry: Entry; readonly assistant: string; readonly footer?: ReactNode }) => {
  const { data } = props.entry
  switch (data._tag) {
    case "user_input":
      return (
        <div className="msg msg-user" data-entry={props.entry.index} data-kind="user_input">
          <div className="msg-who">You</div>
          <div className="msg-text">{data.text}</div>
        </div>
      )
    case "assistant_message":
      return (
        <div className="msg msg-assistant" data-entry={props.entry.index} data-kind="assistant_message">
          <div className="msg-who">{props.assistant}{data.partial === true ? " (cut short)" : ""}</div>
          <div className="msg-text">{data.text}</div>
          {props.footer}
        </div>
      )
    case "tool_call":
      return (
        <details className="tool" data-entry={props.entry.index} data-kind="tool_call">
          <summary>Tool call: <code>{data.name}</code></summary>
          <pre>{pretty(data.arguments)}</pre>
        </details>
      )
    case "tool_result":
      return (
        <details className={data.is_error ? "tool tool-error" : "tool"} data-entry={props.entry.index}
          data-kind="tool_result">
          <summary>{data.is_error ? "Tool failed" : "Tool result"}: <code>{data.name}</code></summary>
          <pre>{pretty(data.result)}</pre>
        </details>
      )
    case "notice":
      return (
        <div className={data.error === undefined ? "notice" : "notice notice-error"} data-entry={props.entry.index}
          data-kind="notice">
          <strong>{data.error === undefined ? "Notice" : "Failure"}:</strong> {data.message}
          {props.footer}
        </div>
      )
  }
}

/** The transcript, the streaming reply and the composer of one worker. */
export const ChatView = (props: { readonly chat: Chat; readonly assistant: string; readonly placeholder: string }) => {
  const { chat } = props
  const [draft, setDraft] = useState("")
  const [sending, setSending] = useState(false)
  const status = chat.worker?.status
  const running = status === "running"
  const stopped = status === "stopped"
  const disabled = chat.loading || running || stopped || sending || chat.deleted || chat.worker === undefined

  // The last entry of each turn carries that turn's outcome and usage, when this page saw the turn end.
  const lastOfTurn = new Map<string, number>()
  chat.entries.forEach((e, i) => {
    if (e.turn_id !== undefined) lastOfTurn.set(e.turn_id, i)
  })
  const count = chat.entries.length + (chat.pending !== undefined ? 1 : 0)

  const submit = async () => {
    const text = draft.trim()
    if (text.length === 0 || disabled) return
    setSending(true)
    const ok = await chat.send(text)
    setSending(false)
    if (ok) setDraft("")
  }

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault()
      void submit()
    }
  }

  const renderRow = (i: number) => {
    if (i >= chat.entries.length) {
      const pending = chat.pending!
      return (
        <div className="msg msg-assistant msg-streaming" data-kind="streaming" aria-live="polite">
          <div className="msg-who">{props.assistant} <Spinner label="replying" /></div>
          <div className="msg-text">
            {pending.text.length === 0 ? <span className="muted">Thinking…</span> : (pending.fromStart ? "" : "…") + pending.text}
          </div>
        </div>
      )
    }
    const entry = chat.entries[i]!
    const summary = entry.turn_id !== undefined && lastOfTurn.get(entry.turn_id) === i
      ? chat.turns.get(entry.turn_id)
      : undefined
    const footer = summary === undefined ? undefined : (
      <div className="turn-summary" data-outcome={summary.outcome}>
        Turn {summary.outcome} · {formatNumber(summary.input_tokens)} tokens in · {formatNumber(summary.output_tokens)} out
      </div>
    )
    return <EntryView entry={entry} assistant={props.assistant} footer={footer} />
  }

  return (
    <div className="chat">
      <ErrorBanner text={chat.error} onDismiss={chat.dismiss} />
      {chat.notice !== undefined && (
        <div className="banner banner-warn" role="status">
          <span>{chat.notice}</span>
          <button type="button" className="link-button" onClick={chat.dismiss}>Dismiss</button>
        </div>
      )}
      {chat.loading && chat.entries.length === 0 ? (
        <div className="chat-loading"><Spinner label="loading" /> Loading the conversation…
          {chat.loadedCount > 0 && ` ${formatNumber(chat.loadedCount)} entries`}</div>
      ) : count === 0 ? (
        <div className="chat-empty">
          <p className="chat-empty-title">No messages yet</p>
          <p className="muted">Write below and press Enter to start.</p>
        </div>
      ) : (
        <VirtualList
          count={count}
          label="Conversation"
          keyOf={(i) => (i < chat.entries.length ? chat.entries[i]!.entry_id : "streaming")}
          render={renderRow}
        />
      )}
      <form className="composer" onSubmit={(e) => {
        e.preventDefault()
        void submit()
      }}>
        <label htmlFor="composer-text" className="sr-only">Message</label>
        <textarea
          id="composer-text"
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={onKeyDown}
          placeholder={stopped ? "This worker is stopped. Restore it to continue." : props.placeholder}
          rows={2}
          disabled={disabled}
          aria-describedby="composer-state"
        />
        <div className="composer-side">
          {running ? (
            <button type="button" className="button button-danger" onClick={() => void chat.cancel()}>Cancel</button>
          ) : (
            <button type="submit" className="button button-primary" disabled={disabled || draft.trim().length === 0}>
              Send
            </button>
          )}
        </div>
        <div id="composer-state" className="composer-state" aria-live="polite">
          {running
            ? `${props.assistant} is replying… You can send again when the reply is done.`
            : stopped
              ? "Stopped."
              : sending
                ? "Sending…"
                : "Enter sends · Shift+Enter for a new line"}
        </div>
      </form>
    </div>
  )
}
