import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Authentication } from "../Authentication.js"
import { InternalError, InvalidInput } from "../Errors.js"
import { AUDIT_PAGE_MAX, AuditAction, AuditPage, ObservationPage } from "../Views.js"
import { Limit } from "./WorkersGroup.js"

export const AuditUrlParams = Schema.Struct({
  limit: Schema.optional(Limit(AUDIT_PAGE_MAX)),
  page_token: Schema.optional(Schema.String),
  runtime_id: Schema.optional(Schema.String),
  worker_id: Schema.optional(Schema.String),
  action: Schema.optional(AuditAction)
})

export const ObservationUrlParams = Schema.Struct({
  limit: Schema.optional(Limit(AUDIT_PAGE_MAX)),
  page_token: Schema.optional(Schema.String),
  runtime_id: Schema.optional(Schema.String),
  worker_id: Schema.optional(Schema.String),
  actor: Schema.optional(Schema.String)
})

/** The audit trail of commands, and of the event streams callers observed, newest first. */
export class AuditGroup extends HttpApiGroup.make("audit")
  .add(
    HttpApiEndpoint.get("page", "/api/audit").setUrlParams(AuditUrlParams).addSuccess(AuditPage)
      .annotate(OpenApi.Summary, "Page through the audit trail")
  )
  .add(
    HttpApiEndpoint.get("streams", "/api/audit/streams").setUrlParams(ObservationUrlParams)
      .addSuccess(ObservationPage)
      .annotate(OpenApi.Summary, "Page through the audited event streams (who watched what, for how long)")
  )
  .addError(InvalidInput)
  .addError(InternalError)
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The audit trail of commands and of observed event streams, newest first.") {}
