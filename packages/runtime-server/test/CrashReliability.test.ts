import { writeTestConfig } from "@yoi/runtime-server/testing"
import { echo } from "@yoi/worker-runtime/testing"
import { assert, describe, it } from "@effect/vitest"
import { Cursor, SseWire } from "@yoi/worker-runtime"
import { Effect, Either } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as Http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

// The fast subset of scripts/reliability/crash.ts: the yoi-runtime binary on SQLite is SIGKILLed in the middle of
// streaming turns, restarted on the same store, and nothing it acknowledged or sent to a reader may be missing.

const BIN = fileURLToPath(new URL("../bin/yoi-runtime.mjs", import.meta.url))
const TOKEN = "crash-test-token-0123456789"
const TERMINAL = new Set(["turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"])

interface Running {
  readonly child: ChildProcess
  readonly url: string
  readonly exited: Promise<unknown>
}

const start = (dir: string): Promise<Running> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [
      BIN,
      "--runtime-id",
      "crash-test",
      "--bind",
      "127.0.0.1:0",
      "--store",
      `sqlite:${path.join(dir, "runtime.db")}`,
      "--token-file",
      path.join(dir, "token"),
      "--log-level",
      "error",
      "--config",
      writeTestConfig(dir)
    ], { env: { PATH: process.env.PATH ?? "" }, stdio: ["ignore", "pipe", "pipe"] })
    const exited = new Promise((r) => child.once("exit", r))
    let out = ""
    let err = ""
    child.stderr!.on("data", (c: Buffer) => (err += c.toString()))
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString()
      const match = /listening on (http:\/\/\S+)/.exec(out)
      if (match !== null) resolve({ child, url: match[1]!, exited })
    })
    void exited.then(() => reject(new Error(`yoi-runtime exited before it was ready: ${err}`)))
  })

