import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { api, BACKEND_TOKEN, eventually, TestServers } from "./servers.js"
import * as Servers from "./servers.js"

const tmux = (...args: Array<string>) => Effect.sync(() => execFileSync("tmux", args, { encoding: "utf8" }))

/** `yoi chat` in a real pseudo-terminal (a tmux pane), driven by keystrokes. */
const session = (command: string) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const name = `yoi-chat-${process.pid}-${Date.now()}`
      yield* tmux("new-session", "-d", "-s", name, "-x", "160", "-y", "40", command)
      return name
    }),
    (name) => Effect.ignore(tmux("kill-session", "-t", name))
  )

const screen = (name: string, escapes = false) =>
  tmux("capture-pane", "-p", ...(escapes ? ["-e"] : []), "-t", name).pipe(Effect.orElseSucceed(() => ""))

layer(Servers.layer, { timeout: 180_000, excludeTestServices: true })("yoi chat in a terminal", (it) => {
  it.scoped("types a line, streams the reply in place, and Ctrl-C cancels a running turn", () =>
    Effect.gen(function*() {
      const { backendUrl, bin } = yield* TestServers
      const worker = "/api/runtimes/local/workers/chatty"
      const created = yield* api(backendUrl, BACKEND_TOKEN, "POST", "/api/runtimes/local/workers", {
        worker_id: "chatty",
        display_name: "Chatty",
        engine: { profile: "echo-c1-d100" }
      })
      assert.strictEqual(created.status, 201)
      const name = yield* session(
        `env -i PATH="${process.env.PATH}" TERM=xterm-256color YOI_URL=${backendUrl} YOI_TOKEN=${BACKEND_TOKEN} ` +
          `${process.execPath} ${bin} chat --worker local/chatty; echo "exited=$?"; sleep 60`
      )
      yield* eventually(screen(name), (s) => s.includes("Chatty") && s.includes("you ›"), "the prompt")

      yield* tmux("send-keys", "-t", name, "hi there", "Enter")
      const first = yield* eventually(screen(name), (s) => /completed · \d+ in/.test(s), "the first reply")
      const lines = first.split("\n")
      const asked = lines.findIndex((l) => l.startsWith("you › hi there"))
      assert.isAtLeast(asked, 0, first)
      assert.strictEqual(lines[asked + 1], "hi there", first)
      // Colour on a terminal.
      assert.include(yield* screen(name, true), "\u001b[")

      const long = "a slow reply that streams one character at a time"
      yield* tmux("send-keys", "-t", name, long, "Enter")
      // The reply is on screen, growing, while the turn still runs.
      const partial = yield* eventually(screen(name), (s) => {
        const ls = s.split("\n")
        const i = ls.findIndex((l) => l.startsWith(`you › ${long}`))
        const reply = ls[i + 1] ?? ""
        return i >= 0 && reply.length >= 3 && long.startsWith(reply)
      }, "the first characters of the reply")
      const running = yield* api(backendUrl, BACKEND_TOKEN, "GET", worker)
      assert.strictEqual(running.json.status, "running", partial)
      yield* tmux("send-keys", "-t", name, "C-c")
      const after = yield* eventually(screen(name), (s) => /cancelled · \d+ in/.test(s), "the cancelled outcome")
      const idle = yield* eventually(api(backendUrl, BACKEND_TOKEN, "GET", worker), (r) => r.json.status === "idle", "idle")
      assert.strictEqual(idle.json.last_turn.outcome, "cancelled", after)
      const replyLine = after.split("\n").find((l) => long.startsWith(l) && l.length >= 3)
      assert.isDefined(replyLine, after)
      assert.isBelow(replyLine!.length, long.length, "the reply was cut short")

      // The session goes on after a cancel, and Ctrl-D leaves.
      yield* eventually(screen(name), (s) => s.trimEnd().endsWith("you ›"), "the prompt again")
      yield* tmux("send-keys", "-t", name, "C-d")
      yield* eventually(screen(name), (s) => s.includes("exited=0"), "the session to end")
      assert.strictEqual((yield* api(backendUrl, BACKEND_TOKEN, "GET", worker)).json.usage.turns, 2)
    }))

  it.scoped("yoi login asks for the token on a terminal without echoing it", () =>
    Effect.gen(function*() {
      const { backendUrl, bin, home } = yield* TestServers
      const config = NodePath.join(home, "prompted")
      const name = yield* session(
        `env -i PATH="${process.env.PATH}" TERM=xterm-256color XDG_CONFIG_HOME=${config} ` +
          `${process.execPath} ${bin} login ${backendUrl}; echo "exited=$?"; sleep 60`
      )
      yield* eventually(screen(name), (s) => s.includes("Backend token"), "the prompt")
      yield* tmux("send-keys", "-t", name, BACKEND_TOKEN, "Enter")
      const done = yield* eventually(screen(name), (s) => s.includes("exited="), "login to finish")
      assert.include(done, "exited=0")
      assert.include(done, `logged in to ${backendUrl}`)
      assert.notInclude(done, BACKEND_TOKEN)
      const saved = JSON.parse(NodeFs.readFileSync(NodePath.join(config, "yoi", "config.json"), "utf8"))
      assert.deepStrictEqual(saved, { url: backendUrl, token: BACKEND_TOKEN })
    }))
})
