import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Context } from "effect"
import { Unauthorized } from "./Errors.js"

/** Who is calling and under which request id; every command's audit record carries both. */
export interface CallerShape {
  /** `token` for a script with the bearer token, `session:<label>` for a browser session. */
  readonly actor: string
  readonly requestId: string
}

export class Caller extends Context.Tag("@yoi/workspace-server/Caller")<Caller, CallerShape>() {}

export const SESSION_COOKIE = "yoi_session"
export const REQUEST_ID_HEADER = "x-request-id"

export const sessionCookie = HttpApiSecurity.apiKey({ in: "cookie", key: SESSION_COOKIE })

/** Every `/api` route: `Authorization: Bearer <backend token>` for scripts, the session cookie for browsers. */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("@yoi/workspace-server/Authentication", {
  failure: Unauthorized,
  provides: Caller,
  security: { bearer: HttpApiSecurity.bearer, cookie: sessionCookie }
}) {}
