import type { ActionRequest } from './types.js'
import { WIRE_ERROR_CODES, type WireErrorCode } from './wire-contract.generated.js'

export type { WireErrorCode }

/** Why the gateway refused to redeem a grant. */
export type GrantRejectionCode = 'grant_invalid' | 'grant_already_redeemed' | 'grant_expired' | 'digest_mismatch'

/**
 * Every code a {@link CountersignError} can carry: the gateway's own codes, plus the outcomes the
 * client reports itself (`action_denied`, `action_expired`, `action_cancelled`, `wait_timeout`,
 * `gateway_unavailable`) and `unexpected_response` for answers that do not follow the API contract.
 */
export type ErrorCode =
  | WireErrorCode
  | 'action_denied'
  | 'action_expired'
  | 'action_cancelled'
  | 'wait_timeout'
  | 'gateway_unavailable'
  | 'unexpected_response'

const GRANT_REJECTION_CODES: ReadonlySet<string> = new Set<GrantRejectionCode>([
  'grant_invalid',
  'grant_already_redeemed',
  'grant_expired',
  'digest_mismatch',
])

const WIRE_CODES: ReadonlySet<string> = new Set(WIRE_ERROR_CODES)

export interface CountersignErrorOptions {
  /** The HTTP status of the answer, when the error came from one. */
  status?: number
  details?: Record<string, unknown>
  cause?: unknown
}

/**
 * Base class of every error the client throws for a refusal or an outcome other than approval.
 * Switch on `code`, which is stable; `message` is for people and may change.
 *
 * @example
 * try {
 *   await cs.vote(id, { decision: 'approve', digest })
 * } catch (error) {
 *   if (error instanceof CountersignError && error.code === 'self_approval') {
 *     console.error('you cannot approve your own request')
 *   } else {
 *     throw error
 *   }
 * }
 */
export class CountersignError extends Error {
  override readonly name: string = 'CountersignError'
  readonly code: ErrorCode
  /** The HTTP status of the gateway's answer; undefined for outcomes the client reports itself. */
  readonly status: number | undefined
  readonly details: Record<string, unknown>

  constructor(code: ErrorCode, message: string, options: CountersignErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.status = options.status
    this.details = options.details ?? {}
  }

  toJSON(): { code: ErrorCode; message: string; status: number | undefined; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, status: this.status, details: this.details }
  }
}

/** Who turned a request down: a reviewer's deny vote, or a policy rule whose effect is deny. */
export interface Denial {
  by: 'reviewer' | 'policy'
  /** The voter's id, or the rule's name. */
  id: string
  reason: string | null
}

/**
 * The request was denied, by policy or by reviewers. `deniedBy` says who and why.
 *
 * @example
 * try {
 *   await cs.guard(spec, run)
 * } catch (error) {
 *   if (error instanceof ActionDenied) {
 *     for (const denial of error.deniedBy) console.error(`${denial.by} ${denial.id}: ${denial.reason ?? ''}`)
 *   }
 *   throw error
 * }
 */
export class ActionDenied extends CountersignError {
  override readonly name: string = 'ActionDenied'
  declare readonly code: 'action_denied'
  readonly request: ActionRequest
  readonly deniedBy: Denial[]

  constructor(request: ActionRequest) {
    const deniedBy = denialsOf(request)
    super('action_denied', `${describeAction(request)} was denied${describeDenials(deniedBy)}`, {
      details: { request_id: request.id },
    })
    this.request = request
    this.deniedBy = deniedBy
  }
}

/**
 * Nobody decided before the review deadline, or the grant expired before it was redeemed.
 *
 * @example
 * try {
 *   await cs.guard(spec, run)
 * } catch (error) {
 *   if (error instanceof ActionExpired) console.error(`nobody decided ${error.request.id} in time`)
 *   throw error
 * }
 */
export class ActionExpired extends CountersignError {
  override readonly name: string = 'ActionExpired'
  declare readonly code: 'action_expired'
  readonly request: ActionRequest

  constructor(request: ActionRequest) {
    super('action_expired', `${describeAction(request)} expired before it was approved and run`, {
      details: { request_id: request.id },
    })
    this.request = request
  }
}

/**
 * The requester withdrew the request before it was decided.
 *
 * @example
 * try {
 *   await cs.guard(spec, run)
 * } catch (error) {
 *   if (error instanceof ActionCancelled) console.error(`${error.request.id} was withdrawn`)
 *   throw error
 * }
 */
export class ActionCancelled extends CountersignError {
  override readonly name: string = 'ActionCancelled'
  declare readonly code: 'action_cancelled'
  readonly request: ActionRequest

  constructor(request: ActionRequest) {
    super('action_cancelled', `${describeAction(request)} was cancelled by its requester`, {
      details: { request_id: request.id },
    })
    this.request = request
  }
}

/**
 * `wait` reached its `timeoutMs` while the request was still pending. The request itself stays
 * pending on the gateway; `request` is the last view seen.
 *
 * @example
 * try {
 *   await cs.wait(id, { timeoutMs: 60_000 })
 * } catch (error) {
 *   if (error instanceof WaitTimeout) console.log(`still waiting for ${error.request.id}; try again later`)
 *   else throw error
 * }
 */
