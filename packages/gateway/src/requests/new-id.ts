import { randomFillSync } from 'node:crypto'

/** Random bytes drawn from the CSPRNG a pool at a time, each byte handed out once. */
const randomPool = Buffer.alloc(4096)
let randomOffset = randomPool.length

function randomHex(bytes: number): string {
  if (randomOffset + bytes > randomPool.length) {
    randomFillSync(randomPool)
    randomOffset = 0
  }
  const hex = randomPool.toString('hex', randomOffset, randomOffset + bytes)
  randomOffset += bytes
  return hex
}

/**
 * Ids start with the time, so new rows land at the end of their indexes
 * instead of all over them, and end with 96 random bits, so they cannot be
 * guessed.
 */
const newId = (prefix: string, now: number): string => `${prefix}${now.toString(16).padStart(12, '0')}${randomHex(12)}`

/** `req_` + time + 96 random bits. */
export const newRequestId = (now: number): string => newId('req_', now)

/** `grt_` + time + 96 random bits; a grant's `jti`. */
export const newGrantId = (now: number): string => newId('grt_', now)