const call = async (
  base: string,
  method: string,
  route: string,
  body?: unknown
): Promise<{ status: number; json: any }> => {
  const response = await fetch(base + route, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.text()
  return { status: response.status, json: text === "" ? undefined : JSON.parse(text) }
}

interface Frame {
  readonly id: string | undefined
  readonly event: string | undefined
  readonly data: any
}

/** Reads an event stream into `frames` until `close` (or the server goes away). */
const follow = (url: string, lastEventId?: string) => {
  const frames: Array<Frame> = []
  const parser = new SseWire.SseParser()
  const request = Http.get(url, {
    headers: { authorization: `Bearer ${TOKEN}`, ...(lastEventId === undefined ? {} : { "last-event-id": lastEventId }) }
  }, (response) => {
    response.setEncoding("utf8")
    response.on("data", (chunk: string) => {
      for (const item of Either.getOrThrow(parser.feed(chunk))) {
        if (item._tag === "Id") frames.push({ id: item.id, event: undefined, data: undefined })
        if (item._tag === "Event") frames.push({ id: item.id, event: item.event, data: JSON.parse(item.data) })
      }
    })
  })
  request.on("error", () => {})
  return { frames, close: () => request.destroy() }
}

/** A position mark carries the seq of the position it names, not an event of its own. */
const isMark = (f: Frame) => f.event === "stream.live" || f.event === "stream.bookmark"

const seqOf = (cursor: string) => Either.getOrThrow(Cursor.decode(cursor)).seq
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("crash safety of the yoi-runtime binary on SQLite", () => {
  it.live("SIGKILL mid-turn, three times: every acknowledged input and every event sent is kept, turns end once", () =>
    Effect.promise(async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "yoi-crash-test-"))
      fs.writeFileSync(path.join(dir, "token"), TOKEN)
      let running = await start(dir)
      const workers = ["c0", "c1", "c2", "c3"]
      for (const w of workers) {
        const created = await call(running.url, "POST", "/v1/workers", {
          worker_id: w,
          display_name: w,
          engine: echo({ chunk_size: 3, delay_ms: 5 })
        })
        assert.strictEqual(created.status, 201)
      }
      const acked: Array<{ worker: string; turn: string; text: string }> = []
      const seen = new Map<number, Frame>()
      let interrupted = 0
      let cursor: string | undefined
      for (let round = 0; round < 3; round++) {
        const reader = follow(`${running.url}/v1/events${cursor === undefined ? "?cursor=earliest" : ""}`, cursor)
        let killed = false
        const refused: Array<string> = []
        // A request cut by the kill rejects: it was not acknowledged, so nothing is expected of it.
        const drivers = workers.map(async (worker) => {
          for (let n = 0; !killed; n++) {
            const text = `round ${round} turn ${n} ${"word ".repeat(10 + n)}`
            const reply = await call(running.url, "POST", `/v1/workers/${worker}/input`, { text })
            if (reply.status !== 202) refused.push(JSON.stringify(reply.json))
            else acked.push({ worker, turn: reply.json.turn_id, text })
            while ((await call(running.url, "GET", `/v1/workers/${worker}`)).json.status === "running") await sleep(10)
          }
        }).map((p) => p.catch(() => undefined))
        await sleep(400 + Math.floor(Math.random() * 800))
        killed = true
        running.child.kill("SIGKILL")
        await Promise.all([running.exited, ...drivers])
        reader.close()
        assert.deepStrictEqual(refused, [])
        for (const f of reader.frames) {
          if (f.data?.seq !== undefined && f.event !== "turn.delta" && !isMark(f)) seen.set(f.data.seq, f)
        }
        running = await start(dir)

        const head = (await call(running.url, "GET", "/v1/runtime")).json.cursor as string
        const log = follow(`${running.url}/v1/events?cursor=earliest`)
        while (!log.frames.some((f) => f.id === head)) await sleep(20)
        log.close()
        const bySeq = new Map(
          log.frames.filter((f) => f.data?.seq !== undefined && !isMark(f)).map((f) => [f.data.seq as number, f])
        )
        for (const [seq, f] of seen) assert.deepStrictEqual(bySeq.get(seq)?.data, f.data, `event ${seq} sent before the kill`)
        const ends = new Map<string, number>()
        for (const f of bySeq.values()) {
          if (TERMINAL.has(f.event ?? "")) ends.set(f.data.turn_id, (ends.get(f.data.turn_id) ?? 0) + 1)
        }
        for (const { text, turn, worker } of acked) {
          assert.strictEqual(ends.get(turn), 1, `turn ${turn} ends exactly once`)
          const page = await call(running.url, "GET", `/v1/workers/${worker}/transcript?limit=500`)
          const input = page.json.items.find((e: any) => e.turn_id === turn && e.data._tag === "user_input")
          assert.strictEqual(input?.data.text, text, `acknowledged input of ${turn}`)
        }
        interrupted = Array.from(bySeq.values()).filter((f) => f.event === "turn.interrupted").length
        for (const w of workers) {
          const detail = (await call(running.url, "GET", `/v1/workers/${w}`)).json
          assert.strictEqual(detail.status, "idle")
          assert.isUndefined(detail.current_turn_id)
        }

        // The reader's last cursor resumes with exactly the durable events after it.
        const last = reader.frames.filter((f) => f.id !== undefined).at(-1)!.id!
        const resumed = follow(`${running.url}/v1/events`, last)
        const want = Array.from(bySeq.keys()).filter((s) => s > seqOf(last)).sort((a, b) => a - b)
        while (!resumed.frames.some((f) => f.id === head) && want.length > 0) await sleep(20)
        resumed.close()
        assert.deepStrictEqual(
          resumed.frames.filter((f) => f.data?.seq !== undefined && !isMark(f)).map((f) => f.data.seq),
          want
        )
        cursor = last
      }
      running.child.kill("SIGTERM")
      await running.exited
      fs.rmSync(dir, { recursive: true, force: true })
      assert.isAbove(acked.length, 3)
      assert.isAbove(interrupted, 0, "the turns cut by the kills are marked interrupted")
    }), 120_000)
})
