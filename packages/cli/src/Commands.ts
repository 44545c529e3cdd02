import { Args, Command, Options, Prompt } from "@effect/cli"
import { FetchHttpClient } from "@effect/platform"
import type { Domain } from "@yoi/worker-runtime"
import { Config, Effect, Layer, Option, Redacted, Stream } from "effect"
import * as Chat from "./Chat.js"
import { ApiFailure, type CliError, Unreachable, UsageError } from "./Errors.js"
import * as Output from "./Output.js"
import * as Remote from "./Remote.js"
import * as Settings from "./Settings.js"
import * as Turn from "./Turn.js"

// --- options every command takes (after its name: `yoi runtimes --json`) -----------------------------------------

const json = Options.boolean("json").pipe(Options.withDescription("print JSON for scripts (NDJSON for tail)"))

const connection = {
  url: Options.text("url").pipe(
    Options.withDescription("the Backend's URL (default: from yoi login, else http://127.0.0.1:8787)"),
    Options.withFallbackConfig(Config.string("YOI_URL")),
    Options.optional
  ),
  runtimeUrl: Options.text("runtime-url").pipe(
    Options.withDescription("talk to one runtime directly instead of the Backend (operators)"),
    Options.withFallbackConfig(Config.string("YOI_RUNTIME_URL")),
    Options.optional
  ),
  runtimeToken: Options.redacted("runtime-token").pipe(
    Options.withDescription("the runtime's bearer token (prefer YOI_RUNTIME_TOKEN: flags show in ps)"),
    Options.withFallbackConfig(Config.redacted("YOI_RUNTIME_TOKEN")),
    Options.optional
  )
}

const common = { json, ...connection }

type Common = {
  readonly json: boolean
  readonly url: Option.Option<string>
  readonly runtimeUrl: Option.Option<string>
  readonly runtimeToken: Option.Option<Redacted.Redacted>
}

const workerRef = Args.text({ name: "RUNTIME/WORKER" }).pipe(Args.withDescription("the worker, as runtime_id/worker_id"))

/** Runs a command body with its output settings and the remote for the resolved target. */
const withRemote = <A, E, R>(flags: Common, body: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const target = yield* Settings.resolveTarget(flags)
    return yield* body.pipe(
      Effect.provide(Remote.layer(target).pipe(Layer.provide(FetchHttpClient.layer))),
      Effect.provide(Output.layer({ json: flags.json }))
    )
  })

const printJson = (value: unknown) => Effect.flatMap(Output.Output, (o) => o.out(Output.pretty(value)))

// --- yoi runtimes --------------------------------------------------------------------------------------------------

const counts = (c: Domain.StatusCounts | undefined) =>
  c === undefined ? "-" : `${c.total} (${c.idle} idle, ${c.running} running, ${c.stopped} stopped)`

const runtimes = Command.make("runtimes", common, (flags) =>
  withRemote(flags, Effect.gen(function*() {
    const remote = yield* Remote.Remote
    const output = yield* Output.Output
    const items = yield* remote.runtimes
    if (output.json) return yield* printJson({ items })
    yield* output.out(Output.table(
      ["RUNTIME", "NAME", "KIND", "STATUS", "WORKERS", "STORE"],
      items.map((r) => [
        r.runtime_id,
        r.display_name,
        r.kind,
        Output.statusColor(output.color, r.status) + (r.status_reason ? ` (${r.status_reason})` : ""),
        counts(r.counts ?? r.summary?.counts),
        r.summary?.store ?? "-"
      ]),
      output.color
    ))
  }))).pipe(Command.withDescription("List the runtimes and their health."))

// --- yoi workers ---------------------------------------------------------------------------------------------------

