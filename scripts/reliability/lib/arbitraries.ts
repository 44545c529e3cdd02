/**
 * `fast-check` arbitraries for bad input: odd text, mis-encoded path segments, query values, request bodies that
 * must not decode, wrong content types, forged credentials and abusive headers.
 */
import { echo } from "@yoi/worker-runtime/testing"
import { Domain, Runtime } from "@yoi/worker-runtime"
import { Effect, Either, Schema } from "effect"
import * as fc from "fast-check"

/** Strings chosen to break naive code: traversal, encodings, control and bidi characters, lone surrogates. */
export const nastyConstants = [
  "",
  " ",
  ".",
  "..",
  "../",
  "../..",
  "../../etc/passwd",
  "..\\..\\windows",
  "%2e%2e",
  "%2e%2e%2f",
  "a/b",
  "a\\b",
  "a?b=c",
  "a#b",
  "a;b",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "\udfff",
  "\u202e",
  "\ufeff",
  "\u200b",
  "🙂",
  "a\r\nb",
  "\t",
  "<script>alert(1)</script>",
  "' OR 1=1 --",
  "${process.env}",
  "{{constructor}}",
  "__proto__",
  "constructor",
  "prototype",
  "NaN",
  "-1",
  "1e309",
  "0x10",
  "null",
  "undefined",
  "true",
  "[]",
  "{}",
  "w_",
  "W_UPPER",
  "-leading-dash",
  "_leading_underscore"
]

export const oddText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...nastyConstants) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 20 }) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 20_000 }).map((n) => "a".repeat(n)) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom(...nastyConstants), fc.string({ maxLength: 8 })).map(([a, b]) => a + b)
  }
)

const utf8Escape = (text: string) =>
  Array.from(Buffer.from(text, "utf8"), (b) => `%${b.toString(16).padStart(2, "0").toUpperCase()}`).join("")

/** Characters that would break the request line itself are always escaped. */
const rawSegment = (text: string) =>
  Array.from(text, (ch) => (/^[\x21-\x7e]$/.test(ch) && ch !== "?" && ch !== "#" ? ch : utf8Escape(ch))).join("")

