import { Either } from "effect"

/** Where a server listens. */
export interface Bind {
  readonly host: string
  readonly port: number
}

export interface ParseOptions {
  /** The host for `:port`; without it a host is required. */
  readonly anyHost?: string | undefined
}

/**
 * The one parser of `--bind` values, for `yoi-runtime` and the Backend: `host:port`, `[v6]:port`, and `:port` where
 * the binary allows it (`anyHost`). Fails with no message of its own: each binary words its refusal.
 */
export const parse = (text: string, options: ParseOptions = {}): Either.Either<Bind, void> => {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):([0-9]{1,5})$/.exec(text.trim())
  const port = match === null ? NaN : Number(match[3])
  if (match === null || !(port >= 0 && port <= 65535)) return Either.left(undefined)
  const host = match[1] ?? match[2] ?? ""
  if (host !== "") return Either.right({ host, port })
  return options.anyHost === undefined ? Either.left(undefined) : Either.right({ host: options.anyHost, port })
}
