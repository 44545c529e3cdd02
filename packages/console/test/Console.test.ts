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
    engine: { profile: "echo-c3-d40" }
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

  const createSlow = async (runtimeId: string, name: string) => {
    const created = await api(backend.url, backend.token, "POST", `/api/runtimes/${runtimeId}/workers`, {
      display_name: name,
      engine: { profile: "echo-c2-d60" }
    })
    assert.strictEqual(created.status, 201, JSON.stringify(created.json))
    return created.json.worker.worker_id as string
  }

  const workerOf = async (runtimeId: string, workerId: string) =>
    (await api(backend.url, backend.token, "GET", `/api/runtimes/${runtimeId}/workers/${workerId}`)).json

  const confirmIn = async (page: Page, action: string) => {
    const dialog = page.getByRole("dialog")
    await dialog.waitFor()
    await dialog.getByRole("button", { name: action, exact: true }).click()
    await dialog.waitFor({ state: "hidden" })
  }

  for (const runtimeId of ["local", "remote"]) {
    it(`creates, talks to, cancels, stops, restores and deletes workers on ${runtimeId}`, async () => {
      const page = await signedIn()
      await page.goto(`${backend.url}/runtimes/${runtimeId}`)
      await page.getByRole("heading", { name: /^Workers on/, level: 1 }).waitFor()

      // Create through the dialog: it offers what the runtime offers.
      await page.getByRole("button", { name: "New worker" }).click()
      const dialog = page.getByRole("dialog")
      await dialog.getByLabel("Name").fill(`Writer on ${runtimeId}`)
      await dialog.getByLabel(/^(Profile|Engine)$/).selectOption("echo")
      if (runtimeId === "local") await screenshot(page, "create-worker")
      await dialog.getByRole("button", { name: "Create worker" }).click()
      await page.getByRole("heading", { name: `Writer on ${runtimeId}`, level: 1 }).waitFor()
      const workerId = decodeURIComponent(new URL(page.url()).pathname.split("/").pop()!)

      // Send: the echo comes back.
      const composer = page.getByLabel("Message")
      await composer.fill(`Draft the notes for ${runtimeId}`)
      await composer.press("Enter")
      await page.locator("[data-kind=assistant_message]").filter({ hasText: `Draft the notes for ${runtimeId}` }).waitFor()
      await until("the worker to be idle", async () =>
        (await page.locator("[data-testid=worker-status]").getAttribute("data-status")) === "idle" ? true : undefined)
      if (runtimeId === "local") {
        await screenshot(page, "worker")
        assert.deepStrictEqual(await axeViolations(page), [])
      }

      // Cancel a running turn from the worker view; the list showed it running live.
      const slowId = await createSlow(runtimeId, `Slow on ${runtimeId}`)
      await page.goto(`${backend.url}/runtimes/${runtimeId}`)
      const slowBadge = page.locator(`[data-testid="status-${slowId}"]`)
      await slowBadge.waitFor()
      assert.strictEqual(await slowBadge.getAttribute("data-status"), "idle")
      const long = "x".repeat(400)
      const sent = await api(backend.url, backend.token, "POST", `/api/runtimes/${runtimeId}/workers/${slowId}/input`,
        { text: long })
      assert.strictEqual(sent.status, 202)
      await page.locator(`[data-testid="status-${slowId}"][data-status=running]`).waitFor()
      await page.getByRole("link", { name: `Slow on ${runtimeId}` }).click()
      await page.getByRole("button", { name: "Cancel" }).click()
      await until("the turn to be cancelled", async () =>
        (await workerOf(runtimeId, slowId)).last_turn?.outcome === "cancelled" ? true : undefined)
      await page.locator("[data-testid=worker-status][data-status=idle]").waitFor()
      await page.getByLabel("Message").waitFor({ state: "visible" })
      assert.isTrue(await page.getByLabel("Message").isEnabled())

      // Stop, filter, restore, stop again and delete from the list, each after a confirmation.
      await page.goto(`${backend.url}/runtimes/${runtimeId}`)
      const row = page.locator(`tr[data-worker="${workerId}"]`)
      await row.waitFor()
      await row.getByRole("button", { name: `Stop Writer on ${runtimeId}` }).click()
      await confirmIn(page, "Stop")
      await page.locator(`[data-testid="status-${workerId}"][data-status=stopped]`).waitFor()
      await page.getByLabel("Status").selectOption("running")
      await row.waitFor({ state: "detached" })
      await page.getByLabel("Status").selectOption("stopped")
      await row.waitFor()
      await page.getByLabel("Status").selectOption("all")
      await row.getByRole("button", { name: `Restore Writer on ${runtimeId}` }).click()
      await confirmIn(page, "Restore")
      await page.locator(`[data-testid="status-${workerId}"][data-status=idle]`).waitFor()
      // Delete is offered only for a stopped worker.
      assert.isTrue(await row.getByRole("button", { name: `Delete Writer on ${runtimeId}` }).isDisabled())
      await row.getByRole("button", { name: `Stop Writer on ${runtimeId}` }).click()
      await confirmIn(page, "Stop")
      await page.locator(`[data-testid="status-${workerId}"][data-status=stopped]`).waitFor()
      await row.getByRole("button", { name: `Delete Writer on ${runtimeId}` }).click()
      await confirmIn(page, "Delete")
      await row.waitFor({ state: "detached" })
      assert.strictEqual((await api(backend.url, backend.token, "GET",
        `/api/runtimes/${runtimeId}/workers/${workerId}`)).status, 404)
      await page.context().close()
    })
  }

  it("shows each runtime's health live: a remote killed goes offline and comes back online", async () => {
    const page = await signedIn()
    await page.goto(`${backend.url}/runtimes`)
    const remoteBadge = page.locator("[data-testid=runtime-status-remote]")
    await page.locator("[data-testid=runtime-status-local][data-status=online]").waitFor()
    await page.locator("[data-testid=runtime-status-remote][data-status=online]").waitFor()
    await page.locator("[data-runtime=local]").getByText("Embedded").waitFor()
    await page.locator("[data-runtime=remote]").getByText("Remote").first().waitFor()
    await screenshot(page, "runtimes")
    assert.deepStrictEqual(await axeViolations(page), [])
    await remote.proc.stop()
    await page.locator("[data-testid=runtime-status-remote][data-status=offline]").waitFor()
    await screenshot(page, "runtimes-offline")
    // Its workers cannot be listed now: the typed error is shown in words.
    await page.getByRole("link", { name: "Workers on Remote box →" }).click()
    await page.getByRole("alert").filter({ hasText: "The runtime cannot be reached right now." }).waitFor()
    await page.goto(`${backend.url}/runtimes`)
    remote = await startRuntime(dataDir, remote.port)
    await page.locator("[data-testid=runtime-status-remote][data-status=online]").waitFor({ timeout: 120_000 })
    assert.strictEqual(await remoteBadge.getAttribute("data-status"), "online")
    await page.context().close()
  })

  it("resumes after a reload mid-turn from the kept cursor, with no entry shown twice", async () => {
    const slowId = await createSlow("local", "Reloaded")
    const page = await signedIn()
    await page.goto(`${backend.url}/runtimes/local/workers/${slowId}`)
    await page.getByRole("heading", { name: "Reloaded", level: 1 }).waitFor()
    await page.locator("[data-health=live]").waitFor()
    const text = "z".repeat(600)
    await page.getByLabel("Message").fill(text)
    await page.getByLabel("Message").press("Enter")
    await until("streamed text", async () => {
      const shown = await page.locator("[data-kind=streaming] .msg-text").textContent().catch(() => "")
      return (shown ?? "").includes("zz") ? true : undefined
    })
    const kept = await page.evaluate(() => sessionStorage.getItem("yoi.events.cursor"))
    assert.isString(kept)
    const streams: Array<string> = []
    page.on("request", (request) => {
      if (new URL(request.url()).pathname === "/api/events") streams.push(request.url())
    })
    await page.reload()
    await page.locator("[data-testid=worker-status][data-status=running]").waitFor()
    await page.locator("[data-kind=assistant_message]").waitFor({ timeout: 120_000 })
    await page.locator("[data-testid=worker-status][data-status=idle]").waitFor()
    assert.include(streams[0] ?? "", "cursor=")
    assert.strictEqual(await page.locator("[data-kind=user_input]").count(), 1)
    assert.strictEqual(await page.locator("[data-kind=assistant_message]").count(), 1)
    assert.strictEqual(await page.locator("[data-kind=assistant_message] .msg-text").textContent(), text)
    const indices = await page.locator("[data-entry]").evaluateAll((els) => els.map((e) => e.getAttribute("data-entry")))
    assert.deepStrictEqual(indices, ["0", "1"])
    await page.context().close()
  })

  it("scrolls a 5,000-entry transcript without rendering every entry", async () => {
    const page = await signedIn()
    await page.goto(`${backend.url}/runtimes/local/workers/${LONG_WORKER}`)
    const log = page.getByRole("log", { name: "Conversation" })
    await page.locator("[role=log][data-count='5000']").waitFor({ timeout: 120_000 })
    await page.locator("[data-entry='4999']").waitFor()
    assert.isBelow(await page.locator(".vrow").count(), 150)
    await screenshot(page, "worker-5000")
    await log.evaluate((el) => void (el.scrollTop = 0))
    await page.locator("[data-entry='0']").waitFor()
    assert.strictEqual(await page.locator("[data-entry='0'] .msg-text").textContent(), "message 1")
    assert.strictEqual(await page.locator("[data-entry='4999']").count(), 0)
    await log.evaluate((el) => void (el.scrollTop = el.scrollHeight / 2))
    await until("the middle of the transcript", async () => {
      const shown = await page.locator("[data-entry]").evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-entry"))))
      return shown.some((i) => i > 1_500 && i < 3_500) ? shown : undefined
    })
    assert.isBelow(await page.locator(".vrow").count(), 150)
    await page.context().close()
  })

  it("lists every worker across runtimes and pages the audit, filtered by runtime, worker and action", async () => {
    const page = await signedIn()
    await page.goto(`${backend.url}/workers`)
    await page.getByRole("heading", { name: "Workers", level: 1 }).waitFor()
    await page.getByRole("link", { name: "Companion", exact: true }).last().waitFor()
    await page.getByRole("link", { name: "Slow on remote" }).waitFor()
    await screenshot(page, "workers")
    assert.deepStrictEqual(await axeViolations(page), [])

    await page.getByRole("link", { name: "Audit" }).click()
    await page.getByRole("heading", { name: "Audit", level: 1 }).waitFor()
    await page.locator("tr[data-audit-action]").first().waitFor()
    await screenshot(page, "audit")
    assert.deepStrictEqual(await axeViolations(page), [])
    await page.getByLabel("Action").selectOption("delete")
    await until("only deletes", async () => {
      const actions = await page.locator("tr[data-audit-action]").evaluateAll((els) =>
        els.map((e) => e.getAttribute("data-audit-action")))
      return actions.length >= 2 && actions.every((a) => a === "delete") ? actions : undefined
    })
    await page.getByLabel("Runtime").selectOption("remote")
    await until("the remote's delete only", async () => {
      const rows = await page.locator("tr[data-audit-action] td:nth-child(4)").allTextContents()
      return rows.length >= 1 && rows.every((r) => r === "remote") ? rows : undefined
    })
    await page.getByLabel("Action").selectOption("")
    await page.getByLabel("Runtime").selectOption("")
    await page.getByLabel("Worker").fill("companion")
    await until("the Companion's commands only", async () => {
      const rows = await page.locator("tr[data-audit-action] td:nth-child(5)").allTextContents()
      return rows.length > 0 && rows.every((r) => r === "companion") ? rows : undefined
    })
    await page.context().close()
  })

  it("asked nothing of any origin but the Backend's, and broke no CSP rule", () => {
    assert.isAbove(requested.length, 50)
    const foreign = requested.filter((url) => !url.startsWith(`${backend.url}/`) && !url.startsWith("data:"))
    assert.deepStrictEqual(foreign, [])
    assert.deepStrictEqual(consoleErrors.filter((e) => /Content Security Policy/i.test(e)), [])
  })
})
