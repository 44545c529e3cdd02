import { assert } from "@effect/vitest"
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js"
import addFormatsModule from "ajv-formats"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"

// Checks a served OpenAPI document the way a third party would: redocly's recommended ruleset, and ajv on the
// schemas of real responses. Shared by the runtime's and the Backend's contract tests.

const require = createRequire(import.meta.url)
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020

export interface LintProblem {
  readonly ruleId: string
  readonly severity: "error" | "warn"
  readonly message: string
  readonly pointer: string
}

export interface LintReport {
  readonly errors: ReadonlyArray<LintProblem>
  readonly warnings: ReadonlyArray<LintProblem>
  /** Every outbound connection, DNS lookup or fetch the linter attempted (it must work offline). */
  readonly network: ReadonlyArray<string>
}

/** Loaded into the linter's process: records any attempt to reach the network instead of letting it pass unseen. */
const NETWORK_RECORDER = `
const net = require("node:net"), dns = require("node:dns"), fs = require("node:fs")
const log = (what) => fs.appendFileSync(process.env.NETWORK_LOG, what + "\\n")
const connect = net.Socket.prototype.connect
net.Socket.prototype.connect = function (...args) {
  const o = args[0]
  if (!(o && typeof o === "object" && o.path)) log("connect " + JSON.stringify(typeof o === "object" ? { host: o.host, port: o.port } : args.slice(0, 2)))
  return connect.apply(this, args)
}
const lookup = dns.lookup
dns.lookup = function (host, ...rest) { log("dns " + host); return lookup.call(this, host, ...rest) }
if (globalThis.fetch) { const f = globalThis.fetch; globalThis.fetch = (u, ...r) => { log("fetch " + String(u)); return f(u, ...r) } }
`

/** Lints `document` with `redocly lint --extends=recommended`, offline, in a scratch directory. */
export const lint = (document: unknown): Effect.Effect<LintReport> =>
  Effect.acquireUseRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "yoi-openapi-"))),
    (dir) =>
      Effect.async<LintReport>((resume) => {
        const file = Path.join(dir, "openapi.json")
        const preload = Path.join(dir, "network-recorder.cjs")
        const networkLog = Path.join(dir, "network.log")
        Fs.writeFileSync(file, JSON.stringify(document))
        Fs.writeFileSync(preload, NETWORK_RECORDER)
        Fs.writeFileSync(networkLog, "")
        const cli = Path.join(Path.dirname(require.resolve("@redocly/cli/package.json")), "bin", "cli.js")
        execFile(process.execPath, [cli, "lint", file, "--extends=recommended", "--format=json"], {
          cwd: dir,
          maxBuffer: 64 * 1024 * 1024,
          env: {
            PATH: process.env.PATH ?? "",
            HOME: dir,
            NETWORK_LOG: networkLog,
            NODE_OPTIONS: `--require ${preload}`,
            REDOCLY_TELEMETRY: "off",
            REDOCLY_SUPPRESS_UPDATE_NOTICE: "true",
            NO_COLOR: "1"
          }
        }, (_error, stdout, stderr) => {
          // redocly exits 1 when it finds errors; the report on stdout is what counts.
          const start = stdout.indexOf("{")
          if (start === -1) return resume(Effect.dieMessage(`redocly printed no report: ${stderr.slice(0, 2000)}`))
          const report = JSON.parse(stdout.slice(start)) as {
            readonly problems: ReadonlyArray<{
              readonly ruleId: string
              readonly severity: "error" | "warn"
              readonly message: string
              readonly location: ReadonlyArray<{ readonly pointer: string }>
            }>
          }
          const problems = report.problems.map((p): LintProblem => ({
            ruleId: p.ruleId,
            severity: p.severity,
            message: p.message,
            pointer: p.location[0]?.pointer ?? ""
          }))
          const network = Fs.readFileSync(networkLog, "utf8").split("\n").filter((l) => l.length > 0)
          resume(Effect.succeed({
            errors: problems.filter((p) => p.severity === "error"),
            warnings: problems.filter((p) => p.severity === "warn"),
            network
          }))
        })
      }),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )

/** Asserts 0 errors, no network use, and no warning but the allowed ones (each justified by the caller). */
export const assertLintClean = (report: LintReport, allowedWarnings: ReadonlyArray<string>) => {
  assert.deepStrictEqual(report.errors, [], "redocly errors")
  assert.deepStrictEqual(report.network, [], "the linter tried to reach the network")
  const allowed = new Set(allowedWarnings)
  assert.deepStrictEqual(report.warnings.filter((w) => !allowed.has(`${w.ruleId} ${w.pointer}`)), [], "warnings")
}

const escape = (segment: string) => segment.replace(/~/g, "~0").replace(/\//g, "~1")

/** `$id`s that appear more than once (ajv refuses to compile a document holding any). */
export const duplicatedIds = (document: unknown): ReadonlyArray<string> => {
  const seen = new Map<string, number>()
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(walk)
    if (typeof value !== "object" || value === null) return
    for (const [k, v] of Object.entries(value)) {
      if (k === "$id" && typeof v === "string") seen.set(v, (seen.get(v) ?? 0) + 1)
      else walk(v)
    }
  }
  walk(document)
  return Array.from(seen).filter(([, n]) => n > 1).map(([id]) => id)
}

export interface ResponseValidator {
  /**
   * Validates a JSON body received for `method path-template` with `status` against the document's schema for it;
   * fails the test when the document declares no JSON response for that status or the body does not match.
   */
  readonly response: (method: string, template: string, status: number, body: unknown) => void
  /** Validates the JSON of one SSE frame's `data` against the document's `RuntimeEvent` schema. */
  readonly event: (body: unknown) => void
}

/** An ajv (JSON Schema 2020-12, formats on) over the whole document, so its `$ref`s resolve as a client's would. */
export const validator = (document: Record<string, any>): ResponseValidator => {
  const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }))
  ajv.addSchema({ ...document, $id: "openapi.json" })
  const compiled = new Map<string, ValidateFunction>()
  const compile = (pointer: string) => {
    let fn = compiled.get(pointer)
    if (fn === undefined) {
      fn = ajv.compile({ $ref: `openapi.json#${pointer}` })
      compiled.set(pointer, fn)
    }
    return fn
  }
  const check = (pointer: string, body: unknown, what: string) => {
    const validate = compile(pointer)
    const ok = validate(body)
    assert.isTrue(ok, `${what}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 500)}`)
  }
  return {
    response: (method, template, status, body) => {
      const op = document.paths?.[template]?.[method.toLowerCase()]
      assert.isDefined(op, `the document has no operation ${method} ${template}`)
      const schema = op.responses?.[String(status)]?.content?.["application/json"]?.schema
      assert.isDefined(schema, `${method} ${template} declares no JSON response for ${status}`)
      const pointer = `/paths/${escape(template)}/${method.toLowerCase()}/responses/${status}/content/` +
        `${escape("application/json")}/schema`
      check(pointer, body, `${method} ${template} ${status}`)
    },
    event: (body) => check("/components/schemas/RuntimeEvent", body, "event")
  }
}
