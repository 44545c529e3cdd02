import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, LogLevel, Option, Redacted } from "effect"
import { parseArgs } from "../src/Cli.js"
import { usage } from "../src/Config.js"

const parse = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  parseArgs(argv).pipe(
    Effect.provide(NodeContext.layer),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
  )

const run = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.flatMap(parse(argv, env), (p) => (p._tag === "Run" ? Effect.succeed(p.value) : Effect.die("printed")))

describe("yoi-runtime flags", () => {
  it.effect("a flag wins over its environment variable, which wins over the default", () =>
    Effect.gen(function*() {
      const env = {
        YOI_RUNTIME_ID: "from-env",
        YOI_RUNTIME_BIND: "127.0.0.1:1",
        YOI_SHUTDOWN_GRACE_MS: "5",
        YOI_INSECURE_NO_AUTH: "true",
        YOI_RUNTIME_TOKEN: "a-token-from-the-environment",
        YOI_RUNTIME_CONFIG: "/etc/yoi/runtime.json"
      }
      const flags = yield* run(["--runtime-id", "from-flag", "--bind=[::1]:0", "--store", "memory", "--log-level", "warn"], env)
      assert.deepStrictEqual(
        [flags.runtimeId, flags.bind, flags.store, flags.graceMs, flags.insecureNoAuth, flags.logLevel],
        ["from-flag", { host: "::1", port: 0 }, Option.some({ _tag: "Memory" as const }), 5, true, LogLevel.Warning]
      )
      assert.strictEqual(Option.map(flags.token, Redacted.value).pipe(Option.getOrNull), "a-token-from-the-environment")
      assert.deepStrictEqual(flags.configFile, Option.some("/etc/yoi/runtime.json"))
      const defaults = yield* run([])
      assert.deepStrictEqual(
        [defaults.runtimeId, defaults.bind, defaults.store, defaults.dataDir, defaults.graceMs, defaults.heartbeatMs],
        ["local", { host: "127.0.0.1", port: 38800 }, Option.none(), ".yoi", 10_000, 15_000]
      )
      assert.deepStrictEqual(
        [defaults.configFile, defaults.token, defaults.logLevel],
        [Option.none(), Option.none(), LogLevel.Info]
      )
      const config = yield* run(["--config", "profiles.json"], env)
      assert.deepStrictEqual(config.configFile, Option.some("profiles.json"))
      // `@effect/cli`'s built-in --log-level takes the levels it knows; the value still lands in the config.
      assert.strictEqual((yield* run(["--log-level", "debug"], { YOI_LOG_LEVEL: "error" })).logLevel, LogLevel.Debug)
      assert.strictEqual((yield* run([], { YOI_LOG_LEVEL: "off" })).logLevel, LogLevel.None)
    }))

  it.effect("help, completions, and one-line errors naming the flag and its variable", () =>
    Effect.gen(function*() {
      const help = yield* parse(["--help"])
      assert.strictEqual(help._tag === "Print" && help.text, usage)
      const completions = yield* parse(["--completions", "bash"])
      assert.include(completions._tag === "Print" ? completions.text : "", "--runtime-id")
      const errors = yield* Effect.all([
        Effect.flip(parse(["--grace-ms", "soon"])),
        Effect.flip(parse([], { YOI_EVENTS_HEARTBEAT_MS: "0" })),
        Effect.flip(parse(["--store", "disk"])),
        Effect.flip(parse(["--log-level", "loud"])),
        Effect.flip(parse(["--bogus"])),
        Effect.flip(parse(["--bind"]))
      ])
      assert.deepStrictEqual(errors.map((e) => e.message.split("\n")[0]), [
        "--grace-ms (YOI_SHUTDOWN_GRACE_MS): expected an integer of at least 0, got \"soon\"",
        "--heartbeat-ms (YOI_EVENTS_HEARTBEAT_MS): expected an integer of at least 1, got \"0\"",
        "--store (YOI_RUNTIME_STORE): expected memory, sqlite:<path> or postgres://..., got \"disk\"",
        "--log-level (YOI_LOG_LEVEL): expected one of all, trace, debug, info, warn, error, off; got \"loud\"",
        "Unknown option '--bogus'",
        "--bind needs a value"
      ])
      assert.include(errors[4]!.message, "Usage: yoi-runtime")
    }))

  it.effect("--store postgres:// keeps the URL redacted; a bad value never shows its password or names its variable twice", () =>
    Effect.gen(function*() {
      const url = "postgres://yoi:pa55-w0rd@db.internal:5432/yoi"
      const flags = yield* run(["--store", url, "--store-schema", "rt_alpha", "--lease-ms", "2000"])
      const store = Option.getOrThrow(flags.store)
      assert.strictEqual(store._tag, "Postgres")
      if (store._tag === "Postgres") {
        assert.strictEqual(Redacted.value(store.url), url)
        assert.notInclude(String(store.url), "pa55-w0rd")
      }
      assert.deepStrictEqual([flags.storeSchema, flags.leaseMs], ["rt_alpha", 2000])
      const defaults = yield* run([])
      assert.deepStrictEqual([defaults.storeSchema, defaults.leaseMs], ["yoi_runtime", 5000])
      const bad = [
        "postgres://yoi:pa55-w0rd@/yoi",
        "postgresql://yoi:pa55-w0rd@[nope/yoi",
        "mysql://yoi:pa55-w0rd@db.internal/yoi",
        "yoi:pa55-w0rd@db.internal"
      ]
      for (const value of bad) {
        for (const error of [
          yield* Effect.flip(parse(["--store", value])),
          yield* Effect.flip(parse([], { YOI_RUNTIME_STORE: value }))
        ]) {
          assert.notInclude(error.message, "pa55-w0rd")
          assert.strictEqual(error.message.split("YOI_RUNTIME_STORE").length, 2, error.message)
          assert.include(error.message, "--store (YOI_RUNTIME_STORE): expected")
        }
      }
      const shown = yield* Effect.flip(parse(["--store", "mysql://yoi:pa55-w0rd@db.internal/yoi"]))
      assert.include(shown.message, "mysql://yoi:***@db.internal/yoi")
      const schema = yield* Effect.flip(parse(["--store-schema", "Robert'); DROP"]))
      assert.include(schema.message, "--store-schema (YOI_RUNTIME_STORE_SCHEMA): expected a lowercase name")
    }))
})