/** `encodeURIComponent` without its throw on lone surrogates (they become U+FFFD, as in any UTF-8 encoder). */
const componentSegment = (text: string) =>
  Array.from(text, (ch) => (/^[A-Za-z0-9\-_.!~*'()]$/.test(ch) ? ch : utf8Escape(ch))).join("")

export type SegmentEncoding = "component" | "raw" | "double" | "all"

export const encodeSegment = (text: string, how: SegmentEncoding): string => {
  switch (how) {
    case "component":
      return componentSegment(text)
    case "raw":
      return rawSegment(text)
    case "double":
      return componentSegment(componentSegment(text))
    case "all":
      return utf8Escape(text)
  }
}

/** Broken escapes that a decoder may choke on. */
const brokenEscapes = [
  "%",
  "%%",
  "%zz",
  "%ff",
  "%E0%A4%A",
  "%c0%ae%c0%ae",
  "%ED%A0%80",
  "%00",
  "%2F",
  "%2f..%2f",
  "%u002e",
  "%25",
  "%252e"
]

/** A path segment for an id, with the text it stands for (the fixture ids are kept out by the caller). */
export const segment: fc.Arbitrary<{ readonly text: string; readonly encoded: string }> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(oddText, fc.constantFrom<SegmentEncoding>("component", "raw", "double", "all")).map(([text, how]) => ({ text, encoded: encodeSegment(text, how) })) },
  { weight: 1, arbitrary: fc.constantFrom(...brokenEscapes).map((e) => ({ text: e, encoded: e })) }
)

/** A query value: numbers in every spelling, odd text, broken escapes. */
export const queryValue: fc.Arbitrary<string> = fc.oneof(
  fc.integer().map(String),
  fc.double().map(String),
  fc.constantFrom("0", "-1", "501", "1000000000000", "1.5", "1e3", "0x10", " 5", "5 ", "+5", "", "earliest"),
  oddText.map((t) => encodeSegment(t, "component")),
  fc.constantFrom(...brokenEscapes),
  fc.base64String({ maxLength: 120 }).map((s) => s.replace(/\+/g, "-").replace(/\//g, "_").replace(/=/g, "")),
  fc.base64String({ maxLength: 60 }).map((s) => `c1.${s.replace(/\+/g, "-").replace(/\//g, "_").replace(/=/g, "")}`)
)

const decodeCreate = Runtime.decodeInput(Domain.CreateWorker)
const decodeSendInput = Runtime.decodeInput(Domain.SendInput)
const decodeJson = Schema.decodeUnknownEither(Schema.parseJson())

/** True when the text is JSON that the schema accepts: such a body is a valid request, not bad input. */
const decodes = (decode: (u: unknown) => Effect.Effect<unknown, unknown>) => (text: string) => {
  const parsed = decodeJson(text)
  return Either.isRight(parsed) && Either.isRight(Effect.runSync(Effect.either(decode(parsed.right))))
}
export const isValidCreate = decodes(decodeCreate)
export const isValidInput = decodes(decodeSendInput)

const baseSpec = {
  display_name: "Fuzz",
  engine: echo({ chunk_size: 4 }),
  system_prompt: "be brief",
  tools: [],
  scope: { allow: [{ path: "/srv/fuzz", access: "read" }], deny: [{ path: "/srv/fuzz/secret" }] },
  metadata: { team: "qa" }
}

const fields = [
  ["display_name"],
  ["worker_id"],
  ["engine"],
  ["engine", "provider"],
  ["engine", "model"],
  ["engine", "base_url"],
  ["engine", "api_key"],
  ["engine", "chunk_size"],
  ["engine", "delay_ms"],
  ["engine", "temperature"],
  ["system_prompt"],
  ["tools"],
  ["tools", "0"],
  ["scope"],
  ["scope", "allow"],
  ["scope", "allow", "0"],
  ["scope", "allow", "0", "path"],
  ["scope", "allow", "0", "access"],
  ["scope", "deny"],
  ["scope", "delegated_from"],
  ["initial_input"],
  ["metadata"],
  ["metadata", "team"],
  ["unknown_field"],
  ["engine", "unknown_field"]
] as const

/** A garbage value for a field: wrong types, out-of-range numbers, huge strings and arrays, deep nesting. */
const garbage: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  oddText,
  fc.constantFrom(-1, 0, 1.5, 2 ** 53, -(2 ** 31), 1e300, true, null, [], {}),
  fc.constantFrom(200_001, 1_000_001).map((n) => "x".repeat(n)),
  fc.integer({ min: 257, max: 20_000 }).map((n) => Array.from({ length: n }, (_, i) => ({ path: `/p${i}`, access: "read" }))),
  fc.integer({ min: 65, max: 300 }).map((n) => Array.from({ length: n }, (_, i) => `k${i}`)),
  fc.integer({ min: 65, max: 200 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, "v"])))
)

const setPath = (value: unknown, path: ReadonlyArray<string>, to: unknown): unknown => {
  if (path.length === 0) return to
  const [head, ...rest] = path
  const base = (value !== null && typeof value === "object" ? value : {}) as Record<string, unknown>
  const copy: Record<string, unknown> | Array<unknown> = Array.isArray(base) ? [...base] : { ...base }
  ;(copy as Record<string, unknown>)[head!] = setPath(base[head!], rest, to)
  return copy
}

const deep = (n: number, inner: string) => "[".repeat(n) + inner + "]".repeat(n)

