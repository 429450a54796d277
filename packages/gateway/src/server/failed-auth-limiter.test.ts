import { describe, expect, it } from 'vitest'
import { FailedAuthLimiter } from './failed-auth-limiter.js'

describe('FailedAuthLimiter', () => {
  it('lets an address fail up to the limit, then throttles it until the oldest failure leaves the window', () => {
    const limiter = new FailedAuthLimiter({ limit: 3, perKeyLimit: 2, windowMs: 60_000 })
    for (const at of [0, 10_000, 20_000]) {
      expect(limiter.retryAfterMs('10.0.0.1', at)).toBe(0)
      limiter.recordFailure('10.0.0.1', at)
    }
    expect(limiter.retryAfterMs('10.0.0.1', 30_000)).toBe(30_000)
    expect(limiter.retryAfterMs('10.0.0.1', 60_001)).toBe(0)
  })

  it('counts every address on its own', () => {
    const limiter = new FailedAuthLimiter({ limit: 1, perKeyLimit: 1, windowMs: 1000 })
    limiter.recordFailure('10.0.0.1', 0)
    expect(limiter.retryAfterMs('10.0.0.1', 1)).toBeGreaterThan(0)
    expect(limiter.retryAfterMs('10.0.0.2', 1)).toBe(0)
  })

  it('lets an address that is not throttled have every key checked, however often a key was wrong', () => {
    const limiter = new FailedAuthLimiter({ limit: 10, perKeyLimit: 1, windowMs: 60_000 })
    const budget = limiter.secretCheckBudget('10.0.0.1', 0)
    budget.spent('key-a')
    budget.spent('key-a')
    expect(limiter.secretCheckBudget('10.0.0.1', 1).allows('key-a')).toBe(true)
  })

  it('lets a throttled address have a key checked only while that key had fewer wrong secrets from it than the per-key limit', () => {
    const limiter = new FailedAuthLimiter({ limit: 2, perKeyLimit: 2, windowMs: 60_000 })
    limiter.recordFailure('10.0.0.1', 0)
    limiter.recordFailure('10.0.0.1', 0)
    const throttled = limiter.secretCheckBudget('10.0.0.1', 1)
    expect(throttled.allows('key-a')).toBe(true)
    throttled.spent('key-a')
    expect(limiter.secretCheckBudget('10.0.0.1', 2).allows('key-a')).toBe(true)
    throttled.spent('key-a')
    expect(limiter.secretCheckBudget('10.0.0.1', 3).allows('key-a')).toBe(false)
    expect(limiter.secretCheckBudget('10.0.0.1', 3).allows('key-b')).toBe(true)
    // The same key from another address has its own count.
    limiter.recordFailure('10.0.0.2', 0)
    limiter.recordFailure('10.0.0.2', 0)
    expect(limiter.secretCheckBudget('10.0.0.2', 3).allows('key-a')).toBe(true)
    expect(limiter.secretCheckBudget('10.0.0.1', 60_001).allows('key-a')).toBe(true)
  })
})
