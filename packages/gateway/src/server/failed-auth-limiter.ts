/**
 * Counts failed authentications per client address in a sliding minute. Each
 * failed API key costs a scrypt check (milliseconds of CPU and 16 MiB), so an
 * address that keeps presenting bad credentials is refused outright for the
 * rest of the window instead of being allowed to keep the CPU busy.
 */
export class FailedAuthLimiter {
  readonly #limit: number
  readonly #windowMs: number
  readonly #failures = new Map<string, number[]>()

  constructor(options: { limit: number; windowMs: number }) {
    this.#limit = options.limit
    this.#windowMs = options.windowMs
  }

  /** Milliseconds until `address` may try again, or 0 when it may try now. */
  retryAfterMs(address: string, now: number): number {
    const recent = this.#recent(address, now)
    if (recent.length < this.#limit) return 0
    return (recent[recent.length - this.#limit] ?? now) + this.#windowMs - now
  }

  recordFailure(address: string, now: number): void {
    const recent = this.#recent(address, now)
    recent.push(now)
    this.#failures.set(address, recent)
    // Addresses that stopped failing are dropped as their windows empty.
    if (this.#failures.size > 10_000) {
      for (const [key, times] of this.#failures) if ((times.at(-1) ?? 0) <= now - this.#windowMs) this.#failures.delete(key)
    }
  }

  #recent(address: string, now: number): number[] {
    const times = this.#failures.get(address)
    if (!times) return []
    const recent = times.filter((at) => at > now - this.#windowMs)
    if (recent.length === 0) this.#failures.delete(address)
    return recent
  }
}
