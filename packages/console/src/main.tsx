import { StrictMode, useEffect, useState } from "react"
import { createRoot } from "react-dom/client"
import { call, onSignedOut } from "./api.js"
import * as Events from "./events.js"
import { Audit } from "./pages/Audit.js"
import { Companion } from "./pages/Companion.js"
import { Runtimes } from "./pages/Runtimes.js"
import { SignIn } from "./pages/SignIn.js"
import { WorkerView } from "./pages/WorkerView.js"
import { Workers } from "./pages/Workers.js"
import { navigate, type Route, useRoute } from "./router.js"
import { Empty, Link, Spinner } from "./ui.js"
import "./styles.css"

const healthWords: Record<Events.StreamHealth, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…"
}

const StreamHealth = () => {
  const [health, setHealth] = useState(Events.currentHealth())
  useEffect(() => {
    const off = Events.onHealth(setHealth)
    // The stream may have opened between the first render and this subscription.
    setHealth(Events.currentHealth())
    return off
  }, [])
  return (
    <div className={`stream stream-${health}`} role="status" aria-live="polite" data-testid="stream-health"
      data-health={health}>
      <span className="dot" aria-hidden="true" />
      {healthWords[health]}
    </div>
  )
}

const nav: ReadonlyArray<{ readonly to: string; readonly label: string; readonly pages: ReadonlyArray<Route["page"]> }> = [
  { to: "/", label: "Companion", pages: ["companion"] },
  { to: "/runtimes", label: "Runtimes", pages: ["runtimes"] },
  { to: "/workers", label: "Workers", pages: ["workers", "worker"] },
  { to: "/audit", label: "Audit", pages: ["audit"] }
]

const Page = (props: { readonly route: Route }) => {
  const r = props.route
  switch (r.page) {
    case "companion":
    case "signin":
      return <Companion />
    case "runtimes":
      return <Runtimes />
    case "workers":
      return <Workers runtimeId={r.runtimeId} key={r.runtimeId ?? "*"} />
    case "worker":
      return <WorkerView runtimeId={r.runtimeId} workerId={r.workerId} key={`${r.runtimeId}/${r.workerId}`} />
    case "audit":
      return <Audit />
    case "notFound":
      return <Empty><h1>Not found</h1><p>There is no such page. <Link to="/">Go to the Companion</Link>.</p></Empty>
  }
}

const titles: Record<Route["page"], string> = {
  companion: "Companion",
  signin: "Sign in",
  runtimes: "Runtimes",
  workers: "Workers",
  worker: "Worker",
  audit: "Audit",
  notFound: "Not found"
}

// Started as soon as the script runs, in parallel: the session check, the event stream (closed again if there is
// no session) and the runtimes list the Companion needs. The first screen then waits for one round trip, not three.
const firstSession = call((c) => c.account.session())
Events.start()

const App = () => {
  const route = useRoute()
  const [session, setSession] = useState<"unknown" | "in" | "out">("unknown")
  const [actor, setActor] = useState("")

  const check = async (first = false) => {
    const got = await (first ? firstSession : call((c) => c.account.session()))
    if (got.ok) {
      setActor(got.value.actor)
      setSession("in")
    } else setSession("out")
  }

  useEffect(() => {
    void check(true)
    return onSignedOut(() => setSession("out"))
  }, [])

  useEffect(() => {
    if (session === "in") {
      Events.start()
      if (route.page === "signin") navigate("/")
    } else if (session === "out") Events.stop()
  }, [session])

  useEffect(() => {
    document.title = `${titles[route.page]} · Yoi`
  }, [route.page])

  if (session === "unknown") return <div className="page-loading"><Spinner label="loading" /></div>
  if (session === "out") {
    return <SignIn failed={route.page === "signin" && route.failed} onSignedIn={() => {
      if (route.page === "signin") navigate("/")
      void check()
    }} />
  }

  const signOut = async () => {
    await call((c) => c.account.signOut())
    Events.stop()
    setSession("out")
  }

  return (
    <div className="shell">
      <nav className="sidebar" aria-label="Main">
        <div className="brand"><span className="brand-mark" aria-hidden="true">Y</span> Yoi</div>
        <ul>
          {nav.map((n) => (
            <li key={n.to}>
              <Link to={n.to} className={n.pages.includes(route.page) ? "nav-link active" : "nav-link"}>{n.label}</Link>
            </li>
          ))}
        </ul>
        <div className="sidebar-foot">
          <StreamHealth />
          <div className="muted small">Signed in{actor.startsWith("session:") ? "" : ` as ${actor}`}</div>
          <button type="button" className="button button-quiet button-wide" onClick={() => void signOut()}>Sign out</button>
        </div>
      </nav>
      <main className="main"><Page route={route} /></main>
    </div>
  )
}

createRoot(document.getElementById("root")!).render(<StrictMode><App /></StrictMode>)
