import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import type { Browser, BrowserContext, Page } from "playwright-core"
import { seedLongTranscript } from "./seed.js"
import {
  api,
  axeViolations,
  ensureBuilt,
  IMAGES,
  launchChromium,
  type Proc,
  startBackend,
  startRuntime,
  tempDir,
  until
} from "./support.js"

// The console end to end: a real yoi-backend (embedded runtime `local`) and a real yoi-runtime (`remote`), both
// started as processes, driven through headless Chromium.

const LONG_WORKER = "long-history"
const LONG_TURNS = 2_500

let dataDir: string
let remote: { proc: Proc; url: string; port: number }
let backend: { proc: Proc; url: string; loginUrl: string; token: string }
let browser: Browser
/** Every URL any page of the run asked for. */
const requested: Array<string> = []
/** Console errors of every page (a CSP violation shows up here). */
const consoleErrors: Array<string> = []

const newPage = async (context?: BrowserContext): Promise<Page> => {
  const ctx = context ?? await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const page = await ctx.newPage()
  page.setDefaultTimeout(60_000)
  page.on("request", (request) => void requested.push(request.url()))
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text())
  })
  return page
}

const signedIn = async () => {
  const page = await newPage()
  await page.goto(backend.loginUrl)
  await page.getByRole("navigation", { name: "Main" }).waitFor()
  return page
}

const screenshot = async (page: Page, name: string) => {
  NodeFs.mkdirSync(IMAGES, { recursive: true })
  await page.screenshot({ path: NodePath.join(IMAGES, `${name}.png`) })
}

const createCompanion = async () => {
  // The Backend will create its Companion at start (issue 11); until then the test creates it through the API.
  const existing = await api(backend.url, backend.token, "GET", "/api/runtimes/local/workers/companion")
  if (existing.status === 200) return
  const created = await api(backend.url, backend.token, "POST", "/api/runtimes/local/workers", {
    worker_id: "companion",
    display_name: "Companion",
    engine: { provider: "echo", chunk_size: 3, delay_ms: 40 }
  })
  assert.strictEqual(created.status, 201, JSON.stringify(created.json))
}

beforeAll(async () => {
  ensureBuilt()
  dataDir = tempDir("yoi-console-e2e-")
  const [runtime, seeded, chromium] = await Promise.all([
    startRuntime(dataDir),
    Effect.runPromise(seedLongTranscript(NodePath.join(dataDir, "local.db"), LONG_WORKER, LONG_TURNS)),
    launchChromium()
  ])
  assert.strictEqual(seeded, LONG_TURNS * 2)
  remote = runtime
  browser = chromium
  backend = await startBackend(dataDir, remote.url)
  await createCompanion()
})

afterAll(async () => {
  await browser?.close()
  await backend?.proc.stop()
  await remote?.proc.stop()
  if (dataDir !== undefined) NodeFs.rmSync(dataDir, { recursive: true, force: true })
})

