import { useState } from "react"
import { call, describe } from "../api.js"

/** Shown without a session: the token field. Signs in over JSON (`POST /api/session`), never by form post. */
export const SignIn = (props: { readonly failed: boolean; readonly onSignedIn: () => void }) => {
  const [token, setToken] = useState("")
  const [error, setError] = useState<string | undefined>(
    props.failed ? "That sign-in link is not valid for this Backend. Paste the token instead." : undefined
  )
  const [busy, setBusy] = useState(false)
  const submit = async () => {
    if (token.trim().length === 0) return
    setBusy(true)
    const done = await call((c) => c.signin.signIn({ payload: { token: token.trim() } }))
    setBusy(false)
    if (done.ok) props.onSignedIn()
    else setError(done.problem.tag === "Unauthorized" ? "That token is not right. Check it and try again." : describe(done.problem))
  }
  return (
    <main className="signin">
      <form className="card signin-card" onSubmit={(e) => {
        e.preventDefault()
        void submit()
      }} aria-labelledby="signin-title">
        <div className="brand brand-large"><span className="brand-mark" aria-hidden="true">Y</span> Yoi</div>
        <h1 id="signin-title">Sign in</h1>
        <p className="muted">
          Open the link <code>npm start</code> printed, or paste the Backend token. It is kept in
          <code> .yoi/backend-token</code> next to where the Backend runs.
        </p>
        {error !== undefined && <div className="banner banner-error" role="alert">{error}</div>}
        <label>Backend token
          <input type="password" value={token} onChange={(e) => setToken(e.target.value)} autoComplete="current-password"
            autoFocus required />
        </label>
        <button type="submit" className="button button-primary button-wide" disabled={busy || token.trim() === ""}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  )
}
