import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import * as Bind from "../src/Bind.js"
import * as Config from "../src/Config.js"

describe("the bind parser", () => {
  it("reads host:port, [v6]:port and, where allowed, :port", () => {
    assert.deepStrictEqual(Either.getOrThrow(Bind.parse("127.0.0.1:38800")), { host: "127.0.0.1", port: 38800 })
    assert.deepStrictEqual(Either.getOrThrow(Bind.parse(" localhost:0 ")), { host: "localhost", port: 0 })
    assert.deepStrictEqual(Either.getOrThrow(Bind.parse("[::1]:65535")), { host: "::1", port: 65535 })
    assert.deepStrictEqual(Either.getOrThrow(Bind.parse(":9000", { anyHost: "0.0.0.0" })), { host: "0.0.0.0", port: 9000 })
    for (const bad of [":9000", "localhost", "localhost:65536", "a b:1", "[x]:1", "host:-1", "host:1:2", ""]) {
      assert.isTrue(Either.isLeft(Bind.parse(bad)), bad)
    }
  })

  it("keeps yoi-runtime's syntax and wording: a host is required", () => {
    assert.deepStrictEqual(
      Config.parseBind(":9000"),
      Either.left("expected host:port (e.g. 127.0.0.1:38800, [::1]:0), got \":9000\"")
    )
    assert.deepStrictEqual(Either.getOrThrow(Config.parseBind("[::1]:0")), { host: "::1", port: 0 })
  })
})
