import { describe, expect, it } from 'vitest'
import { FailedAuthLimiter } from './failed-auth-limiter.js'

describe('FailedAuthLimiter', () => {
  it('lets an address fail up to the limit, then refuses it until the oldest failure leaves the window', () => {
    const limiter = new FailedAuthLimiter({ limit: 3, windowMs: 60_000 })
    for (const at of [0, 10_000, 20_000]) {
      expect(limiter.retryAfterMs('10.0.0.1', at)).toBe(0)
      limiter.recordFailure('10.0.0.1', at)
    }
    expect(limiter.retryAfterMs('10.0.0.1', 30_000)).toBe(30_000)
    expect(limiter.retryAfterMs('10.0.0.1', 60_001)).toBe(0)
  })

  it('counts every address on its own', () => {
    const limiter = new FailedAuthLimiter({ limit: 1, windowMs: 1000 })
    limiter.recordFailure('10.0.0.1', 0)
    expect(limiter.retryAfterMs('10.0.0.1', 1)).toBeGreaterThan(0)
    expect(limiter.retryAfterMs('10.0.0.2', 1)).toBe(0)
  })
})