/** JSON text (or not quite JSON) for a create or input body; the caller filters out what happens to be valid. */
const badBodies = (base: unknown, paths: ReadonlyArray<ReadonlyArray<string>>): fc.Arbitrary<string> =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.tuple(fc.constantFrom(...paths), garbage)
        .map(([path, value]) => JSON.stringify(setPath(base, path, value)))
    },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.nat({ max: 60 }).map((n) => JSON.stringify(base).slice(0, n)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "",
        " ",
        "null",
        "[]",
        "\"text\"",
        "{,}",
        "{'display_name': 'x'}",
        "{\"display_name\": \"x\",}",
        "{\"display_name\": NaN}",
        "{\"display_name\": \"x\"} trailing",
        "{\"display_name\": \"x\" /* comment */}",
        "{\"display_name\": \"\\ud800\", \"engine\": 5}",
        "{\"__proto__\": {\"display_name\": \"x\"}}",
        "{\"constructor\": {\"prototype\": {\"polluted\": true}}}",
        "{\"text\": 1e999}",
        "{\"text\": \"\\u0000\", \"extra\": 1}"
      )
    },
    { weight: 1, arbitrary: fc.integer({ min: 65, max: 150_000 }).map((n) => deep(n, "")) },
    { weight: 1, arbitrary: fc.integer({ min: 65, max: 50_000 }).map((n) => `{"display_name":"d","metadata":{"a":${deep(n, "1")}}}`) },
    { weight: 1, arbitrary: fc.integer({ min: 65, max: 50_000 }).map((n) => `{"text":${"{\"a\":".repeat(n)}1${"}".repeat(n)}}`) }
  )

export const badCreateBody = badBodies(baseSpec, fields).filter((text) => !isValidCreate(text))
export const badInputBody = badBodies({ text: "hello" }, [["text"], ["unknown_field"]]).filter((text) => !isValidInput(text))

/** A valid create spec sent as a form, multipart or XML body, or as JSON under a content type that is not JSON. */
export const wrongContentType: fc.Arbitrary<{ readonly contentType: string; readonly body: string }> = fc.oneof(
  fc.constantFrom(
    { contentType: "application/x-www-form-urlencoded", body: "display_name=Form" },
    { contentType: "application/x-www-form-urlencoded", body: "text=hello" },
    {
      contentType: "multipart/form-data; boundary=b",
      body: "--b\r\nContent-Disposition: form-data; name=\"display_name\"\r\n\r\nMultipart\r\n--b--\r\n"
    },
    {
      contentType: "multipart/form-data; boundary=b",
      body: "--b\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nhello\r\n--b--\r\n"
    },
    { contentType: "application/xml", body: "<worker><display_name>X</display_name></worker>" },
    { contentType: "text/plain", body: "display_name: plain" }
  ),
  fc.tuple(
    fc.constantFrom(
      "text/plain",
      "text/html",
      "application/xml",
      "application/octet-stream",
      "application/x-www-form-urlencoded",
      "multipart/form-data",
      "application/jsonx",
      "json",
      "*/*",
      "application/json-patch+json",
      "text/json;",
      "garbage\u00e9"
    ),
    fc.constantFrom("{\"display_name\":\"Typed\"}", "{\"text\":\"hello\"}")
  ).map(([contentType, body]) => ({ contentType, body }))
)

/** Header values an HTTP client can actually send: visible ASCII and spaces (no CR, LF or NUL). */
const headerText = fc.string({ unit: "binary-ascii", maxLength: 80 }).map((s) => s.replace(/[^ -~]/g, ""))

/** An `Authorization` header that must not be accepted (undefined: none at all), for a given real token. */
export const forgedAuthorization = (token: string): fc.Arbitrary<string | undefined> =>
  fc.oneof(
    fc.constantFrom(
      undefined,
      "",
      "Bearer",
      "Bearer ",
      "bearer",
      `Bearer ${token}x`,
      `Bearer x${token}`,
      `Bearer ${token.toUpperCase()}`,
      `Bearer ${token}${token}`,
      `Bearer  ${token}`,
      `Basic ${Buffer.from(`user:${token}`).toString("base64")}`,
      `Token ${token}`,
      token,
      `Bearer ${"a".repeat(8_000)}`,
      `Bearer ${token.slice(0, -1)}\u00e9`
    ),
    fc.nat({ max: token.length - 1 }).map((n) => `Bearer ${token.slice(0, n)}`),
    fc.nat({ max: token.length - 1 }).map((n) => `Bearer ${token.slice(n)}`),
    fc.tuple(fc.nat({ max: token.length - 1 }), fc.constantFrom("a", "Z", "0", "-", "_")).map(([i, c]) =>
      `Bearer ${token.slice(0, i)}${token[i] === c ? "b" : c}${token.slice(i + 1)}`
    ),
    fc.nat({ max: 64 }).map((n) => `Bearer ${"t".repeat(n)}`),
    headerText.map((s) => `Bearer ${s}`)
  ).filter((h) => h !== `Bearer ${token}`)

