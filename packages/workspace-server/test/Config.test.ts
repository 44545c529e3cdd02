import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Ids } from "@yoi/worker-runtime"
import { ConfigProvider, Effect, Either, LogLevel, Option, Redacted } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Cli from "../src/Cli.js"
import { load, resolve, resolveToken } from "../src/Config.js"
import { tempDir } from "./support.js"

const messageOf = (raw: unknown) =>
  Either.match(resolve(raw, "/data"), { onLeft: (e) => e.message, onRight: () => "accepted" })

const example = {
  embedded: { runtime_id: "local", store: "sqlite:.yoi/local.db" },
  remotes: [{
    runtime_id: "gpu-box",
    display_name: "GPU box",
    endpoint: "http://10.0.0.5:38800",
    token: { env: "GPU_BOX_TOKEN" }
  }],
  legacy_pods: { runtime_id: "legacy", dir: "/home/me/.yoi/pods" }
}

describe("config file", () => {
  it("accepts the documented shape and fills defaults", () => {
    const resolved = Either.getOrThrow(resolve(example, "/data"))
    assert.strictEqual(resolved.embedded?.store, "sqlite:.yoi/local.db")
    assert.strictEqual(resolved.remotes[0]!.endpoint, "http://10.0.0.5:38800")
    assert.strictEqual(resolved.legacyPods?.dir, "/home/me/.yoi/pods")

    const byDefault = Either.getOrThrow(resolve({}, "/data"))
    assert.deepStrictEqual(byDefault.embedded, { runtime_id: Ids.RuntimeId.make("local"), store: "sqlite:/data/local.db" })
    assert.deepStrictEqual(byDefault.remotes, [])
    const none = Either.getOrThrow(resolve({ embedded: null, remotes: [] }, "/data"))
    assert.isUndefined(none.embedded)
    const noStore = Either.getOrThrow(resolve({ embedded: { runtime_id: "box" } }, "/data"))
    assert.strictEqual(noStore.embedded?.store, "sqlite:/data/local.db")
    const token = Either.getOrThrow(resolve({ remotes: [{ ...example.remotes[0], token: { file: "/run/t" } }] }, "/d"))
    assert.deepStrictEqual(token.remotes[0]!.token, { file: "/run/t" })
  })

  it("fails with a message naming the field", () => {
    assert.match(messageOf({ ...example, remotes: [{ ...example.remotes[0], endpoint: "10.0.0.5:38800" }] }),
      /^invalid config: remotes\[0\]\.endpoint: endpoint must be an http/)
    assert.match(messageOf({ ...example, embedded: { runtime_id: "Local!" } }), /embedded\.runtime_id: must be 1-63/)
    assert.match(messageOf({ ...example, embedded: { runtime_id: "local", store: "postgres://x" } }), /embedded\.store/)
    assert.match(messageOf({ ...example, remotes: [{ ...example.remotes[0], token: "plain-secret" }] }),
      /remotes\[0\]\.token/)
    assert.match(messageOf({ ...example, remotes: [{ ...example.remotes[0], token: { env: "1BAD" } }] }),
      /remotes\[0\]\.token/)
    assert.match(
      messageOf({ ...example, remotes: [{ ...example.remotes[0], timeout_ms: 5 }] }),
      /remotes\[0\]\.timeout_ms/
    )
    assert.match(messageOf({ ...example, remote: [] }), /remote: is unexpected/)
    assert.match(messageOf({ ...example, legacy_pods: { runtime_id: "legacy" } }), /legacy_pods\.dir: is missing/)
    assert.match(messageOf([]), /^invalid config: /)
    assert.notStrictEqual(messageOf("{}"), "accepted")
  })

  it("takes one endpoint or several hosts of one runtime, never both or neither", () => {
    const { endpoint: _, ...bare } = example.remotes[0]!
    const several = Either.getOrThrow(resolve({
      remotes: [{ ...bare, endpoints: ["http://10.0.0.5:38800", "https://10.0.0.6:38800/rt"] }]
    }, "/d"))
    assert.deepStrictEqual(several.remotes[0]!.endpoints, ["http://10.0.0.5:38800", "https://10.0.0.6:38800/rt"])
    assert.strictEqual(
      messageOf({ remotes: [bare] }),
      "invalid config: remotes[0]: give either endpoint or endpoints (a list of the runtime's hosts)"
    )
    assert.match(
      messageOf({ remotes: [{ ...example.remotes[0], endpoints: ["http://10.0.0.6:1"] }] }),
      /remotes\[0\]: give either endpoint or endpoints/
    )
    assert.match(messageOf({ remotes: [{ ...bare, endpoints: [] }] }), /remotes\[0\]\.endpoints/)
    assert.match(messageOf({ remotes: [{ ...bare, endpoints: ["ftp://x"] }] }), /remotes\[0\]\.endpoints\[0\]/)
  })

  it("names the Backend database by URL or by reference, and never echoes a refused value", () => {
    const url = Either.getOrThrow(resolve({ database: "postgres://yoi@db:5432/yoi" }, "/d"))
    assert.strictEqual(url.database, "postgres://yoi@db:5432/yoi")
    const ref = Either.getOrThrow(resolve({ database: { env: "YOI_DB_URL" } }, "/d"))
    assert.deepStrictEqual(ref.database, { env: "YOI_DB_URL" })
    assert.isUndefined(Either.getOrThrow(resolve({}, "/d")).database)
    const refused = messageOf({ database: "mysql://yoi:hunter2-secret@db/yoi" })
    assert.match(refused, /^invalid config: database/)
    assert.notInclude(refused, "hunter2-secret")
  })

  it("refuses duplicate runtime ids, naming both places", () => {
    assert.strictEqual(
      messageOf({ ...example, remotes: [example.remotes[0], { ...example.remotes[0] }] }),
      "invalid config: remotes[1].runtime_id: runtime_id \"gpu-box\" is already used by remotes[0].runtime_id"
    )
    assert.strictEqual(
      messageOf({ ...example, legacy_pods: { runtime_id: "local", dir: "/x" } }),
      "invalid config: legacy_pods.runtime_id: runtime_id \"local\" is already used by embedded.runtime_id"
    )
    assert.match(messageOf({ remotes: [{ ...example.remotes[0], runtime_id: "local" }] }), /already used by embedded/)
  })

  it.scoped("reads a file: missing, not JSON, invalid, valid", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const write = (name: string, text: string) => {
        NodeFs.writeFileSync(NodePath.join(dir, name), text)
        return NodePath.join(dir, name)
      }
      const run = (file: string | undefined) =>
        load(file, dir).pipe(Effect.either, Effect.provide(NodeContext.layer))
      const missing = yield* run(NodePath.join(dir, "nope.json"))
      assert.isTrue(Either.isLeft(missing) && missing.left.message.startsWith("cannot read the config file"))
      const notJson = yield* run(write("bad.json", "{ embedded: "))
      assert.isTrue(Either.isLeft(notJson) && /is not valid JSON/.test(notJson.left.message))
      const invalid = yield* run(write("invalid.json", JSON.stringify({ remotes: [{ runtime_id: "x" }] })))
      assert.isTrue(Either.isLeft(invalid) && /remotes\[0\]\.token: is missing/.test(invalid.left.message))
      const valid = yield* run(write("good.json", JSON.stringify(example)))
      assert.isTrue(Either.isRight(valid) && valid.right.remotes.length === 1)
      const none = yield* run(undefined)
      assert.isTrue(Either.isRight(none) && none.right.embedded?.store === `sqlite:${dir}/local.db`)
    }))

  it.scoped("resolves token references from the environment or a file, failing at start when absent", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const file = NodePath.join(dir, "token")
      NodeFs.writeFileSync(file, "  file-secret\n")
      NodeFs.writeFileSync(NodePath.join(dir, "empty"), "\n")
      const withEnv = (env: Record<string, string>) =>
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
      const fromEnv = yield* resolveToken({ env: "T" }, "remotes[0].token").pipe(
        withEnv({ T: "env-secret" }),
        Effect.provide(NodeContext.layer)
      )
      assert.strictEqual(Redacted.value(fromEnv), "env-secret")
      const fromFile = yield* resolveToken({ file }, "remotes[0].token").pipe(Effect.provide(NodeContext.layer))
      assert.strictEqual(Redacted.value(fromFile), "file-secret")
      const unset = yield* resolveToken({ env: "T" }, "remotes[2].token").pipe(
        withEnv({}),
        Effect.flip,
        Effect.provide(NodeContext.layer)
      )
      assert.strictEqual(unset.message, "invalid config: remotes[2].token.env: environment variable T is not set")
      const empty = yield* resolveToken({ file: NodePath.join(dir, "empty") }, "remotes[0].token").pipe(
        Effect.flip,
        Effect.provide(NodeContext.layer)
      )
      assert.strictEqual(empty.message, "invalid config: remotes[0].token.file: the token file is empty")
    }))
})

