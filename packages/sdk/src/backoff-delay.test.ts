import { describe, expect, it } from 'vitest'
import { backoffDelay } from './backoff-delay.js'

describe('backoffDelay', () => {
  it('starts at 250 ms and doubles up to a 5 s cap when jitter picks the ceiling', () => {
    const schedule = Array.from({ length: 8 }, (_, attempt) => backoffDelay(attempt, () => 1))
    expect(schedule).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000])
  })

  it('never goes below half of the ceiling, so a retry does not fire again at once', () => {
    const schedule = Array.from({ length: 7 }, (_, attempt) => backoffDelay(attempt, () => 0))
    expect(schedule).toEqual([125, 250, 500, 1000, 2000, 2500, 2500])
  })

  it('spreads delays across the jitter range', () => {
    expect(backoffDelay(3, () => 0.5)).toBe(1500)
  })

  it('stays at the cap for very large attempt counts instead of overflowing', () => {
    expect(backoffDelay(10_000, () => 1)).toBe(5000)
    expect(backoffDelay(Number.MAX_SAFE_INTEGER, () => 0)).toBe(2500)
  })

  it('keeps a misbehaving random source inside the jitter range', () => {
    expect(backoffDelay(0, () => 7)).toBe(250)
    expect(backoffDelay(0, () => -3)).toBe(125)
  })

  it('uses Math.random by default and stays within bounds', () => {
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const delay = backoffDelay(attempt)
      expect(delay).toBeGreaterThanOrEqual(125)
      expect(delay).toBeLessThanOrEqual(5000)
    }
  })
})
