import { CliConfig, HelpDoc, Options, ValidationError } from "@effect/cli"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import type { FileSystem, Path, Terminal } from "@effect/platform"
import { Config, Data, Effect, Either, LogLevel } from "effect"

// The server binaries' flags on `@effect/cli` `Options`: each flag falls back to its environment variable
// (`Options.withFallbackConfig`), so the flag wins, then the variable, then the default. Values are read as text and
// parsed here, so that a bad value, from either source, is one line naming both.

/** Why the command line was refused; `usage` asks for the usage text after the message. */
export class FlagError extends Data.TaggedError("FlagError")<{ readonly message: string; readonly usage: boolean }> {}

const invalid = (message: string) => ValidationError.invalidValue(HelpDoc.p(message))

/** A text flag with its environment variable. */
export const text = (name: string, env: string): Options.Options<string> =>
  Options.text(name).pipe(Options.withFallbackConfig(Config.string(env)))

/** A boolean flag (present means true) with its environment variable (`true`, `false`, `1`, `0`, `yes`, `no`...). */
export const boolean = (name: string, env: string): Options.Options<boolean> =>
  Options.boolean(name).pipe(Options.withFallbackConfig(Config.boolean(env)))

/** A text flag parsed by `parse`; a failure names the flag and its variable. */
export const parsed = <A>(
  name: string,
  env: string,
  parse: (text: string) => Either.Either<A, string>
) =>
  (options: Options.Options<string>): Options.Options<A> =>
    Options.mapEffect(options, (value) =>
      Either.match(parse(value), {
        onLeft: (message) => Effect.fail(invalid(`--${name} (${env}): ${message}`)),
        onRight: Effect.succeed
      }))

export const parseInteger = (min: number) => (text: string): Either.Either<number, string> => {
  const n = Number(text.trim())
  return /^-?\d+$/.test(text.trim()) && Number.isSafeInteger(n) && n >= min
    ? Either.right(n)
    : Either.left(`expected an integer of at least ${min}, got ${JSON.stringify(text)}`)
}

/** An integer flag with a default. */
export const integer = (name: string, env: string, fallback: number, min = 0): Options.Options<number> =>
  text(name, env).pipe(Options.withDefault(String(fallback)), parsed(name, env, parseInteger(min)))

const levels: ReadonlyArray<readonly [string, LogLevel.LogLevel]> = [
  ["all", LogLevel.All],
  ["trace", LogLevel.Trace],
  ["debug", LogLevel.Debug],
  ["info", LogLevel.Info],
  ["warn", LogLevel.Warning],
  ["warning", LogLevel.Warning],
  ["error", LogLevel.Error],
  ["fatal", LogLevel.Fatal],
  ["off", LogLevel.None],
  ["none", LogLevel.None]
]

export const parseLogLevel = (text: string): Either.Either<LogLevel.LogLevel, string> => {
  const found = levels.find(([name]) => name === text.trim().toLowerCase())
  return found === undefined
    ? Either.left(`expected one of all, trace, debug, info, warn, error, off; got ${JSON.stringify(text)}`)
    : Either.right(found[1])
}

/** `--log-level` (also `@effect/cli`'s built-in option of that name, which `parse` folds into this one). */
export const logLevel = (env: string): Options.Options<LogLevel.LogLevel> =>
  text("log-level", env).pipe(Options.withDefault("info"), parsed("log-level", env, parseLogLevel))

/** What a command line asks for: run with these values, or print a text (help, completions, version) and exit. */
export type Parsed<A> =
  | { readonly _tag: "Run"; readonly value: A }
  | { readonly _tag: "Print"; readonly text: string }

export interface Spec<A> {
  readonly name: string
  readonly version: string
  readonly options: Options.Options<A>
  /** The hand-written usage, printed for `--help` and after an unknown flag. */
  readonly usage: string
  /** Puts the level of the built-in `--log-level` into the values. */
  readonly withLogLevel: (value: A, level: LogLevel.LogLevel) => A
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g
const plain = (doc: HelpDoc.HelpDoc) => HelpDoc.toAnsiText(doc).replace(ANSI, "").trim().replace(/\n+/g, " ")

const withoutLogLevel = (argv: ReadonlyArray<string>) =>
  argv.filter((arg, i) => !(arg === "--log-level" || arg.startsWith("--log-level=") || argv[i - 1] === "--log-level"))

/**
 * Parses `argv` (the arguments after the program) with `@effect/cli`. `--help` prints the spec's usage,
 * `--completions <shell>` a completion script, `--version` the version. Anything it cannot read is a `FlagError`
 * with one line.
 */
export const parse = <A>(
  spec: Spec<A>,
  argv: ReadonlyArray<string>
): Effect.Effect<Parsed<A>, FlagError, FileSystem.FileSystem | Path.Path | Terminal.Terminal> => {
  const descriptor = Descriptor.make(spec.name, spec.options)
  const known = new Set(names(spec.options))
  type R = FileSystem.FileSystem | Path.Path | Terminal.Terminal
  const run = (args: ReadonlyArray<string>): Effect.Effect<Parsed<A>, FlagError, R> =>
    Descriptor.parse(descriptor, [spec.name, ...args], CliConfig.defaultConfig).pipe(
      Effect.mapError((e) => new FlagError({ message: plain(e.error), usage: false })),
      Effect.flatMap((directive): Effect.Effect<Parsed<A>, FlagError, R> => {
        if (directive._tag === "UserDefined") {
          const [first] = directive.leftover
          if (first === undefined) return Effect.succeed({ _tag: "Run", value: directive.value.options })
          const name = first.split("=")[0]!
          return Effect.fail(new FlagError({
            message: known.has(name)
              ? `${name} needs a value`
              : first.startsWith("-")
                ? `Unknown option '${first}'`
                : `Unexpected argument '${first}'`,
            usage: true
          }))
        }
        const option = directive.option
        switch (option._tag) {
          case "ShowHelp":
            return Effect.succeed({ _tag: "Print", text: spec.usage })
          case "ShowVersion":
            return Effect.succeed({ _tag: "Print", text: `${spec.name} ${spec.version}` })
          case "ShowCompletions":
            return Effect.map(
              option.shellType === "bash"
                ? Descriptor.getBashCompletions(descriptor, spec.name)
                : option.shellType === "zsh"
                  ? Descriptor.getZshCompletions(descriptor, spec.name)
                  : Descriptor.getFishCompletions(descriptor, spec.name),
              (lines) => ({ _tag: "Print", text: lines.join("\n") })
            )
          case "SetLogLevel":
            return Effect.map(run(withoutLogLevel(args)), (result) =>
              result._tag === "Run" ? { _tag: "Run", value: spec.withLogLevel(result.value, option.level) } : result)
          case "ShowWizard":
            return Effect.fail(new FlagError({ message: "Unknown option '--wizard'", usage: true }))
        }
      })
    )
  return run(argv)
}

/** Every flag name (`--bind`, ...) the options know. */
const names = <A>(options: Options.Options<A>): ReadonlyArray<string> =>
  Array.from(HelpDoc.toAnsiText(Options.getHelp(options)).replace(ANSI, "").matchAll(/--[a-z][a-z0-9-]*/g), (m) => m[0])
