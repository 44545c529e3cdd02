import { type MouseEvent, type ReactNode, useEffect, useRef } from "react"
import { navigate } from "./router.js"

export const Link = (props: { readonly to: string; readonly children: ReactNode; readonly className?: string }) => (
  <a
    href={props.to}
    className={props.className}
    onClick={(e: MouseEvent) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return
      e.preventDefault()
      navigate(props.to)
    }}
  >
    {props.children}
  </a>
)

const statusWords: Record<string, string> = {
  idle: "Idle",
  running: "Running",
  stopped: "Stopped",
  online: "Online",
  degraded: "Degraded",
  offline: "Offline"
}

/** A worker's or a runtime's status: colour and a word (never colour alone). */
export const StatusBadge = (props: { readonly status: string; readonly testId?: string }) => (
  <span className={`badge badge-${props.status}`} data-testid={props.testId} data-status={props.status}>
    <span className="dot" aria-hidden="true" />
    {statusWords[props.status] ?? props.status}
  </span>
)

const number = new Intl.NumberFormat("en")
export const formatNumber = (n: number) => number.format(n)

export const formatTokens = (usage: { readonly input_tokens: number; readonly output_tokens: number }) =>
  `${formatNumber(usage.input_tokens)} in · ${formatNumber(usage.output_tokens)} out`

export const timeAgo = (iso: string | undefined): string => {
  if (iso === undefined) return "never"
  const ms = Date.now() - Date.parse(iso)
  if (!Number.isFinite(ms)) return iso
  const s = Math.round(ms / 1000)
  if (s < 5) return "just now"
  if (s < 60) return `${s} s ago`
  const m = Math.round(s / 60)
  if (m < 60) return `${m} min ago`
  const h = Math.round(m / 60)
  if (h < 48) return `${h} h ago`
  return new Date(iso).toLocaleDateString()
}

export const formatTime = (iso: string) => {
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString()
}

/** A problem shown in words, dismissable. */
export const ErrorBanner = (props: { readonly text: string | undefined; readonly onDismiss?: () => void }) =>
  props.text === undefined ? null : (
    <div className="banner banner-error" role="alert">
      <span>{props.text}</span>
      {props.onDismiss !== undefined && (
        <button type="button" className="link-button" onClick={props.onDismiss}>Dismiss</button>
      )}
    </div>
  )

/** A modal dialog (`<dialog>`), opened while `open` is true. */
export const Modal = (props: {
  readonly open: boolean
  readonly title: string
  readonly onClose: () => void
  readonly children: ReactNode
}) => {
  const ref = useRef<HTMLDialogElement>(null)
  useEffect(() => {
    const dialog = ref.current
    if (dialog === null) return
    if (props.open && !dialog.open) dialog.showModal()
    if (!props.open && dialog.open) dialog.close()
  }, [props.open])
  return (
    <dialog ref={ref} className="modal" aria-labelledby="modal-title" onClose={props.onClose}>
      {props.open && (
        <>
          <h2 id="modal-title">{props.title}</h2>
          {props.children}
        </>
      )}
    </dialog>
  )
}

/** Asks before a destructive action. */
export const ConfirmDialog = (props: {
  readonly request: { readonly title: string; readonly body: string; readonly action: string } | undefined
  readonly danger?: boolean
  readonly onConfirm: () => void
  readonly onCancel: () => void
}) => (
  <Modal open={props.request !== undefined} title={props.request?.title ?? ""} onClose={props.onCancel}>
    <p>{props.request?.body}</p>
    <div className="modal-actions">
      <button type="button" className="button" onClick={props.onCancel}>Cancel</button>
      <button type="button" className={props.danger === true ? "button button-danger" : "button button-primary"}
        onClick={props.onConfirm}>
        {props.request?.action}
      </button>
    </div>
  </Modal>
)

export const Empty = (props: { readonly children: ReactNode }) => <div className="empty">{props.children}</div>

export const Spinner = (props: { readonly label: string }) => (
  <span className="spinner" role="status" aria-label={props.label} />
)
