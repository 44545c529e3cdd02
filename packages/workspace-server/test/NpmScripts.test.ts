import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeChild from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { tempDir } from "./support.js"

/**
 * `npm start` and `npm run runtime` as an operator's script uses them (`npm run runtime & ...; kill $!`): the
 * signal goes to npm, which forwards SIGTERM/SIGINT to its child. The scripts `exec` node, so that child is the
 * server itself (not a shell that would die and leave the server running undrained), and it drains.
 */

const ROOT = NodePath.join(import.meta.dirname, "..", "..", "..")

const parentOf = (pid: string): string | undefined => {
  try {
    return /^PPid:\s+(\d+)$/m.exec(NodeFs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]
  } catch {
    return undefined
  }
}

const childrenOf = (pid: number) =>
  NodeFs.readdirSync("/proc").filter((d) => /^\d+$/.test(d) && parentOf(d) === String(pid)).map(Number)

const cmdline = (pid: number) => NodeFs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((a) => a !== "")

const npmRun = (args: ReadonlyArray<string>, ready: RegExp, signal: NodeJS.Signals) =>
  Effect.gen(function*() {
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !/^npm_(?!config_cache$)/i.test(k) && !k.startsWith("YOI_"))
    )
    const child = NodeChild.spawn("npm", [...args], {
      cwd: ROOT,
      env: { ...env, YOI_RUNTIME_TOKEN: "npm-scripts-test-token-0123456789" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL")))
    let out = ""
    let err = ""
    child.stdout!.on("data", (d) => (out += String(d)))
    child.stderr!.on("data", (d) => (err += String(d)))
    // "close": every holder of npm's stdout/stderr pipes, the server included, has exited.
    const closed = new Promise<void>((resolve) => child.once("close", () => resolve()))
    yield* Effect.async<void>((resume) => {
      const check = () => {
        if (ready.test(out)) resume(Effect.void)
        else if (child.exitCode !== null) resume(Effect.die(`npm exited: ${err}`))
        else setTimeout(check, 50)
      }
      check()
    })
    const servers = childrenOf(child.pid!)
    assert.strictEqual(servers.length, 1, `npm's children: ${servers.map((p) => cmdline(p).join(" ")).join("; ")}`)
    const server = servers[0]!
    const argv = cmdline(server)
    assert.strictEqual(NodePath.basename(argv[0]!), "node", argv.join(" "))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => NodeFs.existsSync(`/proc/${server}`) && parentOf(String(server)) === "1" && process.kill(server)))

    child.kill(signal)
    yield* Effect.promise(() => closed)
    assert.isFalse(NodeFs.existsSync(`/proc/${server}`), `the server ${server} outlived npm`)
    return { stderr: err, argv }
  })

describe("the npm scripts", () => {
  it.scopedLive("npm run runtime: SIGTERM to npm reaches the runtime, which drains", () =>
    Effect.gen(function*() {
      const { argv, stderr } = yield* npmRun(
        ["run", "runtime", "--", "--store", "memory", "--bind", "127.0.0.1:0"],
        /^yoi-runtime \S+ listening on /m,
        "SIGTERM"
      )
      assert.match(argv[1]!, /packages\/runtime-server\/bin\/yoi-runtime\.mjs$/)
      assert.match(stderr, /message=draining[\s\S]*message=drained/)
    }), 120_000)

  it.scopedLive("npm start: SIGINT to npm reaches the Backend, which drains", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const { argv, stderr } = yield* npmRun(
        ["start", "--", "--bind", "127.0.0.1:0", "--data-dir", NodePath.join(dir, "data")],
        /^sign in: /m,
        "SIGINT"
      )
      assert.match(argv[1]!, /packages\/workspace-server\/bin\/yoi-backend\.mjs$/)
      assert.match(stderr, /message=draining[\s\S]*message=drained/)
    }), 120_000)
})
