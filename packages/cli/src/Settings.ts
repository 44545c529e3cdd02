import { FileSystem, Path } from "@effect/platform"
import { Config, Effect, Option, Redacted, Schema } from "effect"
import { UsageError } from "./Errors.js"

/** What `yoi login` stores: the Backend's URL and its token. */
export const StoredLogin = Schema.Struct({
  url: Schema.String,
  token: Schema.String
})
export type StoredLogin = typeof StoredLogin.Type

export const DEFAULT_URL = "http://127.0.0.1:8787"

/** `$XDG_CONFIG_HOME/yoi/config.json`, or `~/.config/yoi/config.json`. */
export const configFile = Effect.gen(function*() {
  const path = yield* Path.Path
  const xdg = yield* Config.option(Config.nonEmptyString("XDG_CONFIG_HOME"))
  const home = yield* Config.option(Config.nonEmptyString("HOME"))
  const base = Option.isSome(xdg)
    ? xdg.value
    : path.join(Option.getOrElse(home, () => "."), ".config")
  return path.join(base, "yoi", "config.json")
}).pipe(Effect.orElseSucceed(() => ".yoi-config.json"))

const decodeStored = Schema.decodeUnknownOption(Schema.parseJson(StoredLogin))

/** The stored login, if any; an unreadable file is an error that names it. */
export const readLogin = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const file = yield* configFile
  if (!(yield* fs.exists(file).pipe(Effect.orElseSucceed(() => false)))) return Option.none<StoredLogin>()
  const text = yield* fs.readFileString(file).pipe(
    Effect.mapError(() => new UsageError({ message: `cannot read ${file}` }))
  )
  return yield* Option.match(decodeStored(text), {
    onNone: () => Effect.fail(new UsageError({ message: `${file} is not a yoi config (expected {"url", "token"})` })),
    onSome: (login) => Effect.succeed(Option.some(login))
  })
})

/** Writes the login readable by its owner only (0600), in a directory only its owner can enter. */
export const writeLogin = (login: StoredLogin) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const file = yield* configFile
    const fail = () => new UsageError({ message: `cannot write ${file}` })
    yield* fs.makeDirectory(path.dirname(file), { recursive: true, mode: 0o700 }).pipe(Effect.mapError(fail))
    const temp = `${file}.${process.pid}.tmp`
    yield* fs.writeFileString(temp, `${JSON.stringify(login, null, 2)}\n`, { mode: 0o600 }).pipe(Effect.mapError(fail))
    yield* fs.chmod(temp, 0o600).pipe(Effect.mapError(fail))
    yield* fs.rename(temp, file).pipe(Effect.mapError(fail))
    return file
  })

/** Where commands go: the Backend (default) or, for operators, one runtime directly. */
export type Target =
  | { readonly _tag: "Backend"; readonly url: string; readonly token: Option.Option<Redacted.Redacted> }
  | { readonly _tag: "Runtime"; readonly url: string; readonly token: Option.Option<Redacted.Redacted> }

/** The connection flags; each already fell back to its env var (`YOI_URL`, `YOI_RUNTIME_URL`, ...). */
export interface ConnectionFlags {
  readonly url: Option.Option<string>
  readonly runtimeUrl: Option.Option<string>
  readonly runtimeToken: Option.Option<Redacted.Redacted>
}

const normalizeUrl = (text: string, flag: string) =>
  URL.canParse(text) && /^https?:$/.test(new URL(text).protocol)
    ? Effect.succeed(new URL(text).toString().replace(/\/+$/, ""))
    : Effect.fail(new UsageError({ message: `${flag} must be an http(s) URL, got ${JSON.stringify(text)}` }))

/** Flag, then env (both in `flags`), then the config file written by `yoi login`, then the local default. */
export const resolveTarget = (flags: ConnectionFlags) =>
  Effect.gen(function*() {
    if (Option.isSome(flags.runtimeUrl)) {
      const url = yield* normalizeUrl(flags.runtimeUrl.value, "--runtime-url")
      return { _tag: "Runtime", url, token: flags.runtimeToken } as Target
    }
    const envToken = yield* Config.option(Config.redacted("YOI_TOKEN")).pipe(Effect.orElseSucceed(() => Option.none()))
    const stored = yield* readLogin
    const url = yield* normalizeUrl(
      Option.getOrElse(
        Option.orElse(flags.url, () => Option.map(stored, (s) => s.url)),
        () => DEFAULT_URL
      ),
      "--url"
    )
    // A stored token belongs to the stored URL: it is never sent to another server.
    const storedToken = Option.flatMap(stored, (s) =>
      s.url.replace(/\/+$/, "") === url ? Option.some(Redacted.make(s.token)) : Option.none()
    )
    return { _tag: "Backend", url, token: Option.orElse(envToken, () => storedToken) } as Target
  })