describe("command line", () => {
  const parse = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) =>
    Cli.parse(argv).pipe(
      Effect.provide(NodeContext.layer),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
    )

  it.effect("reads flags, then the environment, then the defaults", () =>
    Effect.gen(function*() {
      const flags = yield* parse(["--bind", "0.0.0.0:0", "--config=/etc/yoi.json", "--data-dir", "d"], {
        YOI_BACKEND_BIND: "127.0.0.1:1",
        YOI_BACKEND_DATA_DIR: "env-dir"
      })
      assert.deepStrictEqual(flags._tag === "Run" && [flags.value.bind, flags.value.config, flags.value.dataDir], [
        { host: "0.0.0.0", port: 0 },
        Option.some("/etc/yoi.json"),
        "d"
      ])
      const env = yield* parse([], { YOI_BACKEND_BIND: ":9000", YOI_LOG_LEVEL: "warn" })
      assert.deepStrictEqual(env._tag === "Run" && [env.value.bind, env.value.dataDir, env.value.logLevel], [
        { host: "0.0.0.0", port: 9000 },
        ".yoi",
        LogLevel.Warning
      ])
      const defaults = yield* parse([])
      assert.deepStrictEqual(defaults._tag === "Run" && [defaults.value.bind, defaults.value.config], [
        { host: "127.0.0.1", port: 8787 },
        Option.none()
      ])
      const db = yield* parse(["--database", "postgres://yoi:pw@db/yoi"])
      assert.strictEqual(
        db._tag === "Run" && Option.isSome(db.value.database) && Redacted.value(db.value.database.value),
        "postgres://yoi:pw@db/yoi"
      )
      const dbEnv = yield* parse([], { YOI_BACKEND_DATABASE: "postgres://yoi@db/env" })
      assert.strictEqual(
        dbEnv._tag === "Run" && Option.isSome(dbEnv.value.database) && Redacted.value(dbEnv.value.database.value),
        "postgres://yoi@db/env"
      )
      assert.isTrue(defaults._tag === "Run" && Option.isNone(defaults.value.database))
      const builtIn = yield* parse(["--log-level", "debug"])
      assert.strictEqual(builtIn._tag === "Run" && builtIn.value.logLevel, LogLevel.Debug)
    }))

  it.effect("prints the usage for --help, and refuses unknown flags and bad values in one line", () =>
    Effect.gen(function*() {
      const help = yield* parse(["--help"])
      assert.strictEqual(help._tag === "Print" && help.text, Cli.USAGE)
      const unknown = yield* Effect.flip(parse(["--port", "1"]))
      assert.match(unknown.message, /^Unknown option '--port'\nusage: yoi-backend/)
      const missing = yield* Effect.flip(parse(["--bind"]))
      assert.match(missing.message, /^--bind needs a value/)
      const badFlag = yield* Effect.flip(parse(["--bind", "localhost"]))
      assert.strictEqual(badFlag.message, "--bind (YOI_BACKEND_BIND): must be host:port (port 0-65535), got \"localhost\"")
      const badEnv = yield* Effect.flip(parse([], { YOI_BACKEND_BIND: "localhost:99999" }))
      assert.match(badEnv.message, /^--bind \(YOI_BACKEND_BIND\): must be host:port/)
    }))

  it("parses --bind", () => {
    assert.deepStrictEqual(Either.getOrThrow(Cli.parseBind("127.0.0.1:8787")), { host: "127.0.0.1", port: 8787 })
    assert.deepStrictEqual(Either.getOrThrow(Cli.parseBind("[::1]:0")), { host: "::1", port: 0 })
    assert.deepStrictEqual(Either.getOrThrow(Cli.parseBind(":9000")), { host: "0.0.0.0", port: 9000 })
    assert.isTrue(Either.isLeft(Cli.parseBind("localhost")))
    assert.isTrue(Either.isLeft(Cli.parseBind("localhost:99999")))
  })
})
