import { describe, expect, it } from 'vitest'
import { computeDeadlines, parseDuration } from './deadlines.js'
import { CountersignError } from './errors.js'

const NOW = Date.UTC(2025, 0, 15, 9, 0, 0)

function refusal(run: () => unknown): CountersignError {
  try {
    run()
  } catch (error) {
    if (error instanceof CountersignError) return error
    throw error
  }
  throw new Error('expected a CountersignError, but nothing was thrown')
}

describe('parseDuration', () => {
  it.each([
    ['30s', 30_000],
    ['15m', 900_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['1d2h3m4s', 93_784_000],
    ['90m', 5_400_000],
    ['0h5m', 300_000],
  ])('parses %s as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms)
  })

  it.each(['', '15', 'm', '15M', '1.5h', '-1m', ' 15m', '15m ', '30m1h', '1h1h', '15 m', '5ms', '1w', '0s', '0h0m'])(
    'refuses %j with invalid_request',
    (text) => {
      const error = refusal(() => parseDuration(text))
      expect(error.code).toBe('invalid_request')
      expect(error.details).toEqual({ value: text })
    },
  )

  it('refuses a duration too long to count in milliseconds with invalid_request', () => {
    expect(refusal(() => parseDuration('999999999999999d')).code).toBe('invalid_request')
  })

  it('refuses a value that is not a string with invalid_request', () => {
    expect(refusal(() => parseDuration(15 as unknown as string)).code).toBe('invalid_request')
  })

  it('says how to write a duration when it refuses one', () => {
    expect(refusal(() => parseDuration('15 minutes')).message).toBe(
      'Duration "15 minutes" is not valid; write whole numbers with units d, h, m, s, largest first (e.g. "15m", "1h30m").',
    )
  })
})

describe('computeDeadlines', () => {
  it('puts the deadline one timeout after now', () => {
    expect(computeDeadlines(NOW, { timeoutMs: 900_000 })).toEqual({ deadlineAt: NOW + 900_000 })
  })

  it('adds an escalation time when escalation is configured', () => {
    expect(computeDeadlines(NOW, { timeoutMs: 1_800_000, escalateAfterMs: 600_000 })).toEqual({
      deadlineAt: NOW + 1_800_000,
      escalateAt: NOW + 600_000,
    })
  })

  it('refuses an escalation that would come at or after the deadline with invalid_request', () => {
    const error = refusal(() => computeDeadlines(NOW, { timeoutMs: 600_000, escalateAfterMs: 600_000 }))
    expect(error.code).toBe('invalid_request')
    expect(error.details).toEqual({ escalate_after_ms: 600_000, timeout_ms: 600_000 })
  })

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses a timeout of %d ms with invalid_request', (timeoutMs) => {
    expect(refusal(() => computeDeadlines(NOW, { timeoutMs })).code).toBe('invalid_request')
  })

  it('refuses a non-positive escalation delay with invalid_request', () => {
    expect(refusal(() => computeDeadlines(NOW, { timeoutMs: 600_000, escalateAfterMs: 0 })).code).toBe('invalid_request')
  })
})
