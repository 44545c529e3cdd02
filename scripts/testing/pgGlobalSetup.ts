/**
 * Vitest `globalSetup` for the projects whose tests need PostgreSQL. With `YOI_TEST_PG_URL` set (CI, or a developer
 * who ran `eval "$(scripts/pg.sh start)"`) it uses that server; otherwise it starts a throwaway cluster with
 * `scripts/pg.sh start` and stops it after the run. When PostgreSQL is not installed the run fails: tests that need
 * it fail, they are never skipped.
 *
 * Tests read the URL from `process.env.YOI_TEST_PG_URL` (inherited by the test workers, which start after this).
 */
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const script = fileURLToPath(new URL("../pg.sh", import.meta.url))

export default function setup(): () => void {
  if (process.env.YOI_TEST_PG_URL) return () => {}
  let out: string
  try {
    out = execFileSync("bash", [script, "start"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr ?? String(e)
    throw new Error(
      "PostgreSQL tests need a server: set YOI_TEST_PG_URL or install PostgreSQL (scripts/pg.sh install). " +
        `scripts/pg.sh start said: ${stderr.trim()}`,
      { cause: e }
    )
  }
  const vars = Object.fromEntries(
    [...out.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1], m[2]] as const)
  )
  const url = vars.YOI_TEST_PG_URL
  const dir = vars.YOI_PG_DIR
  if (!url || !dir) throw new Error(`scripts/pg.sh start printed no URL: ${out}`)
  process.env.YOI_TEST_PG_URL = url
  return () => {
    execFileSync("bash", [script, "stop", dir], { stdio: "ignore" })
    delete process.env.YOI_TEST_PG_URL
  }
}
