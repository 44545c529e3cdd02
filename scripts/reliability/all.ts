/**
 * Every reliability suite in sequence, each in its own process (so one suite's servers and children cannot affect
 * the next), with its output passed through; exits non-zero when any suite failed.
 *
 *   npm run reliability                # the default, bounded durations (about 5 minutes in all)
 *   npm run reliability -- fuzz crash  # some of them
 */
import { spawn } from "node:child_process"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const SUITES = ["fuzz", "security", "crash", "faults", "soak"] as const
const here = NodePath.dirname(fileURLToPath(import.meta.url))
const chosen = process.argv.slice(2).filter((a) => !a.startsWith("-"))
const unknown = chosen.filter((s) => !(SUITES as ReadonlyArray<string>).includes(s))
if (unknown.length > 0) {
  console.error(`unknown suite(s) ${unknown.join(", ")}; the suites are ${SUITES.join(", ")}`)
  process.exit(2)
}

const run = (suite: string) =>
  new Promise<{ readonly suite: string; readonly code: number | null; readonly seconds: number }>((resolve) => {
    const started = performance.now()
    console.log(`\n######## ${suite}\n`)
    const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", NodePath.join(here, `${suite}.ts`)], { stdio: "inherit" })
    child.once("exit", (code) => resolve({ suite, code, seconds: Math.round((performance.now() - started) / 1000) }))
  })

const results: Array<{ readonly suite: string; readonly code: number | null; readonly seconds: number }> = []
for (const suite of chosen.length > 0 ? chosen : SUITES) results.push(await run(suite))
console.log("\n######## summary")
for (const r of results) console.log(`  ${r.suite.padEnd(10)} ${r.code === 0 ? "PASS" : `FAIL (exit ${r.code})`}  ${r.seconds} s`)
process.exit(results.every((r) => r.code === 0) ? 0 : 1)
