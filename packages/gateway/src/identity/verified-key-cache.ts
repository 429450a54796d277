import { createHash } from 'node:crypto'

/** How long a successful scrypt check is remembered unless told otherwise. */
export const DEFAULT_VERIFIED_KEY_TTL_MS = 60_000
const DEFAULT_MAX_ENTRIES = 10_000

interface Entry {
  keyId: string
  /** The stored hash the token was checked against; a different row never matches. */
  storedHash: string
  expiresAt: number
}

/**
 * Remembers, for a short time, which API key tokens already passed the scrypt
 * check.
 *
 * Why it exists: scrypt is deliberately slow (a few ms and 16 MiB per check),
 * and every API call authenticates, so without it a busy agent would spend more
 * time proving who it is than asking for decisions. Why it is safe: entries are
 * keyed by the SHA-256 of the whole token (the token itself is never kept), so
 * only the exact token that was verified hits; a hit only skips the hash, the
 * key's row is still read on every request, so a revocation made by any replica
 * takes effect at once; revoking through this process also drops the entries;
 * and the TTL bounds how long a verified secret's trace stays in memory.
 */
export class VerifiedKeyCache {
  readonly #ttlMs: number
  readonly #maxEntries: number
  readonly #entries = new Map<string, Entry>()
  /** Checks running now, so a burst of calls with one new token costs one scrypt, not one each. */
  readonly #inFlight = new Map<string, Promise<boolean>>()

  constructor(options: { ttlMs?: number; maxEntries?: number } = {}) {
    this.#ttlMs = options.ttlMs ?? DEFAULT_VERIFIED_KEY_TTL_MS
    this.#maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES
    if (!(this.#ttlMs >= 0) || !Number.isInteger(this.#maxEntries) || this.#maxEntries < 1) {
      throw new TypeError('VerifiedKeyCache needs a non-negative ttlMs and a positive integer maxEntries')
    }
  }

  /** True when `token` was verified against `storedHash` of key `keyId` less than the TTL ago. */
  has(token: string, keyId: string, storedHash: string, now: number): boolean {
    const digest = tokenDigest(token)
    const entry = this.#entries.get(digest)
    if (entry === undefined) return false
    if (entry.expiresAt <= now) {
      this.#entries.delete(digest)
      return false
    }
    return entry.keyId === keyId && entry.storedHash === storedHash
  }

  /** Records that `token` passed the scrypt check against `storedHash`. */
  remember(token: string, keyId: string, storedHash: string, now: number): void {
    if (this.#ttlMs === 0) return
    const digest = tokenDigest(token)
    this.#entries.delete(digest)
    // Maps iterate in insertion order, so the first key is the oldest entry.
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next()
      if (oldest.done === true) break
      this.#entries.delete(oldest.value)
    }
    this.#entries.set(digest, { keyId, storedHash, expiresAt: now + this.#ttlMs })
  }

  /**
   * True when `token` is remembered as verified, else runs `verify` (joining
   * a check of the same token and stored hash already under way) and
   * remembers a success.
   */
  async verify(token: string, keyId: string, storedHash: string, now: number, check: () => Promise<boolean>): Promise<boolean> {
    if (this.has(token, keyId, storedHash, now)) return true
    const flightKey = `${tokenDigest(token)}\u0000${storedHash}`
    let flight = this.#inFlight.get(flightKey)
    if (flight === undefined) {
      flight = check().finally(() => this.#inFlight.delete(flightKey))
      this.#inFlight.set(flightKey, flight)
    }
    const ok = await flight
    if (ok) this.remember(token, keyId, storedHash, now)
    return ok
  }

  /** Forgets every token of one key; called when the key is revoked. */
  forgetKey(keyId: string): void {
    for (const [digest, entry] of this.#entries) {
      if (entry.keyId === keyId) this.#entries.delete(digest)
    }
  }

  /** Number of entries held, expired ones included until they are next touched. */
  get size(): number {
    return this.#entries.size
  }
}

function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}
