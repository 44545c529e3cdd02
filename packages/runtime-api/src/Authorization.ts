import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Unauthorized } from "./Errors.js"

/** Bearer-token authentication for every route except `/healthz` and `/readyz`. */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("@yoi/runtime-api/Authorization", {
  failure: Unauthorized,
  security: { bearer: HttpApiSecurity.bearer }
}) {}