const workerRows = (items: ReadonlyArray<Domain.Worker>, color: boolean) =>
  Output.table(
    ["WORKER", "NAME", "STATUS", "ENGINE", "TURNS", "TOKENS IN/OUT", "UPDATED"],
    items.map((w) => [
      `${w.runtime_id}/${w.worker_id}`,
      w.display_name,
      Output.statusColor(color, w.status),
      w.engine.model === undefined ? w.engine.provider : `${w.engine.provider}:${w.engine.model}`,
      String(w.usage.turns),
      `${w.usage.input_tokens}/${w.usage.output_tokens}`,
      w.updated_at
    ]),
    color
  )

const workers = Command.make("workers", {
  ...common,
  runtime: Options.text("runtime").pipe(Options.withDescription("only this runtime's workers"), Options.optional),
  status: Options.text("status").pipe(Options.withDescription("idle, running or stopped"), Options.optional)
}, (flags) =>
  withRemote(flags, Effect.gen(function*() {
    const remote = yield* Remote.Remote
    const output = yield* Output.Output
    const items = yield* remote.workers(flags.runtime, flags.status)
    if (output.json) return yield* printJson({ items })
    yield* output.out(items.length === 0 ? "no workers\n" : workerRows(items, output.color))
  }))).pipe(Command.withDescription("List workers (of every runtime unless --runtime)."))

// --- yoi create ----------------------------------------------------------------------------------------------------

const create = Command.make("create", {
  ...common,
  runtime: Args.text({ name: "RUNTIME" }).pipe(Args.withDescription("the runtime to create the worker on")),
  name: Options.text("name").pipe(Options.withDescription("display name (default: the id, or \"worker\")"), Options.optional),
  profile: Options.text("profile").pipe(Options.withDescription("the runtime's engine profile"), Options.optional),
  id: Options.text("id").pipe(Options.withDescription("the worker id (makes a retried create idempotent)"), Options.optional)
}, (flags) =>
  withRemote(flags, Effect.gen(function*() {
    const remote = yield* Remote.Remote
    const output = yield* Output.Output
    const result = yield* remote.create(flags.runtime, {
      workerId: flags.id,
      name: Option.getOrElse(Option.orElse(flags.name, () => flags.id), () => "worker"),
      profile: flags.profile
    })
    if (output.json) return yield* printJson(result)
    const w = result.worker
    yield* output.out(`${result.created ? "created" : "exists "} ${Output.bold(output.color, `${w.runtime_id}/${w.worker_id}`)} ${w.display_name} (${w.engine.provider})\n`)
  }))).pipe(Command.withDescription("Create a worker on a runtime."))

// --- yoi send ------------------------------------------------------------------------------------------------------

const readStdin = Effect.async<string>((resume) => {
  const chunks: Array<Buffer> = []
  process.stdin.on("data", (c: Buffer) => chunks.push(c))
  process.stdin.once("end", () => resume(Effect.succeed(Buffer.concat(chunks).toString("utf8"))))
  process.stdin.resume()
})

const send = Command.make("send", {
  ...common,
  ref: workerRef,
  text: Args.text({ name: "TEXT" }).pipe(Args.withDescription("what to say; - reads it from stdin")),
  noWait: Options.boolean("no-wait").pipe(Options.withDescription("print the turn id at once; do not follow the turn")),
  busy: Options.choice("busy", ["reject", "enqueue", "interrupt"]).pipe(
    Options.withDescription(
      "when a turn is running: reject (default), enqueue (wait in the worker's queue) or interrupt (cancel it)"
    ),
    Options.optional
  )
}, (flags) =>
  withRemote(flags, Effect.gen(function*() {
    const output = yield* Output.Output
    const remote = yield* Remote.Remote
    const ref = yield* Remote.parseRef(flags.ref)
    const text = flags.text === "-" ? (yield* readStdin).replace(/\n$/, "") : flags.text
    if (text.trim().length === 0) return yield* new UsageError({ message: "nothing to send: the text is empty" })
    const busy = Option.getOrUndefined(flags.busy)
    const queued = (q: Domain.InputQueued) =>
      output.json
        ? printJson({ queued: true, input_id: q.input_id, position: q.position, worker: q.worker })
        : output.out(`queued ${q.input_id} at position ${q.position}\n`)
    if (flags.noWait) {
      const accepted = yield* remote.input(ref, text, busy)
      if ("queued" in accepted) return yield* queued(accepted)
      return yield* output.json
        ? printJson({ turn_id: accepted.turn_id, worker: accepted.worker })
        : output.out(`${accepted.turn_id}\n`)
    }
    const started = yield* Turn.startOrQueue(ref, text, busy)
    // A queued input is not followed: its turn starts when the ones before it end (see `yoi tail`).
    if ("queued" in started) return yield* queued(started.queued)
    const result = yield* Turn.follow(ref, started).pipe(Effect.scoped)
    if (output.json) yield* printJson(result)
    yield* Turn.requireCompleted(result)
  }))).pipe(Command.withDescription("Send input to a worker and stream its reply."))

