import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
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
  .add(HttpApiEndpoint.post("signIn", "/api/session").setPayload(SignIn).addSuccess(HttpApiSchema.NoContent)
    .annotate(OpenApi.Summary, "Sign in: trade the Backend token for the session cookie"))
  .addError(InvalidInput)
  .addError(Unauthorized)
  .annotate(OpenApi.Description, "Sign-in for browsers: a JSON body with the Backend token sets the session cookie.") {}

/** The current session: who is signed in, and sign-out (clears the cookie and ends the session). */
export class AccountGroup extends HttpApiGroup.make("account")
  .add(HttpApiEndpoint.get("session", "/api/session").addSuccess(SessionView)
    .annotate(OpenApi.Summary, "Who is signed in"))
  .add(HttpApiEndpoint.del("signOut", "/api/session").addSuccess(HttpApiSchema.NoContent)
    .annotate(OpenApi.Summary, "Sign out: clear the session cookie"))
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The current session: who is signed in, and sign-out.") {}
