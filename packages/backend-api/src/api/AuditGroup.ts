import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../Authentication.js"
import { InternalError, InvalidInput } from "../Errors.js"
import { AUDIT_PAGE_MAX, AuditAction, AuditPage } from "../Views.js"
import { Limit } from "./WorkersGroup.js"

export const AuditUrlParams = Schema.Struct({
  limit: Schema.optional(Limit(AUDIT_PAGE_MAX)),
  page_token: Schema.optional(Schema.String),
  runtime_id: Schema.optional(Schema.String),
  worker_id: Schema.optional(Schema.String),
  action: Schema.optional(AuditAction)
})

/** The audit trail of commands, newest first. */
export class AuditGroup extends HttpApiGroup.make("audit")
  .add(
    HttpApiEndpoint.get("page", "/api/audit").setUrlParams(AuditUrlParams).addSuccess(AuditPage)
      .annotate(OpenApi.Summary, "Page through the audit trail")
  )
  .addError(InvalidInput)
  .addError(InternalError)
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The audit trail of commands, newest first.") {}
