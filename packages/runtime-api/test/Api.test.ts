import { OpenApi } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { RuntimeApi } from "../src/index.js"

const spec = OpenApi.fromApi(RuntimeApi)
const operation = (method: "get" | "post" | "delete", path: string) => {
  const op = (spec.paths as Record<string, Record<string, any>>)[path]?.[method]
  assert.isDefined(op, `${method.toUpperCase()} ${path} is in the contract`)
  return op as { readonly responses: Record<string, unknown>; readonly security?: ReadonlyArray<unknown> }
}
const statuses = (method: "get" | "post" | "delete", path: string) => Object.keys(operation(method, path).responses)

describe("RuntimeApi", () => {
  it("declares every route of the runtime contract", () => {
    const routes: ReadonlyArray<readonly ["get" | "post" | "delete", string]> = [
      ["get", "/healthz"],
      ["get", "/readyz"],
      ["get", "/v1/runtime"],
      ["get", "/v1/runtime/usage"],
      ["get", "/v1/runtime/diagnostics"],
      ["get", "/v1/workers"],
      ["post", "/v1/workers"],
      ["get", "/v1/workers/{worker_id}"],
      ["post", "/v1/workers/{worker_id}/input"],
      ["post", "/v1/workers/{worker_id}/cancel"],
      ["post", "/v1/workers/{worker_id}/stop"],
      ["post", "/v1/workers/{worker_id}/restore"],
      ["delete", "/v1/workers/{worker_id}"],
      ["get", "/v1/workers/{worker_id}/transcript"],
      ["get", "/v1/events"],
      ["get", "/v1/workers/{worker_id}/events"]
    ]
    for (const [method, path] of routes) operation(method, path)
  })

  it("declares the statuses of ARCHITECTURE.md §4", () => {
    assert.includeMembers(statuses("post", "/v1/workers"), ["201", "200", "400", "401", "409", "413", "500", "503"])
    assert.includeMembers(statuses("post", "/v1/workers/{worker_id}/input"), ["202", "400", "401", "404", "409", "503"])
    assert.includeMembers(statuses("get", "/v1/workers/{worker_id}"), ["200", "400", "401", "404"])
    assert.includeMembers(statuses("delete", "/v1/workers/{worker_id}"), ["200", "404", "409"])
    assert.includeMembers(statuses("get", "/v1/events"), ["400", "401", "410", "503"])
    assert.includeMembers(statuses("get", "/readyz"), ["200", "503"])
    assert.notInclude(statuses("post", "/v1/workers/{worker_id}/input"), "201")
  })

  it("requires the bearer token everywhere except the probes", () => {
    assert.deepStrictEqual(operation("get", "/healthz").security ?? [], [])
    assert.deepStrictEqual(operation("get", "/readyz").security ?? [], [])
    for (const [method, path] of [["get", "/v1/runtime"], ["post", "/v1/workers"], ["get", "/v1/events"]] as const) {
      assert.isAbove(operation(method, path).security?.length ?? 0, 0, `${path} needs the token`)
    }
    assert.deepStrictEqual(Object.keys(spec.components.securitySchemes ?? {}), ["bearer"])
  })
})
