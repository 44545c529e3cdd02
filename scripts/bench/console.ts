/**
 * The console's weight and its first token, side by side in one run:
 *
 * - bundle size: every JS and CSS file the Backend serves for the console, raw and gzip (aim: JS under 200 KB gzip);
 * - first token: from navigation to the first streamed token of a Companion reply on screen, in the console (sign-in
 *   check, runtimes, the Companion's transcript, the event stream, then Enter in the composer), against a bare page
 *   on the same origin that only opens an `EventSource` on `/api/events`, sends the same input with `fetch` once the
 *   stream is open and writes the first `turn.delta` into the page (aim: the console at most 1.2x the bare page).
 *
 * Both pages run in the same headless Chromium against one real `yoi-backend` (its embedded runtime, the Companion
 * on the echo engine); the rounds alternate between them and the medians are compared.
 *
 *   npx tsx scripts/bench/console.ts [--rounds 9]
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { parseArgs } from "node:util"
import * as NodeZlib from "node:zlib"
import { chromium, type Page } from "playwright-core"

const { values } = parseArgs({ options: { rounds: { type: "string", default: "9" } } })
const ROUNDS = Number(values.rounds)
const ROOT = NodePath.resolve(import.meta.dirname, "../..")
const DIST = NodePath.join(ROOT, "packages/console/dist")

if (!NodeFs.existsSync(NodePath.join(DIST, "index.html"))) {
  execFileSync("npm", ["run", "build", "-w", "@yoi/console"], { cwd: ROOT, stdio: "inherit" })
}

const sizes = { js: [0, 0], css: [0, 0] }
for (const name of NodeFs.readdirSync(NodePath.join(DIST, "assets"))) {
  const body = NodeFs.readFileSync(NodePath.join(DIST, "assets", name))
  const kind = name.endsWith(".js") ? "js" : name.endsWith(".css") ? "css" : undefined
  if (kind === undefined) continue
  sizes[kind][0]! += body.length
  sizes[kind][1]! += NodeZlib.gzipSync(body, { level: 9 }).length
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

const dataDir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "yoi-bench-console-"))
// The Companion streams 4 characters every 20 ms: its profile is the Backend's config.
NodeFs.writeFileSync(NodePath.join(dataDir, "backend.json"), JSON.stringify({
  embedded: {
    runtime_id: "local",
    engines: { profiles: { "echo-c4-d20": { provider: "echo", chunk_size: 4, delay_ms: 20 } } }
  },
  companion: { profile: "echo-c4-d20" }
}))
const backend: ChildProcess = spawn(process.execPath, [
  NodePath.join(ROOT, "packages/workspace-server/bin/yoi-backend.mjs"),
  "--bind", "127.0.0.1:0", "--data-dir", dataDir, "--config", NodePath.join(dataDir, "backend.json")
], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, YOI_BACKEND_TOKEN: "" } })
let out = ""
backend.stdout!.on("data", (d) => (out += String(d)))

const waitFor = async <A>(check: () => A | undefined, what: string): Promise<A> => {
  const deadline = Date.now() + 120_000
  for (;;) {
    const value = check()
    if (value !== undefined) return value
    if (Date.now() > deadline || backend.exitCode !== null) throw new Error(`no ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const bare = (text: string) => `<!doctype html><meta charset="utf-8"><title>bare</title><div id="out"></div><script>
const es = new EventSource("/api/events")
let sent = false
es.onopen = () => {
  if (sent) return
  sent = true
  fetch("/api/runtimes/local/workers/companion/input", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text: ${JSON.stringify(text)} })
  })
}
es.addEventListener("turn.delta", (e) => {
  const event = JSON.parse(e.data)
  if (event.worker_id !== "companion") return
  document.getElementById("out").textContent += event.data.text
})
</script>`

try {
  const url = await waitFor(() => /listening on (http:\S+)/.exec(out)?.[1], "ready line")
  const token = await waitFor(() => /login\?token=(\S+)/.exec(out)?.[1], "sign-in link")
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    }).then((r) => r.json() as Promise<any>)
  const idle = async () => {
    for (;;) {
      const w = await call("GET", "/api/runtimes/local/workers/companion")
      if (w.status !== "running") return
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"]
  })
  const context = await browser.newContext()
  const signIn = await context.newPage()
  await signIn.goto(`${url}/login?token=${token}`)
  await signIn.getByRole("navigation", { name: "Main" }).waitFor()
  await signIn.close()
  await context.route(`${url}/bench-bare`, (route) =>
    route.fulfill({ status: 200, contentType: "text/html", body: bare("first token please, from the bare page") }))

  // A MutationObserver, installed before any page script runs, notes when streamed reply text first appears (the
  // echo streams 4 characters every 20 ms, so the text in progress is on screen for a while).
  await context.addInitScript(() => {
    const g = globalThis as any
    const observer = new g.MutationObserver(() => {
      if (g.__firstToken !== undefined) return
      const streaming = g.document.querySelector("[data-kind=streaming] .msg-text")
      const text = streaming?.textContent ?? ""
      const shown = (text.length > 0 && !text.includes("Thinking")) ||
        (g.document.getElementById("out")?.textContent ?? "").length > 0
      if (shown) g.__firstToken = performance.now()
    })
    g.addEventListener("DOMContentLoaded", () =>
      observer.observe(g.document.body, { childList: true, subtree: true, characterData: true }))
  })

  const firstToken = (page: Page) =>
    page.waitForFunction(() => (globalThis as any).__firstToken, undefined, { timeout: 60_000 })
      .then((h) => h.jsonValue() as Promise<number>)

  const readyMs: Array<number> = []
  const consoleRound = async () => {
    const page = await context.newPage()
    await page.goto(`${url}/`)
    const composer = page.getByLabel("Message")
    await composer.waitFor()
    const ready = await page.waitForFunction(() => {
      const el = (globalThis as any).document.getElementById("composer-text")
      return el !== null && !el.disabled ? performance.now() : undefined
    }, undefined, { polling: "raf" }).then((h) => h.jsonValue() as Promise<number>)
    readyMs.push(ready)
    await composer.fill("first token please, from the console")
    await composer.press("Enter")
    const at = await firstToken(page)
    await page.close()
    return at
  }
  const bareRound = async () => {
    const page = await context.newPage()
    await page.goto(`${url}/bench-bare`)
    const at = await firstToken(page)
    await page.close()
    return at
  }

  await consoleRound()
  await idle()
  await bareRound()
  await idle()
  const consoleMs: Array<number> = []
  readyMs.length = 0
  const bareMs: Array<number> = []
  for (let i = 0; i < ROUNDS; i++) {
    consoleMs.push(await consoleRound())
    await idle()
    bareMs.push(await bareRound())
    await idle()
  }
  await browser.close()

  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`
  const ratio = median(consoleMs) / median(bareMs)
  console.log(`bundle   JS  ${kb(sizes.js[0]!)} raw, ${kb(sizes.js[1]!)} gzip (aim < 200 KB gzip: ${sizes.js[1]! < 200 * 1024 ? "met" : "NOT met"})`)
  console.log(`bundle   CSS ${kb(sizes.css[0]!)} raw, ${kb(sizes.css[1]!)} gzip`)
  console.log(`first token, navigation to first streamed text on screen, median of ${ROUNDS}:`)
  console.log(`  bare EventSource page ${median(bareMs).toFixed(0)} ms  [${bareMs.map((x) => x.toFixed(0)).join(" ")}]`)
  console.log(`  console               ${median(consoleMs).toFixed(0)} ms  [${consoleMs.map((x) => x.toFixed(0)).join(" ")}]`)
  console.log(`  (console ready to type: median ${median(readyMs).toFixed(0)} ms)`)
  console.log(`  ratio ${ratio.toFixed(2)}x (aim <= 1.2x: ${ratio <= 1.2 ? "met" : "NOT met"})`)
} finally {
  backend.kill("SIGTERM")
  NodeFs.rmSync(dataDir, { recursive: true, force: true })
}
