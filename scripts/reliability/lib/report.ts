/**
 * What a suite prints: one line per measured figure, the failures it found, and a final verdict; the process exits
 * non-zero when anything failed, so `npm run reliability` fails with it.
 */
const failures: Array<string> = []

export const heading = (text: string) => console.log(`\n== ${text}`)

export const note = (text: string) => console.log(`   ${text}`)

/** Records a failure and prints it at once; the suite goes on so that one run finds as much as it can. */
export const fail = (message: string) => {
  failures.push(message)
  console.log(`   FAIL ${message}`)
}

export const check = (ok: boolean, message: string) => {
  if (!ok) fail(message)
}

export class Figures {
  private readonly rows: Array<readonly [string, string]> = []
  private readonly totals: Array<readonly [string, string]> = []

  add(name: string, value: number | string) {
    this.rows.push([name, String(value)])
    console.log(`   ${name}: ${value}`)
  }

  total(name: string, value: number | string) {
    this.totals.push([name, String(value)])
  }

  print() {
    const width = Math.max(...[...this.rows, ...this.totals].map(([n]) => n.length), 10)
    console.log("\nfigures")
    for (const [name, value] of [...this.rows, ...this.totals]) console.log(`  ${name.padEnd(width)}  ${value}`)
  }
}

export const finish = (figures: Figures) => {
  figures.print()
  if (failures.length === 0) {
    console.log("\nresult: PASS")
    process.exit(0)
  }
  console.log(`\nresult: FAIL (${failures.length})`)
  for (const f of failures) console.log(`  - ${f.split("\n")[0]}`)
  process.exit(1)
}

/** Quantiles of a sample, in its own unit. */
export const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls until `done` answers true, or fails after `timeoutMs`. */
export const waitUntil = async (
  done: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 10_000,
  stepMs = 25
) => {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (await done()) return true
    await sleep(stepMs)
  }
  fail(`timed out after ${timeoutMs} ms waiting for ${what}`)
  return false
}

/** JSON with object keys sorted: two values that differ only in key order compare equal. */
export const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : v)
