import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CountersignError, isCountersignError } from '../core/index.js'
import { bearerChallenge, parseJsonBody } from './http-errors.js'

/** The error code parseJsonBody throws, or 'parsed' and the value. */
function outcome(text: string): { code: string } | { value: unknown } {
  try {
    return { value: parseJsonBody(text) }
  } catch (error) {
    if (!isCountersignError(error)) throw error
    return { code: error.code }
  }
}

/** JSON text of `value` with every character of every key written as a \u escape. */
function withEscapedKeys(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(withEscapedKeys).join(',')}]`
  if (typeof value === 'object' && value !== null) {
    const members = Object.entries(value).map(([key, member]) => {
      const escaped = [...key].map((c) => [...c].map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')).join('')
      return `"${escaped}":${withEscapedKeys(member)}`
    })
    return `{${members.join(',')}}`
  }
  return JSON.stringify(value)
}

const key = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'a'), fc.string())
const value = fc.letrec((tie) => ({
  json: fc.oneof(
    { depthSize: 'small' },
    fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
    fc.constantFrom(Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, -(2 ** 53 + 2), 2 ** 64),
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(key, tie('json'), { maxKeys: 4 }),
  ),
})).json

describe('parseJsonBody', () => {
  it.each([
    ['{"__proto__":{"admin":true}}'],
    ['{"a":{"\\u005f_proto__":{"admin":true}}}'],
    ['{"constructor":{"prototype":{"admin":true}}}'],
    ['{"\\u0063onstructor":{"prototype":{}}}'],
    ['{"amount":9007199254740993}'],
    ['[-12345678901234567]'],
  ])('refuses %s with invalid_request', (text) => {
    expect(outcome(text)).toEqual({ code: 'invalid_request' })
  })

  it.each([
    ['{"amount":9007199254740991,"ratio":1.5e300}', { amount: 9007199254740991, ratio: 1.5e300 }],
    ['{"digest":"1234567890123456789012"}', { digest: '1234567890123456789012' }],
    ['{"constructor":"a string"}', { constructor: 'a string' }],
    ['{"note":"caf\\u00e9"}', { note: 'café' }],
  ])('accepts %s', (text, expected) => {
    expect(outcome(text)).toEqual({ value: expected })
  })

  it('decides the same whether keys are written plainly or as escapes', () => {
    fc.assert(
      fc.property(value, (parsed) => {
        expect(outcome(withEscapedKeys(parsed))).toEqual(outcome(JSON.stringify(parsed)))
      }),
      { numRuns: 500 },
    )
  })

  it('gives what JSON.parse gives for any text it accepts, and refuses only unsafe integers and reserved keys', () => {
    fc.assert(
      fc.property(value, (parsed) => {
        const text = JSON.stringify(parsed)
        const result = outcome(text)
        if ('value' in result) {
          expect(result.value).toEqual(JSON.parse(text))
        } else {
          expect(text).toMatch(/"__proto__"|"constructor":\{|\d{16}/)
        }
      }),
      { numRuns: 500 },
    )
  })
})

describe('bearerChallenge', () => {
  const unauthenticated = new CountersignError('unauthenticated', 'Bearer token refused.')

  it('names no error when no credentials were sent', () => {
    expect(bearerChallenge(unauthenticated, undefined)).toBe('Bearer realm="countersign"')
    expect(bearerChallenge(unauthenticated, '  ')).toBe('Bearer realm="countersign"')
  })

  it('answers a refused bearer token with invalid_token', () => {
    expect(bearerChallenge(unauthenticated, 'bearer cs_x')).toBe('Bearer realm="countersign", error="invalid_token"')
  })

  it('answers credentials of another scheme with invalid_request', () => {
    expect(bearerChallenge(unauthenticated, 'Basic ZGFuYQ==')).toBe('Bearer realm="countersign", error="invalid_request"')
  })

  it('asks for a fresh sign-in with the step-up error of RFC 9470 and its max_age', () => {
    const stale = new CountersignError('fresh_auth_required', 'Sign in again.', { fresh_auth_ms: 300_000, authenticated_at: null })
    expect(bearerChallenge(stale, 'Bearer eyJ')).toBe('Bearer realm="countersign", error="insufficient_user_authentication", max_age=300')
  })
})
