/**
 * Every refusal Countersign makes carries one of these stable codes. Clients
 * switch on the code; the message is for people and may change.
 */
export const ERROR_CODES = [
  // input and authentication
  'invalid_request',
  'payload_too_large',
  'unsupported_media_type',
  'unauthenticated',
  'rate_limited',
  'forbidden',
  'not_found',
  'idempotency_conflict',
  // review
  'self_approval',
  'not_an_approver',
  'non_human_reviewer',
  'already_voted',
  'version_mismatch',
  'request_not_pending',
  'edit_not_allowed',
  'edit_denied_by_policy',
  'reason_required',
  'fresh_auth_required',
  'not_requester',
  'invalid_transition',
  // grants
  'grant_invalid',
  'grant_already_redeemed',
  'grant_expired',
  'digest_mismatch',
  'request_not_approved',
  // policy, config and audit
  'policy_invalid',
  'config_invalid',
  'audit_verify_failed',
  // infrastructure
  'store_unavailable',
  'internal',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

/** The one error type Countersign throws for refusals and bad input. */
export class CountersignError extends Error {
  override readonly name = 'CountersignError'
  readonly code: ErrorCode
  readonly details: Record<string, unknown>

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message)
    this.code = code
    this.details = details
  }

  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details }
  }
}

export function isCountersignError(value: unknown): value is CountersignError {
  return value instanceof CountersignError
}

const HTTP_STATUS: Record<ErrorCode, number> = {
  invalid_request: 400,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unauthenticated: 401,
  rate_limited: 429,
  forbidden: 403,
  not_found: 404,
  idempotency_conflict: 409,
  self_approval: 403,
  not_an_approver: 403,
  non_human_reviewer: 403,
  already_voted: 409,
  version_mismatch: 409,
  request_not_pending: 409,
  edit_not_allowed: 403,
  edit_denied_by_policy: 403,
  reason_required: 400,
  fresh_auth_required: 401,
  not_requester: 403,
  invalid_transition: 409,
  grant_invalid: 401,
  grant_already_redeemed: 409,
  grant_expired: 410,
  digest_mismatch: 409,
  request_not_approved: 409,
  policy_invalid: 400,
  config_invalid: 400,
  audit_verify_failed: 500,
  store_unavailable: 503,
  internal: 500,
}

/** The HTTP status each error code maps to; pinned by a test. */
export function httpStatusFor(code: ErrorCode): number {
  return HTTP_STATUS[code]
}
