import { describe, expect, it } from 'vitest'
import { CountersignError } from '../core/index.js'
import { bearerChallenge } from './http-errors.js'

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