export class WaitTimeout extends CountersignError {
  override readonly name: string = 'WaitTimeout'
  declare readonly code: 'wait_timeout'
  readonly request: ActionRequest

  constructor(request: ActionRequest) {
    super('wait_timeout', `${describeAction(request)} is still pending; stopped waiting`, {
      details: { request_id: request.id },
    })
    this.request = request
  }
}

/**
 * The gateway could not be reached, or kept answering 502/503/504, until the call's deadline.
 * `cause` is the last failure. Thrown by `guard` before the action runs: the action never runs.
 *
 * @example
 * try {
 *   await cs.guard(spec, run)
 * } catch (error) {
 *   if (error instanceof GatewayUnavailable) console.error('approval gateway down; action not run')
 *   throw error
 * }
 */
export class GatewayUnavailable extends CountersignError {
  override readonly name: string = 'GatewayUnavailable'
  declare readonly code: 'gateway_unavailable'

  constructor(url: string, cause: unknown) {
    super('gateway_unavailable', `Could not reach the Countersign gateway at ${url}: ${describeFailure(cause)}`, {
      cause,
      ...(cause instanceof CountersignError && cause.status !== undefined ? { status: cause.status } : {}),
    })
  }
}

/**
 * The gateway refused to redeem the grant: it was already used, it expired, or the digest did not
 * match the approved action.
 *
 * @example
 * try {
 *   await cs.redeem(token, digest)
 * } catch (error) {
 *   if (error instanceof GrantRejected && error.code === 'grant_already_redeemed') console.error('already ran')
 *   throw error
 * }
 */
export class GrantRejected extends CountersignError {
  override readonly name: string = 'GrantRejected'
  declare readonly code: GrantRejectionCode

  constructor(code: GrantRejectionCode, message: string, options: CountersignErrorOptions = {}) {
    super(code, message, options)
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Turns a non-2xx answer into the error to throw. `body` is whatever JSON the answer carried, or
 * undefined when it was not JSON (a proxy's HTML error page, an empty body).
 */
export function errorFromResponse(status: number, body: unknown): CountersignError {
  const error = isRecord(body) ? body['error'] : undefined
  if (!isRecord(error) || typeof error['code'] !== 'string') {
    return new CountersignError('unexpected_response', `The gateway answered HTTP ${status} without an error body`, {
      status,
    })
  }
  const code = error['code']
  const message = typeof error['message'] === 'string' && error['message'] !== '' ? error['message'] : code
  const details = isRecord(error['details']) ? error['details'] : {}
  if (isGrantRejectionCode(code)) return new GrantRejected(code, message, { status, details })
  if (isWireErrorCode(code)) return new CountersignError(code, message, { status, details })
  // A newer gateway may add codes; keep its words and report the code we could not place.
  return new CountersignError('unexpected_response', message, { status, details: { ...details, code } })
}

function isWireErrorCode(code: string): code is WireErrorCode {
  return WIRE_CODES.has(code)
}

function isGrantRejectionCode(code: string): code is GrantRejectionCode {
  return GRANT_REJECTION_CODES.has(code)
}

/**
 * Who denied a request. A policy deny wins over everything, so matched deny rules come first;
 * otherwise the deny votes on the current version decided it. Empty when neither applies, e.g. a
 * review that timed out with `on_timeout: deny`.
 */
export function denialsOf(request: ActionRequest): Denial[] {
  if (request.decision?.effect === 'deny') {
    return request.decision.matchedRules
      .filter((rule) => rule.effect === 'deny')
      .map((rule) => ({ by: 'policy', id: rule.name, reason: null }))
  }
  return request.votes
    .filter((vote) => vote.decision === 'deny' && vote.version === request.version)
    .map((vote) => ({ by: 'reviewer', id: vote.voterId, reason: vote.reason }))
}

function describeAction(request: ActionRequest): string {
  return `${request.action} on ${request.resource} (${request.environment}, ${request.id})`
}

function describeDenials(denials: Denial[]): string {
  if (denials.length === 0) return ''
  const parts = denials.map((denial) => {
    const who = denial.by === 'policy' ? `policy rule "${denial.id}"` : denial.id
    return denial.reason === null || denial.reason === '' ? who : `${who} ("${denial.reason}")`
  })
  return ` by ${parts.join(', ')}`
}

const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
])

/** The system error code behind a failed `fetch` (undici wraps it in `cause`), if any. */
export function networkErrorCode(error: unknown): string | undefined {
  const seen = new Set<unknown>()
  let current: unknown = error
  while (current instanceof Error && !seen.has(current)) {
    seen.add(current)
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return code
    // Happy-eyeballs connects report one error per address in an AggregateError.
    if (current instanceof AggregateError) {
      for (const inner of current.errors) {
        const innerCode = networkErrorCode(inner)
        if (innerCode !== undefined) return innerCode
      }
    }
    current = current.cause
  }
  return undefined
}

function describeFailure(cause: unknown): string {
  if (cause instanceof CountersignError) return cause.status === undefined ? cause.message : `HTTP ${cause.status}: ${cause.message}`
  if (cause instanceof Error) {
    if (cause.name === 'TimeoutError') return 'no answer before the timeout'
    const code = networkErrorCode(cause)
    return code === undefined ? cause.message : `${cause.message} (${code})`
  }
  return String(cause)
}
