import { describe, expect, it } from 'vitest'
import { CountersignError, LOCAL_ERROR_CODES, LocalError, WIRE_ERROR_CODES, type WireErrorCode, httpStatusFor } from './errors.js'

/*
 * The wire contract: clients and proxies act on these statuses. Written out
 * literally, so changing a status (or adding a code) means changing this table.
 */
const PINNED_STATUSES: ReadonlyArray<readonly [WireErrorCode, number]> = [
  ['invalid_request', 400],
  ['payload_too_large', 413],
  ['unsupported_media_type', 415],
  ['unauthenticated', 401],
  ['rate_limited', 429],
  ['forbidden', 403],
  ['not_found', 404],
  ['idempotency_conflict', 409],
  ['self_approval', 403],
  ['not_an_approver', 403],
  ['non_human_reviewer', 403],
  ['already_voted', 409],
  ['version_mismatch', 409],
  ['request_not_pending', 409],
  ['edit_not_allowed', 403],
  ['edit_denied_by_policy', 403],
  ['reason_required', 400],
  ['fresh_auth_required', 401],
  ['not_requester', 403],
  ['invalid_transition', 409],
  ['grant_invalid', 401],
  ['grant_already_redeemed', 409],
  ['grant_expired', 410],
  ['digest_mismatch', 409],
  ['request_not_approved', 409],
  ['store_unavailable', 503],
  ['internal', 500],
]

describe('httpStatusFor', () => {
  it('has a pinned status for exactly the codes in WIRE_ERROR_CODES', () => {
    expect(PINNED_STATUSES.map(([code]) => code).sort()).toEqual([...WIRE_ERROR_CODES].sort())
  })

  it('keeps the local codes out of the wire codes, so no status exists for them', () => {
    expect(LOCAL_ERROR_CODES.filter((code) => (WIRE_ERROR_CODES as readonly string[]).includes(code))).toEqual([])
    expect([...LOCAL_ERROR_CODES].sort()).toEqual(['audit_verify_failed', 'config_invalid', 'policy_invalid'])
  })

  it.each(PINNED_STATUSES)('maps %s to HTTP %i', (code, status) => {
    expect(httpStatusFor(code)).toBe(status)
  })
})

describe('CountersignError', () => {
  it('serialises to the wire shape of code, message and details', () => {
    const error = new CountersignError('self_approval', 'You cannot approve your own request.', { request_id: 'req_1' })
    expect(error.toJSON()).toEqual({ code: 'self_approval', message: 'You cannot approve your own request.', details: { request_id: 'req_1' } })
    expect(JSON.stringify({ error })).toBe(
      '{"error":{"code":"self_approval","message":"You cannot approve your own request.","details":{"request_id":"req_1"}}}',
    )
  })
})

describe('LocalError', () => {
  it('carries a local code and details, and is not a CountersignError', () => {
    const error = new LocalError('config_invalid', 'Invalid port "abc": give a whole number from 0 to 65535.', { port: 'abc' })
    expect(error).not.toBeInstanceOf(CountersignError)
    expect(error.toJSON()).toEqual({ code: 'config_invalid', message: 'Invalid port "abc": give a whole number from 0 to 65535.', details: { port: 'abc' } })
  })
})