// --- yoi tail ------------------------------------------------------------------------------------------------------

const eventLine = (e: Domain.RuntimeEvent, color: boolean) => {
  const data = (typeof e.data === "object" && e.data !== null ? e.data : {}) as Record<string, unknown>
  const where = e.worker_id === undefined ? e.runtime_id : `${e.runtime_id}/${e.worker_id}`
  let detail: string
  switch (e.kind) {
    case "turn.delta":
      detail = JSON.stringify(data.text ?? "")
      break
    case "worker.status":
      detail = `${String(data.previous)} → ${Output.statusColor(color, String(data.status))}`
      break
    case "turn.completed":
    case "turn.failed":
    case "turn.cancelled":
    case "turn.interrupted":
      detail = Output.statusColor(color, String(data.outcome))
      break
    case "transcript.appended": {
      const entry = (data.entry ?? {}) as { data?: { _tag?: string; text?: string } }
      detail = `${entry.data?._tag ?? "?"}${entry.data?.text !== undefined ? ` ${JSON.stringify(entry.data.text.slice(0, 80))}` : ""}`
      break
    }
    default:
      detail = JSON.stringify(e.data ?? {}).slice(0, 120)
  }
  return `${Output.dim(color, e.at)} ${Output.cyan(color, e.kind.padEnd(19))} ${where}${e.turn_id ? ` ${Output.dim(color, e.turn_id)}` : ""} ${detail}\n`
}

const tail = Command.make("tail", {
  ...common,
  scope: Args.text({ name: "RUNTIME[/WORKER]" }).pipe(
    Args.withDescription("only this runtime's or this worker's events"),
    Args.optional
  ),
  since: Options.text("since").pipe(
    Options.withDescription("resume after this cursor, or `earliest` for everything retained (default: from now)"),
    Options.optional
  )
}, (flags) =>
  withRemote(flags, Effect.gen(function*() {
    const remote = yield* Remote.Remote
    const output = yield* Output.Output
    const scope = yield* Option.match(flags.scope, {
      onNone: () => Effect.succeed({}),
      onSome: (s) => s.includes("/") ? Effect.map(Remote.parseRef(s), (worker) => ({ worker })) : Effect.succeed({ runtime: s })
    })
    const follower = yield* remote.follow({
      ...scope,
      cursor: Option.getOrUndefined(flags.since),
      maxRetries: Infinity
    })
    const printCursor = Effect.flatMap(follower.lastCursor, (cursor) =>
      Option.match(cursor, {
        onNone: () => Effect.void,
        onSome: (c) => output.err(`cursor: ${c}\n`)
      }))
    // A chunk is written whole, so the cursor printed at the end is exactly after the last event shown.
    yield* follower.events.pipe(
      Stream.runForEachChunk((chunk) =>
        output.out(Array.from(chunk, (e) => (output.json ? Output.json(e) : eventLine(e, output.color))).join(""))
          .pipe(Effect.uninterruptible)
      ),
      Effect.onExit(() => printCursor),
      // The reconnect attempts ran out: the server is out of reach.
      Effect.catchTag("RuntimeUnavailable", (e) => Effect.fail(new Unreachable({ message: e.message }))),
      Effect.catchAll((e) => Effect.fail(new ApiFailure({ tag: e._tag, message: e.message })))
    )
  }))).pipe(Command.withDescription("Follow events (all, a runtime's or a worker's) with resume; Ctrl-C prints the cursor."))

