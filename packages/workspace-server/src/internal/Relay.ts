/**
 * A successful answer of a remote runtime that the Backend passes on byte for byte. The value is the parsed body,
 * checked against the Backend's own view schema with no excess property allowed, so it is exactly what encoding it
 * again would produce; the text rides along so that the handler can send it without re-encoding. A value that is
 * copied or changed (a worker rebased onto another runtime id) loses its text and is encoded as usual.
 */
const texts = new WeakMap<object, string>()

export const attach = <A extends object>(value: A, text: string): A => {
  texts.set(value, text)
  return value
}

/** The upstream text of a relayed value, if it is one. */
export const textOf = (value: unknown): string | undefined =>
  typeof value === "object" && value !== null ? texts.get(value) : undefined
