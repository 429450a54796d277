/**
 * The codes the gateway sends over HTTP, in `{error: {code}}` bodies. Clients
 * switch on the code; the message is for people and may change. The SDK's copy
 * is generated from this list.
 */
export const WIRE_ERROR_CODES = [
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
  // infrastructure
  'store_unavailable',
  'internal',
] as const

export type WireErrorCode = (typeof WIRE_ERROR_CODES)[number]

/**
 * Failures on the machine that runs Countersign: a policy or configuration that
 * cannot be used, an audit log that does not verify. They stop a start or a
 * command and are never sent over HTTP.
 */
export const LOCAL_ERROR_CODES = ['policy_invalid', 'config_invalid', 'audit_verify_failed'] as const

export type LocalErrorCode = (typeof LOCAL_ERROR_CODES)[number]

export type ErrorCode = WireErrorCode | LocalErrorCode

/** The shape of `details`: snake_case keys, times as RFC 3339 strings in `*_at` fields. */
export type ErrorDetails = Record<string, unknown>

/** A refusal or bad input, answered over HTTP with the status `httpStatusFor(code)`. */
export class CountersignError extends Error {
  override readonly name = 'CountersignError'
  readonly code: WireErrorCode
  readonly details: ErrorDetails

  constructor(code: WireErrorCode, message: string, details: ErrorDetails = {}) {
    super(message)
    this.code = code
    this.details = details
  }

  toJSON(): { code: WireErrorCode; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details }
  }
}

export function isCountersignError(value: unknown): value is CountersignError {
  return value instanceof CountersignError
}

/**
 * A failure of this machine's own setup: an invalid policy or configuration,
 * or an audit log that does not verify. Thrown by `startGateway`, the policy
 * loader and the CLI; never sent over HTTP (should one reach the HTTP layer, it
 * is answered as an opaque `internal` error).
 */
export class LocalError extends Error {
  override readonly name = 'LocalError'
  readonly code: LocalErrorCode
  readonly details: ErrorDetails

  constructor(code: LocalErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.details = details
  }

  toJSON(): { code: LocalErrorCode; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details }
  }
}

export function isLocalError(value: unknown): value is LocalError {
  return value instanceof LocalError
}

const HTTP_STATUS: Record<WireErrorCode, number> = {
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
  store_unavailable: 503,
  internal: 500,
}

/** The HTTP status each error code maps to; pinned by a test. */
export function httpStatusFor(code: WireErrorCode): number {
  return HTTP_STATUS[code]
}