/** Extra or malformed request headers, and raw request-line tricks. */
export interface Abuse {
  readonly name: string
  readonly headers?: ReadonlyArray<readonly [string, string]>
  readonly method?: string
  readonly rawHead?: string
}

export const headerAbuse: fc.Arbitrary<Abuse> = fc.oneof(
  fc.integer({ min: 17_000, max: 70_000 }).map((n): Abuse => ({ name: "huge header", headers: [["x-big", "a".repeat(n)]] })),
  fc.integer({ min: 100, max: 3_000 }).map((n): Abuse => ({
    name: "many headers",
    headers: Array.from({ length: n }, (_, i) => [`x-h${i}`, "v"] as const)
  })),
  fc.constantFrom<Abuse>(
    { name: "CL+TE", headers: [["content-length", "5"], ["transfer-encoding", "chunked"]] },
    { name: "two lengths", headers: [["content-length", "1"], ["content-length", "2"]] },
    { name: "negative length", headers: [["content-length", "-1"]] },
    { name: "word length", headers: [["content-length", "abc"]] },
    { name: "huge length", headers: [["content-length", "100000000000000000000"]] },
    { name: "te gzip", headers: [["transfer-encoding", "gzip"]] },
    { name: "expect", headers: [["expect", "100-continue"]] },
    { name: "bad expect", headers: [["expect", "teapot"]] },
    { name: "websocket", headers: [["upgrade", "websocket"], ["connection", "Upgrade"], ["sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="], ["sec-websocket-version", "13"]] },
    { name: "h2c", headers: [["upgrade", "h2c"], ["connection", "Upgrade, HTTP2-Settings"], ["http2-settings", "AAMAAABkAARAAAAAAAIAAAAA"]] },
    { name: "bad header name", headers: [["x y", "1"]] },
    { name: "colon header name", headers: [[":authority", "evil"]] },
    { name: "obs-fold", headers: [["x-fold", "a\r\n\tb"]] },
    { name: "NUL in value", headers: [["x-nul", "a\u0000b"]] },
    { name: "latin1 value", headers: [["x-latin", "\u00e9\u00ff"]] },
    { name: "two hosts", headers: [["host", "a"], ["host", "b"]] },
    { name: "x-request-id abuse", headers: [["x-request-id", `${"r".repeat(300)}\u00e9`]] },
    { name: "forwarded spoof", headers: [["x-forwarded-for", "1.2.3.4"], ["forwarded", "for=evil"], ["x-real-ip", "1.1.1.1"]] },
    { name: "accept weird", headers: [["accept", "text/event-stream"], ["accept-encoding", "gzip, br, zstd"]] },
    { name: "range", headers: [["range", "bytes=0-0"]] },
    { name: "origin", headers: [["origin", "http://evil.example"]] },
    { name: "cookie junk", headers: [["cookie", `${"c=".repeat(2_000)}; yoi_session=x; yoi_session=y`]] },
    { name: "lowercase method", method: "get" },
    { name: "odd method", method: "PROPFIND" },
    { name: "CONNECT", method: "CONNECT" },
    { name: "TRACE", method: "TRACE" },
    { name: "bad request line", rawHead: "GET\r\n\r\n" },
    { name: "HTTP/9.9", rawHead: "GET /healthz HTTP/9.9\r\nhost: x\r\n\r\n" },
    { name: "HTTP/1.0 no host", rawHead: "GET /healthz HTTP/1.0\r\n\r\n" },
    { name: "no host", rawHead: "GET /healthz HTTP/1.1\r\nconnection: close\r\n\r\n" },
    { name: "absolute-form", rawHead: "GET http://evil.example/healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n" },
    { name: "authority-form", rawHead: "CONNECT evil.example:443 HTTP/1.1\r\nhost: evil.example:443\r\n\r\n" },
    { name: "asterisk", rawHead: "OPTIONS * HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n" },
    { name: "space in target", rawHead: "GET /a b HTTP/1.1\r\nhost: x\r\n\r\n" },
    { name: "LF only", rawHead: "GET /healthz HTTP/1.1\nhost: x\nconnection: close\n\n" },
    { name: "binary garbage", rawHead: "\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003" }
  )
)
