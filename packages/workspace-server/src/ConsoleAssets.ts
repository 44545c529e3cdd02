import { FileSystem, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { Effect, Either, Option } from "effect"
import { createRequire } from "node:module"
import * as NodePath from "node:path"

/**
 * The console's built files (`@yoi/console`'s `dist/`), read once at start and served from memory: `index.html`
 * for `/` and the console's own routes, hashed `/assets/*` cached for a year. Every page carries a strict
 * Content-Security-Policy: scripts, styles, images, fonts and connections from this origin only, nothing inline.
 */
export interface ConsoleAssets {
  readonly index: Uint8Array
  readonly assets: ReadonlyMap<string, { readonly body: Uint8Array; readonly contentType: string }>
}

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'"
].join("; ")

const pageHeaders = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin"
}

const contentTypes: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8"
}

/** The console's client-side routes: each answers `index.html`, and the page routes itself. */
const pageRoute = /^\/(?:|signin|runtimes(?:\/[^/]+(?:\/workers\/[^/]+)?)?|workers|audit)\/?$/

const require = createRequire(import.meta.url)

/** Where `npm ci` (the root `prepare` script) builds the console; `false` when `@yoi/console` is not installed. */
export const defaultDir = (): string | false =>
  Either.try(() => NodePath.join(NodePath.dirname(require.resolve("@yoi/console/package.json")), "dist")).pipe(
    Either.getOrElse(() => false as const)
  )

/** Reads the built console; `None` when it has not been built (the Backend then serves its API only). */
export const load = (dir: string): Effect.Effect<Option.Option<ConsoleAssets>> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const index = yield* fs.readFile(NodePath.join(dir, "index.html")).pipe(Effect.option)
    if (Option.isNone(index)) {
      yield* Effect.logWarning(`the console is not built (no ${dir}/index.html): run npm run build -w @yoi/console`)
      return Option.none()
    }
    const assets = new Map<string, { body: Uint8Array; contentType: string }>()
    const names = yield* fs.readDirectory(NodePath.join(dir, "assets")).pipe(Effect.orElseSucceed(() => []))
    for (const name of names) {
      const body = yield* fs.readFile(NodePath.join(dir, "assets", name)).pipe(Effect.option)
      if (Option.isSome(body)) {
        assets.set(`/assets/${name}`, {
          body: body.value,
          contentType: contentTypes[NodePath.extname(name)] ?? "application/octet-stream"
        })
      }
    }
    return Option.some({ index: index.value, assets })
  }).pipe(Effect.provide(NodeFileSystem.layer))

/** The response for a console path, or `None` for every other request (the API's). */
export const respond = (
  console: ConsoleAssets,
  request: HttpServerRequest.HttpServerRequest
): Option.Option<HttpServerResponse.HttpServerResponse> => {
  if (request.method !== "GET" && request.method !== "HEAD") return Option.none()
  const path = request.url.split("?")[0]!
  const asset = console.assets.get(path)
  if (asset !== undefined) {
    return Option.some(HttpServerResponse.uint8Array(asset.body, {
      contentType: asset.contentType,
      headers: { ...pageHeaders, "cache-control": "public, max-age=31536000, immutable" }
    }))
  }
  if (!pageRoute.test(path)) return Option.none()
  return Option.some(HttpServerResponse.uint8Array(console.index, {
    contentType: "text/html; charset=utf-8",
    headers: { ...pageHeaders, "cache-control": "no-cache" }
  }))
}
