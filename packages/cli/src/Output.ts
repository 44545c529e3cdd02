import { Context, Effect, Layer } from "effect"

/** Where output goes, and whether it may be coloured and animated (a terminal, and no `NO_COLOR`). */
export interface OutputService {
  readonly out: (text: string) => Effect.Effect<void>
  readonly err: (text: string) => Effect.Effect<void>
  /** Colour on stdout. */
  readonly color: boolean
  /** Colour and spinners on stderr. */
  readonly errColor: boolean
  readonly json: boolean
}

export class Output extends Context.Tag("@yoi/cli/Output")<Output, OutputService>() {}

const write = (stream: NodeJS.WriteStream) => (text: string) =>
  Effect.async<void>((resume) => {
    if (text.length === 0) return resume(Effect.void)
    stream.write(text, () => resume(Effect.void))
  })

const colorAllowed = (stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv) =>
  stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === "") && env.TERM !== "dumb"

/** The process's stdout and stderr. */
export const layer = (options: { readonly json: boolean }): Layer.Layer<Output> =>
  Layer.sync(Output, () => ({
    out: write(process.stdout),
    err: write(process.stderr),
    color: colorAllowed(process.stdout, process.env),
    errColor: colorAllowed(process.stderr, process.env),
    json: options.json
  }))

const sgr = (open: number, close: number) => (enabled: boolean, text: string) =>
  enabled ? `\u001b[${open}m${text}\u001b[${close}m` : text

export const bold = sgr(1, 22)
export const dim = sgr(2, 22)
export const red = sgr(31, 39)
export const green = sgr(32, 39)
export const yellow = sgr(33, 39)
export const cyan = sgr(36, 39)

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g
const visible = (text: string) => text.replace(ANSI, "").length

/** A plain table: a header row and aligned columns, two spaces apart. */
export const table = (
  header: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  color: boolean
): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? ""))))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c + " ".repeat(widths[i]! - visible(c)))).join("  ").trimEnd()
  return [bold(color, line(header)), ...rows.map(line)].join("\n") + "\n"
}

/** One JSON document (or one NDJSON line). */
export const json = (value: unknown): string => `${JSON.stringify(value, null, 0)}\n`

export const pretty = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`

export const statusColor = (color: boolean, status: string): string => {
  switch (status) {
    case "online":
    case "idle":
    case "ready":
    case "completed":
    case "ok":
      return green(color, status)
    case "running":
    case "degraded":
    case "draining":
    case "cancelled":
      return yellow(color, status)
    case "offline":
    case "stopped":
    case "failed":
    case "interrupted":
    case "denied":
      return red(color, status)
    default:
      return status
  }
}