describe("the console", () => {
  it("is served at / with a strict CSP, a no-cache page and immutable hashed assets", async () => {
    const page = await fetch(`${backend.url}/`)
    assert.strictEqual(page.status, 200)
    assert.match(page.headers.get("content-type") ?? "", /text\/html/)
    const csp = page.headers.get("content-security-policy") ?? ""
    assert.include(csp, "default-src 'self'")
    assert.include(csp, "script-src 'self'")
    assert.notInclude(csp, "unsafe-inline")
    assert.notInclude(csp, "unsafe-eval")
    assert.strictEqual(page.headers.get("cache-control"), "no-cache")
    const html = await page.text()
    assert.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, "no inline script")
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1]
    assert.isDefined(script)
    const asset = await fetch(`${backend.url}${script}`)
    assert.strictEqual(asset.status, 200)
    assert.strictEqual(asset.headers.get("cache-control"), "public, max-age=31536000, immutable")
    assert.match(asset.headers.get("content-type") ?? "", /javascript/)
    const missing = await fetch(`${backend.url}/assets/nope.js`)
    assert.strictEqual(missing.status, 404)
    // The API is untouched: without a session it still answers a typed 401.
    const runtimes = await fetch(`${backend.url}/api/runtimes`)
    assert.strictEqual(runtimes.status, 401)
    assert.strictEqual((await runtimes.json() as any)._tag, "Unauthorized")
  })

  it("keeps the generated token in the data directory, readable by its owner only", () => {
    const file = NodePath.join(dataDir, "backend-token")
    assert.strictEqual(NodeFs.readFileSync(file, "utf8").trim(), backend.token)
    assert.strictEqual(NodeFs.statSync(file).mode & 0o777, 0o600)
  })

  it("signs in through the printed link, lands on the Companion, and signs out", async () => {
    const page = await newPage()
    await page.goto(backend.loginUrl)
    await page.getByRole("heading", { name: "Companion", level: 1 }).waitFor()
    assert.strictEqual(new URL(page.url()).pathname, "/")
    await page.getByRole("button", { name: "Sign out" }).click()
    await page.getByRole("heading", { name: "Sign in" }).waitFor()
    const cookies = await page.context().cookies()
    assert.isUndefined(cookies.find((c) => c.name === "yoi_session"))
    await page.reload()
    await page.getByRole("heading", { name: "Sign in" }).waitFor()
    await page.context().close()
  })

  it("shows a sign-in form without a session, refuses a wrong token, accepts the right one", async () => {
    const page = await newPage()
    const response = await page.goto(`${backend.url}/workers`)
    assert.strictEqual(response?.status(), 200)
    await page.getByRole("heading", { name: "Sign in" }).waitFor()
    await screenshot(page, "sign-in")
    assert.deepStrictEqual(await axeViolations(page), [])
    await page.getByLabel("Backend token").fill("not-the-token")
    await page.getByRole("button", { name: "Sign in" }).click()
    await page.getByRole("alert").filter({ hasText: "not right" }).waitFor()
    await page.getByLabel("Backend token").fill(backend.token)
    await page.getByRole("button", { name: "Sign in" }).click()
    await page.getByRole("heading", { name: "Workers", level: 1 }).waitFor()
    // A stale link sends a person to the form, saying so, not to a JSON error.
    const stale = await newPage()
    await stale.goto(`${backend.url}/login?token=stale`)
    await stale.getByText("not valid for this Backend").waitFor()
    await page.context().close()
    await stale.context().close()
  })

  it("chats with the Companion: the reply streams in, the composer waits, then the reply is committed", async () => {
    const page = await signedIn()
    await page.getByRole("heading", { name: "Companion", level: 1 }).waitFor()
    const composer = page.getByLabel("Message")
    const text = "Hello Companion, please repeat this sentence back to me slowly."
    await composer.fill(text)
    await composer.press("Enter")
    // While the turn runs: a partial reply is shown and the composer is disabled with a clear state.
    const partial = await until("a partial streamed reply", async () => {
      const streaming = page.locator("[data-kind=streaming] .msg-text")
      if (await streaming.count() === 0) return undefined
      const shown = (await streaming.textContent()) ?? ""
      return shown.length > 0 && shown !== text && text.startsWith(shown) ? shown : undefined
    })
    assert.isBelow(partial.length, text.length)
    assert.isTrue(await composer.isDisabled())
    await page.getByText("is replying").waitFor()
    await page.getByRole("button", { name: "Cancel" }).waitFor()
    // Then the committed reply, once, and the composer is back.
    await page.locator("[data-kind=assistant_message]").filter({ hasText: text }).waitFor()
    await until("the composer to be enabled", async () => (await composer.isEnabled()) ? true : undefined)
    assert.strictEqual(await page.locator("[data-kind=user_input]").count(), 1)
    assert.strictEqual(await page.locator("[data-kind=assistant_message]").count(), 1)
    assert.strictEqual(await page.locator("[data-kind=streaming]").count(), 0)
    await page.locator(".turn-summary").filter({ hasText: "completed" }).waitFor()
    await screenshot(page, "companion")
    assert.deepStrictEqual(await axeViolations(page), [])
    await page.context().close()
  })
})
