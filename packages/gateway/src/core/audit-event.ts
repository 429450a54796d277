import type { ErrorCode } from './errors.js'
import type { AuditActor, Effect, OnBehalfOf, PrincipalKind, ResultOutcome, VoteDecision } from './types.js'

/** One approver requirement as a decision records it. */
export interface AuditRequirement {
  rule: string
  approvers: string[]
  quorum: number
}

/** How far one requirement got when the votes decided: who approved and who denied it. */
export interface AuditRequirementTally {
  rule: string
  quorum: number
  approvals: string[]
  denials: string[]
}

/** A refusal that concerned a request: the code it was refused with. */
export interface AuditRefusal {
  code: ErrorCode
}

/**
 * The data each audit event type carries. Keys are snake_case and times are
 * RFC 3339 strings named `*_at`, because this is the evidence format that
 * exports and auditors read. Free text (reasons, resources, details) and
 * params are recorded redacted.
 */
export interface AuditEventData {
  'request.created': {
    action: string
    resource: string
    environment: string
    digest: string
    version: number
    effect: Effect
    on_behalf_of: OnBehalfOf | null
    params: Record<string, unknown>
    reason: string | null
    matched_rules: Array<{ name: string; effect: Effect }>
    risk: number
    policy_sha256: string
    /** Present when the request waits for review. */
    deadline_at?: string
    escalate_at?: string | null
    requirements?: AuditRequirement[]
  }
  'request.approved':
    | { cause: 'policy'; digest: string }
    | { cause: 'votes'; digest: string; version: number; requirements: AuditRequirementTally[] }
  'request.denied':
    | { cause: 'policy' }
    | { cause: 'votes'; version: number; requirements: AuditRequirementTally[] }
    | { cause: 'timeout'; deadline_at: string }
  'request.expired': { cause: 'timeout'; deadline_at: string }
  'request.escalated': { to: string[] }
  'request.edited': {
    from_version: number
    to_version: number
    previous_digest: string
    digest: string
    voided_votes: number
    params: Record<string, unknown>
  }
  'request.cancelled': { reason: string | null }
  'request.result': { outcome: ResultOutcome; exit_code: number | null; detail: string | null }
  'vote.cast': { version: number; digest: string; decision: VoteDecision; reason: string | null }
  'vote.refused': AuditRefusal
  'cancel.refused': AuditRefusal
  'result.refused': AuditRefusal
  'grant.issued': { jti: string; digest: string; expires_at: string }
  'grant.redeemed': { jti: string; digest: string }
  'grant.expired': { jti: string }
  'grant.refused': AuditRefusal
  'key.created': { key_id: string; kind: PrincipalKind; principal_id: string; groups: string[]; on_behalf_of: string | null }
  'key.revoked': { key_id: string; principal_id: string }
  'policy.reloaded': { file: string; sha256: string }
  'policy.reload_failed': { file: string; message: string; kept_sha256: string }
}

export type AuditEventType = keyof AuditEventData

/** One entry per type, so adding a type to `AuditEventData` without listing it here fails to compile. */
const LISTED: Record<AuditEventType, true> = {
  'request.created': true,
  'request.approved': true,
  'request.denied': true,
  'request.expired': true,
  'request.escalated': true,
  'request.edited': true,
  'request.cancelled': true,
  'request.result': true,
  'vote.cast': true,
  'vote.refused': true,
  'cancel.refused': true,
  'result.refused': true,
  'grant.issued': true,
  'grant.redeemed': true,
  'grant.expired': true,
  'grant.refused': true,
  'key.created': true,
  'key.revoked': true,
  'policy.reloaded': true,
  'policy.reload_failed': true,
}

/** Every audit event type, in the order docs/audit.md lists them. */
export const AUDIT_EVENT_TYPES = Object.keys(LISTED) as readonly AuditEventType[]

/** The types of the refusals that concern a request. */
export type AuditRefusalType = 'vote.refused' | 'cancel.refused' | 'result.refused' | 'grant.refused'

/**
 * An audit event before it is placed in the chain: one member per type, each
 * with its own data, so a recorder cannot misspell a type or forget a field.
 *
 * @example
 * const event: AuditEvent = { type: 'grant.expired', actor, requestId: 'req_1', data: { jti: 'grt_1' } }
 */
export type AuditEvent = {
  [T in AuditEventType]: { type: T; actor: AuditActor; requestId?: string; data: AuditEventData[T] }
}[AuditEventType]

/** The event of one type. */
export type AuditEventOf<T extends AuditEventType> = Extract<AuditEvent, { type: T }>