// --- yoi transcript ------------------------------------------------------------------------------------------------

const entryLine = (e: Domain.TranscriptEntry, color: boolean) => {
  const d = e.data
  const head = Output.dim(color, `#${e.index}`)
  switch (d._tag) {
    case "user_input":
      return `${head} ${Output.bold(color, "you")}: ${d.text}\n`
    case "assistant_message":
      return `${head} ${Output.bold(color, "worker")}: ${d.text}${d.partial ? Output.dim(color, " (partial)") : ""}\n`
    case "tool_call":
      return `${head} ${Output.cyan(color, "⚙ tool")} ${d.name} ${JSON.stringify(d.arguments)}\n`
    case "tool_result":
      return `${head} ${d.is_error ? Output.red(color, "✗ result") : Output.green(color, "✓ result")} ${d.name} ${JSON.stringify(d.result)}\n`
    case "notice":
      return `${head} ${Output.yellow(color, "notice")} ${d.code}: ${d.message}\n`
  }
}

const transcript = Command.make("transcript", {
  ...common,
  ref: workerRef,
  all: Options.boolean("all").pipe(Options.withDescription("every page, not just the first"))
}, (flags) =>
  withRemote(flags, Effect.gen(function*() {
    const remote = yield* Remote.Remote
    const output = yield* Output.Output
    const ref = yield* Remote.parseRef(flags.ref)
    const page = yield* remote.transcript(ref, { all: flags.all })
    if (output.json) return yield* printJson(page)
    yield* output.out(page.items.map((e) => entryLine(e, output.color)).join(""))
    if (page.next_page_token !== undefined) yield* output.err("(more entries: --all shows every page)\n")
  }))).pipe(Command.withDescription("Print a worker's transcript."))

// --- yoi cancel | stop | restore | delete --------------------------------------------------------------------------

const lifecycle = (
  name: "cancel" | "stop" | "restore" | "delete",
  description: string,
  run: (remote: Remote.RemoteService, ref: Remote.WorkerRef) => Effect.Effect<unknown, CliError>,
  say: (result: any, ref: string) => string
) =>
  Command.make(name, { ...common, ref: workerRef }, (flags) =>
    withRemote(flags, Effect.gen(function*() {
      const remote = yield* Remote.Remote
      const output = yield* Output.Output
      const ref = yield* Remote.parseRef(flags.ref)
      const result = yield* run(remote, ref)
      yield* output.json ? printJson(result) : output.out(say(result, flags.ref))
    }))).pipe(Command.withDescription(description))

const cancel = lifecycle("cancel", "Cancel the running turn.", (r, ref) => r.cancel(ref), (res: Domain.CancelResult, ref) =>
  res.cancelled ? `cancelled turn ${res.turn_id} of ${ref}\n` : `${ref} had no turn running\n`)
const stop = lifecycle("stop", "Stop a worker (cancels its turn; restorable).", (r, ref) => r.stop(ref), (w: Domain.Worker, ref) =>
  `${ref} ${w.status}\n`)
const restore = lifecycle("restore", "Restore a stopped worker.", (r, ref) => r.restore(ref), (w: Domain.Worker, ref) =>
  `${ref} ${w.status}\n`)
const del = lifecycle("delete", "Delete a stopped worker.", (r, ref) => r.delete(ref), (res: Domain.DeleteResult, ref) =>
  res.deleted ? `deleted ${ref}\n` : `${ref} was already gone\n`)

// --- yoi audit -----------------------------------------------------------------------------------------------------

interface AuditRow {
  readonly at: string
  readonly actor: string
  readonly runtime_id: string
  readonly worker_id: string | null
  readonly action: string
  readonly outcome: string
  readonly error_tag: string | null
}

