import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Authentication } from "../Authentication.js"
import { AllWorkers, HostList } from "../Views.js"

/** The older listings, kept on the new model: all workers of all runtimes (legacy pods included), and hosts. */
export class ListingsGroup extends HttpApiGroup.make("listings")
  .add(
    HttpApiEndpoint.get("workers", "/api/workers").addSuccess(AllWorkers)
      .annotate(OpenApi.Summary, "List the workers of every runtime")
  )
  .add(HttpApiEndpoint.get("hosts", "/api/hosts").addSuccess(HostList).annotate(OpenApi.Summary, "List the hosts"))
  .middleware(Authentication)
  .annotate(OpenApi.Description, "The older listings, kept on the new model.") {}
