import { type RawReply, runtimeCatalogue, untyped } from "../src/testing.js"

export { type RawReply, send } from "../src/testing.js"

/** Why an answer is not a typed 4xx of the runtime's catalogue with its status (undefined when it is). */
export const notTyped4xx = (reply: RawReply, options: { readonly success?: boolean } = {}): string | undefined =>
  untyped(reply, runtimeCatalogue, options)
