// Web Crypto (a global in Node 20+ and every browser), so the ids module bundles for a browser. Random bytes are
// drawn a page at a time: one `getRandomValues` call costs about as much as filling the whole page.
const pool = new Uint8Array(4096)
let offset = pool.length

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

let lastTime = -1
let lastRandom: Array<number> = []

const encodeTime = (time: number): string => {
  let out = ""
  let t = time
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[t % 32] + out
    t = Math.floor(t / 32)
  }
  return out
}

const freshRandom = (): Array<number> => {
  if (offset + 16 > pool.length) {
    globalThis.crypto.getRandomValues(pool)
    offset = 0
  }
  const out = new Array<number>(16)
  for (let i = 0; i < 16; i++) out[i] = pool[offset + i]! % 32
  offset += 16
  return out
}

const increment = (digits: Array<number>): Array<number> => {
  const next = digits.slice()
  for (let i = next.length - 1; i >= 0; i--) {
    if (next[i]! < 31) {
      next[i] = next[i]! + 1
      return next
    }
    next[i] = 0
  }
  return freshRandom()
}

/**
 * A lowercase ULID: 10 characters of millisecond time then 16 of randomness, monotonic within one process so ids
 * made in the same millisecond still sort by creation.
 */
export const ulid = (now: number = Date.now()): string => {
  if (now <= lastTime) {
    lastRandom = increment(lastRandom)
  } else {
    lastTime = now
    lastRandom = freshRandom()
  }
  return encodeTime(lastTime) + lastRandom.map((d) => ALPHABET[d]).join("")
}
