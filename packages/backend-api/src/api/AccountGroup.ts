import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../Authentication.js"
import { InvalidInput, Unauthorized } from "../Errors.js"

/** What the console sends to sign in with the Backend token (JSON only: no HTML form can post it cross-site). */
export const SignIn = Schema.Struct({ token: Schema.String.pipe(Schema.maxLength(1024)) })
export type SignIn = typeof SignIn.Type

/** The signed-in caller, as the console shows it. Never the token. */
export const SessionView = Schema.Struct({
  actor: Schema.String,
  signed_in: Schema.Literal(true)
})
export type SessionView = typeof SessionView.Type

/** Sign-in with the token: sets the session cookie. No authentication needed, same origin only. */
export class SignInGroup extends HttpApiGroup.make("signin")
  .add(HttpApiEndpoint.post("signIn", "/api/session").setPayload(SignIn).addSuccess(HttpApiSchema.NoContent))
  .addError(InvalidInput)
  .addError(Unauthorized) {}

/** The current session: who is signed in, and sign-out (clears the cookie and ends the session). */
export class AccountGroup extends HttpApiGroup.make("account")
  .add(HttpApiEndpoint.get("session", "/api/session").addSuccess(SessionView))
  .add(HttpApiEndpoint.del("signOut", "/api/session").addSuccess(HttpApiSchema.NoContent))
  .middleware(Authentication) {}
