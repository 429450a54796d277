import type { SecretCheckBudget } from '../identity/index.js'

/**
 * Throttles failed authentications per client address in a sliding minute,
 * never a valid key. Each API key whose secret is checked costs a scrypt
 * (milliseconds of CPU and 16 MiB), so an address that keeps presenting bad
 * credentials is throttled: its failed attempts are answered `rate_limited`
 * until the window has room again, and while it is throttled the secret of a
 * key is checked only as long as that key has had fewer than `perKeyLimit`
 * wrong secrets from the address in the window. A valid key from a throttled
 * address is still accepted (one stale cron job must not lock out its host),
 * and the guesses an address can have checked stay bounded: `limit` a minute,
 * plus `perKeyLimit` for each key whose id it knows.
 */
export class FailedAuthLimiter {
  readonly #limit: number
  readonly #perKeyLimit: number
  readonly #windowMs: number
  /** Recent failure times per address, and per address and key id; at most the limit of each is kept. */
  readonly #failures = new Map<string, number[]>()

  constructor(options: { limit: number; perKeyLimit: number; windowMs: number }) {
    this.#limit = options.limit
    this.#perKeyLimit = options.perKeyLimit
    this.#windowMs = options.windowMs
  }

  /** Milliseconds until `address` is no longer throttled, or 0 when it is not. */
  retryAfterMs(address: string, now: number): number {
    const recent = this.#recent(address, now)
    if (recent.length < this.#limit) return 0
    return (recent[recent.length - this.#limit] ?? now) + this.#windowMs - now
  }

  recordFailure(address: string, now: number): void {
    this.#record(address, now, this.#limit)
  }

  /** What `address` may have checked now: every key while it is not throttled, afterwards only keys with few wrong secrets. */
  secretCheckBudget(address: string, now: number): SecretCheckBudget {
    const throttled = this.retryAfterMs(address, now) > 0
    return {
      allows: (keyId) => !throttled || this.#recent(pairOf(address, keyId), now).length < this.#perKeyLimit,
      spent: (keyId) => this.#record(pairOf(address, keyId), now, this.#perKeyLimit),
    }
  }

  #record(key: string, now: number, keep: number): void {
    const recent = this.#recent(key, now)
    recent.push(now)
    // Only the newest `keep` times decide anything; a flood of failures does not grow memory.
    this.#failures.set(key, recent.slice(-keep))
    // Addresses that stopped failing are dropped as their windows empty.
    if (this.#failures.size > 10_000) {
      for (const [entry, times] of this.#failures) if ((times.at(-1) ?? 0) <= now - this.#windowMs) this.#failures.delete(entry)
    }
  }

  #recent(key: string, now: number): number[] {
    const times = this.#failures.get(key)
    if (!times) return []
    const recent = times.filter((at) => at > now - this.#windowMs)
    if (recent.length === 0) this.#failures.delete(key)
    return recent
  }
}

function pairOf(address: string, keyId: string): string {
  // A NUL cannot occur in an address or a key id, so pairs never collide with addresses.
  return `${address}\u0000${keyId}`
}