const audit = Command.make("audit", {
  ...common,
  limit: Options.integer("limit").pipe(Options.withDescription("at most this many records"), Options.optional)
}, (flags) =>
  withRemote(flags, Effect.gen(function*() {
    const remote = yield* Remote.Remote
    const output = yield* Output.Output
    const page = yield* remote.audit(flags.limit)
    if (output.json) return yield* printJson(page)
    const items = page.items as ReadonlyArray<AuditRow>
    yield* output.out(items.length === 0 ? "no audit records\n" : Output.table(
      ["TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "ERROR"],
      items.map((a) => [
        a.at,
        a.actor,
        a.action,
        a.worker_id === null ? a.runtime_id : `${a.runtime_id}/${a.worker_id}`,
        Output.statusColor(output.color, a.outcome),
        a.error_tag ?? ""
      ]),
      output.color
    ))
  }))).pipe(Command.withDescription("Show the Backend's audit trail of commands, newest first."))

// --- yoi login -----------------------------------------------------------------------------------------------------

const login = Command.make("login", {
  json,
  url: Args.text({ name: "URL" }).pipe(Args.withDescription("the Backend's URL, e.g. http://127.0.0.1:8787")),
  token: Options.redacted("token").pipe(
    Options.withDescription("the Backend token (default: read from stdin, or asked for on a terminal)"),
    Options.optional
  )
}, (flags) =>
  Effect.gen(function*() {
    const token = yield* Option.match(flags.token, {
      onSome: Effect.succeed,
      onNone: () =>
        process.stdin.isTTY
          ? Prompt.password({ message: "Backend token" }).pipe(
            Effect.catchTag("QuitException", () => Effect.fail(new UsageError({ message: "no token given" })))
          )
          : Effect.map(readStdin, (text) => Redacted.make(text.trim()))
    })
    if (Redacted.value(token).length === 0) return yield* new UsageError({ message: "no token given" })
    const target = yield* Settings.resolveTarget({
      url: Option.some(flags.url),
      runtimeUrl: Option.none(),
      runtimeToken: Option.none()
    })
    const checked: Settings.Target = { _tag: "Backend", url: target.url, token: Option.some(token) }
    // The token is saved only once the Backend accepted it.
    const items = yield* Effect.flatMap(Remote.Remote, (r) => r.runtimes).pipe(
      Effect.provide(Remote.layer(checked).pipe(Layer.provide(FetchHttpClient.layer)))
    )
    const file = yield* Settings.writeLogin({ url: checked.url, token: Redacted.value(token) })
    const output = yield* Output.Output
    yield* output.json
      ? printJson({ url: checked.url, config: file, runtimes: items.length })
      : output.out(`logged in to ${checked.url} (${items.length} runtime${items.length === 1 ? "" : "s"}); saved in ${file}\n`)
  }).pipe(Effect.provide(Output.layer({ json: flags.json })))).pipe(
  Command.withDescription("Save a Backend's URL and token (mode 0600) for later commands.")
)

// --- yoi chat ------------------------------------------------------------------------------------------------------

const chat = Command.make("chat", {
  ...connection,
  worker: Options.text("worker").pipe(
    Options.withDescription("the worker to talk to, as runtime_id/worker_id"),
    Options.withDefault("local/companion")
  )
}, (flags) =>
  withRemote({ ...flags, json: false }, Effect.flatMap(Remote.parseRef(flags.worker), Chat.session))).pipe(
  Command.withDescription("Talk with the Companion (or --worker R/W); Ctrl-C cancels a reply, Ctrl-D leaves.")
)

/** `yoi` and its commands. */
export const yoi = Command.make("yoi").pipe(
  Command.withDescription("The Yoi command line: runtimes, workers, turns and events, through the Backend."),
  Command.withSubcommands([
    login,
    runtimes,
    workers,
    create,
    send,
    chat,
    tail,
    transcript,
    cancel,
    stop,
    restore,
    del,
    audit
  ])
)
