import { canonicalDigest, canonicalJson } from './canonical-digest.js'
import { rfc3339 } from './rfc3339.js'
import { computeDeadlines } from './deadlines.js'
import { CountersignError } from './errors.js'
import { stricterOf, type ReviewRequirements } from './review-requirements.js'
import { checkVote, checkVoteDemands, tallyVotes, type TallyResult } from './review-tally.js'
import { samePerson } from './same-person.js'
import type { AuditEvent, AuditEventData, AuditRequirementTally } from './audit-event.js'
import type {
  ActionRequestInput,
  AuditActor,
  Effect,
  Principal,
  RecordedVote,
  RequestState,
  RequestVersion,
  ResultOutcome,
  VoteDecision,
} from './types.js'

/** The new state and the audit events that must be committed with it, in order. */
export interface Transition {
  state: RequestState
  auditEvents: AuditEvent[]
}

/** A request as it arrives, with the policy's decision about it. */
export interface NewRequest {
  id: string
  requester: Principal
  input: ActionRequestInput
  effect: Effect
  /** Required when `effect` is `review`. */
  review?: ReviewRequirements
  /** The channel the request came through: api, cli, mcp, hook, ... */
  via: string
  /** How the policy decided, recorded with the request's first audit event. */
  decision: { matchedRules: Array<{ name: string; effect: Effect }>; risk: number; policySha256: string }
}

/** Something that happens to a request. Principals come from authentication, never from a body. */
export type LifecycleEvent =
  | {
      type: 'vote'
      voter: Principal
      via: string
      decision: VoteDecision
      /** The digest of the version the voter saw; the vote is refused for any other. */
      digest: string
      reason?: string
      editParams?: Record<string, unknown>
      /**
       * What the policy demands of the edited params, evaluated by the caller.
       * It is combined with the request's review by `stricterOf` (never
       * loosening it), so an edit cannot slip past a rule the edited action
       * would have met.
       */
      editReview?: ReviewRequirements
    }
  | { type: 'cancel'; by: Principal; via: string; reason?: string }
  | { type: 'expire' }
  | { type: 'escalate' }
  | { type: 'grant_issued'; jti: string; expiresAt: number }
  | { type: 'grant_redeemed'; jti: string; digest: string; by: Principal; via: string }
  | { type: 'grant_expired' }
  | { type: 'result'; by: Principal; via: string; outcome: ResultOutcome; exitCode?: number; detail?: string }

/** Timers (deadline, escalation, grant expiry) act as the gateway itself. */
const SCHEDULER: AuditActor = { id: 'countersign', kind: 'system', via: 'scheduler' }
const GATEWAY: AuditActor = { id: 'countersign', kind: 'system', via: 'gateway' }

/**
 * Builds the first state of a request from its input and the policy's effect:
 * version 1 with its digest, and for `review` the deadlines. `allow` starts
 * approved and `deny` starts denied, each with its audit event.
 *
 * @throws CountersignError `invalid_request` for params JSON cannot carry, a
 *   bad bound-file hash or bad review durations.
 * @throws TypeError when `effect` is `review` but no review settings are given.
 * @example
 * const { state, auditEvents } = openRequest({ id, requester, input, effect: 'review', review, via: 'api' }, now)
 */
export function openRequest(request: NewRequest, now: number): Transition {
  const { input, requester } = request
  const bind = [...(input.bind ?? [])]
  const params = plainCopy(input.params)
  const digest = canonicalDigest(
    { action: input.action, resource: input.resource, environment: input.environment, params },
    bind,
  )
  const base: RequestState = {
    id: request.id,
    status: 'pending',
    requester,
    action: input.action,
    resource: input.resource,
    environment: input.environment,
    bind,
    versions: [{ version: 1, params, digest, createdAt: now, createdBy: requester.id }],
    currentVersion: 1,
    digest,
    votes: [],
    createdAt: now,
    updatedAt: now,
  }
  if (requester.onBehalfOf !== undefined) base.onBehalfOf = { ...requester.onBehalfOf }
  const actor = actorOf(requester, request.via)
  // Params and reason as given: the service redacts every event before it is recorded.
  const created: AuditEventData['request.created'] = {
    action: input.action,
    resource: input.resource,
    environment: input.environment,
    digest,
    version: 1,
    effect: request.effect,
    on_behalf_of: base.onBehalfOf ?? null,
    params,
    reason: input.reason ?? null,
    matched_rules: request.decision.matchedRules,
    risk: request.decision.risk,
    policy_sha256: request.decision.policySha256,
  }
  const createdEvent: AuditEvent = { type: 'request.created', actor, requestId: request.id, data: created }
  if (request.effect === 'allow') {
    return {
      state: { ...base, status: 'approved', decidedAt: now },
      auditEvents: [createdEvent, approved(base, { cause: 'policy', digest })],
    }
  }
  if (request.effect === 'deny') {
    return {
      state: { ...base, status: 'denied', decidedAt: now },
      auditEvents: [createdEvent, denied(base, { cause: 'policy' })],
    }
  }
  if (request.review === undefined) {
    throw new TypeError('openRequest: effect "review" needs review settings')
  }
  const settings = request.review
  const deadlines = computeDeadlines(now, settings)
  const state: RequestState = { ...base, review: settings, deadlineAt: deadlines.deadlineAt }
  if (deadlines.escalateAt !== undefined && settings.escalateTo.length > 0) state.escalateAt = deadlines.escalateAt
  created.deadline_at = rfc3339(deadlines.deadlineAt)
  created.escalate_at = state.escalateAt === undefined ? null : rfc3339(state.escalateAt)
  created.requirements = settings.requirements.map((requirement) => ({
    rule: requirement.rule,
    approvers: requirement.approvers,
    quorum: requirement.quorum,
  }))
  return { state, auditEvents: [createdEvent] }
}

/**
 * Applies one event to a request and returns the new state with the audit
 * events to commit alongside it. Pure: `state` is never modified, and a
 * refusal is thrown, so a refused event leaves nothing to write.
 *
 * - `vote`: checked by `checkVote` (including that it names the current
 *   digest), then tallied. An approving edit whose params differ makes
 *   version n+1 with a new digest; votes on older versions stop counting, and
 *   the editor's approval is recorded on the new version but never counts:
 *   the edited version needs its quorum from people other than its editor.
 * - `cancel`: pending requests, by the requester only (`not_requester`).
 * - `expire`: at or after the deadline; `onTimeout` decides denied or expired.
 * - `escalate`: once, at or after `escalateAt` and before the deadline.
 * - `grant_issued`, `grant_redeemed`, `grant_expired`: one grant per approved
 *   request; redeeming checks the jti, expiry, single use and the digest.
 * - `result`: by the requester, once, after the grant was redeemed.
 *
 * @throws CountersignError `request_not_pending`, `invalid_transition`,
 *   `not_requester`, `request_not_approved`, `grant_invalid`,
 *   `grant_already_redeemed`, `grant_expired`, `digest_mismatch`, or any code
 *   of `checkVote`.
 * @example
 * const { state: next, auditEvents } = transition(state, { type: 'vote', voter, via: 'slack', decision: 'approve' }, now)
 */
export function transition(state: RequestState, event: LifecycleEvent, now: number): Transition {
  switch (event.type) {
    case 'vote':
      return applyVote(state, event, now)
    case 'cancel':
      return applyCancel(state, event, now)
    case 'expire':
      return applyExpire(state, now)
    case 'escalate':
      return applyEscalate(state, now)
    case 'grant_issued':
      return applyGrantIssued(state, event, now)
    case 'grant_redeemed':
      return applyGrantRedeemed(state, event, now)
    case 'grant_expired':
      return applyGrantExpired(state, now)
    case 'result':
      return applyResult(state, event, now)
  }
}

function applyVote(state: RequestState, event: Extract<LifecycleEvent, { type: 'vote' }>, now: number): Transition {
  checkVote(state, event.voter, event, now)
  const actor = actorOf(event.voter, event.via)
  const auditEvents: AuditEvent[] = []
  let next: RequestState = { ...state, updatedAt: now }

  if (event.editParams !== undefined) {
    const params = plainCopy(event.editParams)
    const digest = canonicalDigest(
      { action: state.action, resource: state.resource, environment: state.environment, params },
      state.bind,
    )
    if (digest !== state.digest) {
      const version: RequestVersion = {
        version: state.currentVersion + 1,
        params,
        digest,
        createdAt: now,
        createdBy: event.voter.id,
      }
      next = { ...next, versions: [...state.versions, version], currentVersion: version.version, digest }
      if (event.editReview !== undefined && state.review !== undefined) {
        // Deadlines were set when the request opened: an edit changes what approval needs, not when review ends.
        const review = stricterOf(state.review, event.editReview)
        next = { ...next, review }
        // The stricter review may ask more of this very vote (a reason, a recent sign-in).
        checkVoteDemands(review, event.voter, event, now)
      }
      auditEvents.push({
        type: 'request.edited',
        actor,
        requestId: state.id,
        data: {
          from_version: state.currentVersion,
          to_version: version.version,
          previous_digest: state.digest,
          digest,
          voided_votes: state.votes.filter((cast) => cast.version === state.currentVersion).length,
          params,
        },
      })
    }
  }

  const vote: RecordedVote = {
    requestId: state.id,
    version: next.currentVersion,
    voterId: event.voter.id,
    decision: event.decision,
    at: now,
    voter: event.voter,
    via: event.via,
  }
  if (event.reason !== undefined) vote.reason = event.reason
  next = { ...next, votes: [...state.votes, vote] }
  auditEvents.push({
    type: 'vote.cast',
    actor,
    requestId: state.id,
    data: { version: vote.version, digest: next.digest, decision: vote.decision, reason: vote.reason ?? null },
  })

  const tally = tallyVotes(next)
  if (tally.outcome === 'approved') {
    next = { ...next, status: 'approved', decidedAt: now }
    auditEvents.push(
      approved(next, { cause: 'votes', digest: next.digest, version: next.currentVersion, requirements: summary(tally) }),
    )
  } else if (tally.outcome === 'denied') {
    next = { ...next, status: 'denied', decidedAt: now }
    auditEvents.push(denied(next, { cause: 'votes', version: next.currentVersion, requirements: summary(tally) }))
  }
  return { state: next, auditEvents }
}

function applyCancel(state: RequestState, event: Extract<LifecycleEvent, { type: 'cancel' }>, now: number): Transition {
  assertPending(state)
  assertBeforeDeadline(state, now)
  assertRequester(state, event.by, 'cancel')
  return {
    state: { ...state, status: 'cancelled', decidedAt: now, updatedAt: now },
    auditEvents: [
      {
        type: 'request.cancelled',
        actor: actorOf(event.by, event.via),
        requestId: state.id,
        data: { reason: event.reason ?? null },
      },
    ],
  }
}

function applyExpire(state: RequestState, now: number): Transition {
  assertPending(state)
  if (state.deadlineAt === undefined || now < state.deadlineAt) {
    throw new CountersignError(
      'invalid_transition',
      state.deadlineAt === undefined
        ? 'This request has no review deadline, so it cannot expire.'
        : `This request's deadline is ${new Date(state.deadlineAt).toISOString()}; it cannot expire before then.`,
      { deadline_at: state.deadlineAt === undefined ? null : rfc3339(state.deadlineAt) },
    )
  }
  const onTimeout = requireReview(state).onTimeout
  const status = onTimeout === 'deny' ? 'denied' : 'expired'
  const next: RequestState = { ...state, status, decidedAt: now, updatedAt: now }
  const data = { cause: 'timeout', deadline_at: rfc3339(state.deadlineAt) } as const
  return {
    state: next,
    auditEvents: [
      status === 'denied'
        ? { type: 'request.denied', actor: SCHEDULER, requestId: state.id, data }
        : { type: 'request.expired', actor: SCHEDULER, requestId: state.id, data },
    ],
  }
}

function applyEscalate(state: RequestState, now: number): Transition {
  assertPending(state)
  const settings = requireReview(state)
  if (state.escalateAt === undefined || settings.escalateTo.length === 0) {
    throw new CountersignError('invalid_transition', 'The rule for this request does not escalate.')
  }
  if (state.escalatedAt !== undefined) {
    throw new CountersignError('invalid_transition', 'This request was already escalated; it escalates once.', {
      escalated_at: rfc3339(state.escalatedAt),
    })
  }
  if (now < state.escalateAt) {
    throw new CountersignError(
      'invalid_transition',
      `This request escalates at ${new Date(state.escalateAt).toISOString()}, not before.`,
      { escalate_at: rfc3339(state.escalateAt) },
    )
  }
  if (state.deadlineAt !== undefined && now >= state.deadlineAt) {
    throw new CountersignError('invalid_transition', 'The deadline of this request has passed; expire it instead of escalating.', {
      deadline_at: rfc3339(state.deadlineAt),
    })
  }
  return {
    state: { ...state, escalatedAt: now, updatedAt: now },
    auditEvents: [
      { type: 'request.escalated', actor: SCHEDULER, requestId: state.id, data: { to: settings.escalateTo } },
    ],
  }
}

function applyGrantIssued(
  state: RequestState,
  event: Extract<LifecycleEvent, { type: 'grant_issued' }>,
  now: number,
): Transition {
  assertApproved(state)
  if (state.grant !== undefined) {
    throw new CountersignError('invalid_transition', 'A grant was already issued for this request; each approval yields one grant.', {
      jti: state.grant.jti,
    })
  }
  if (!Number.isFinite(event.expiresAt) || event.expiresAt <= now) {
    throw new CountersignError('invalid_request', 'A grant must expire after the moment it is issued.', {
      expires_at: Number.isFinite(event.expiresAt) ? rfc3339(event.expiresAt) : null,
    })
  }
  return {
    state: { ...state, grant: { jti: event.jti, status: 'issued', issuedAt: now, expiresAt: event.expiresAt }, updatedAt: now },
    auditEvents: [
      {
        type: 'grant.issued',
        actor: GATEWAY,
        requestId: state.id,
        data: { jti: event.jti, digest: state.digest, expires_at: rfc3339(event.expiresAt) },
      },
    ],
  }
}

function applyGrantRedeemed(
  state: RequestState,
  event: Extract<LifecycleEvent, { type: 'grant_redeemed' }>,
  now: number,
): Transition {
  assertApproved(state)
  const grant = state.grant
  if (grant === undefined || grant.jti !== event.jti) {
    throw new CountersignError('grant_invalid', 'This grant was not issued for this request.', { jti: event.jti })
  }
  if (grant.status === 'redeemed') {
    throw new CountersignError('grant_already_redeemed', 'This grant was already redeemed; a grant is good for one use.', {
      jti: grant.jti,
      redeemed_at: grant.redeemedAt === undefined ? null : rfc3339(grant.redeemedAt),
    })
  }
  if (grant.status === 'expired' || now >= grant.expiresAt) {
    throw new CountersignError(
      'grant_expired',
      `This grant expired at ${new Date(grant.expiresAt).toISOString()}; submit the request again.`,
      { jti: grant.jti, expires_at: rfc3339(grant.expiresAt) },
    )
  }
  if (event.digest !== state.digest) {
    throw new CountersignError(
      'digest_mismatch',
      'The action being run does not match the approved one (digest differs); run exactly what was approved.',
      { expected: state.digest, actual: event.digest },
    )
  }
  return {
    state: { ...state, grant: { ...grant, status: 'redeemed', redeemedAt: now }, updatedAt: now },
    auditEvents: [
      {
        type: 'grant.redeemed',
        actor: actorOf(event.by, event.via),
        requestId: state.id,
        data: { jti: grant.jti, digest: state.digest },
      },
    ],
  }
}

function applyGrantExpired(state: RequestState, now: number): Transition {
  const grant = state.grant
  if (grant === undefined || grant.status !== 'issued') {
    throw new CountersignError(
      'invalid_transition',
      grant === undefined ? 'This request has no grant to expire.' : `This request's grant is already ${grant.status}.`,
    )
  }
  if (now < grant.expiresAt) {
    throw new CountersignError(
      'invalid_transition',
      `This grant is valid until ${new Date(grant.expiresAt).toISOString()}; it cannot expire before then.`,
      { expires_at: rfc3339(grant.expiresAt) },
    )
  }
  return {
    state: { ...state, grant: { ...grant, status: 'expired' }, updatedAt: now },
    auditEvents: [{ type: 'grant.expired', actor: SCHEDULER, requestId: state.id, data: { jti: grant.jti } }],
  }
}

function applyResult(state: RequestState, event: Extract<LifecycleEvent, { type: 'result' }>, now: number): Transition {
  if (state.grant?.status !== 'redeemed') {
    throw new CountersignError('invalid_transition', 'A result can only be reported after the grant was redeemed.')
  }
  if (state.result !== undefined) {
    throw new CountersignError('invalid_transition', `A result (${state.result.outcome}) was already reported for this request.`)
  }
  assertRequester(state, event.by, 'report the result of')
  const result: RequestState['result'] = { outcome: event.outcome }
  if (event.exitCode !== undefined) result.exitCode = event.exitCode
  if (event.detail !== undefined) result.detail = event.detail
  return {
    state: { ...state, result, updatedAt: now },
    auditEvents: [
      {
        type: 'request.result',
        actor: actorOf(event.by, event.via),
        requestId: state.id,
        data: { outcome: result.outcome, exit_code: result.exitCode ?? null, detail: result.detail ?? null },
      },
    ],
  }
}

function assertPending(state: RequestState): void {
  if (state.status !== 'pending') {
    throw new CountersignError('request_not_pending', `This request is ${state.status}, not pending.`, { status: state.status })
  }
}

/** Past its deadline a request belongs to the timeout rule, even before the scheduler has marked it. */
function assertBeforeDeadline(state: RequestState, now: number): void {
  if (state.deadlineAt !== undefined && now >= state.deadlineAt) {
    throw new CountersignError('request_not_pending', 'This request passed its deadline; it is being closed by its timeout rule.', {
      deadline_at: rfc3339(state.deadlineAt),
    })
  }
}

function assertApproved(state: RequestState): void {
  if (state.status !== 'approved') {
    throw new CountersignError('request_not_approved', `This request is ${state.status}; only approved requests get grants.`, {
      status: state.status,
    })
  }
}

function assertRequester(state: RequestState, who: Principal, what: string): void {
  if (!samePerson(who, state.requester)) {
    throw new CountersignError('not_requester', `Only the requester (${state.requester.id}) may ${what} this request.`, {
      principal_id: who.id,
    })
  }
}

function requireReview(state: RequestState): ReviewRequirements {
  if (state.review === undefined) {
    throw new CountersignError('invalid_transition', 'This request was decided by policy and has no review.')
  }
  return state.review
}

function actorOf(principal: Principal, via: string): AuditActor {
  return { id: principal.id, kind: principal.kind, via }
}

/** Decisions by policy or by the tally are the gateway's own act; the votes that led there carry their voters. */
function approved(state: RequestState, data: AuditEventData['request.approved']): AuditEvent {
  return { type: 'request.approved', actor: GATEWAY, requestId: state.id, data }
}

function denied(state: RequestState, data: AuditEventData['request.denied']): AuditEvent {
  return { type: 'request.denied', actor: GATEWAY, requestId: state.id, data }
}

function summary(tally: TallyResult): AuditRequirementTally[] {
  return tally.requirements.map((requirement) => ({
    rule: requirement.rule,
    quorum: requirement.quorum,
    approvals: requirement.approvals,
    denials: requirement.denials,
  }))
}

/** Params as plain JSON data, so a stored version can never alias or differ from what was digested. */
function plainCopy(params: Record<string, unknown>): Record<string, unknown> {
  const copy: unknown = JSON.parse(canonicalJson(params))
  if (copy === null || typeof copy !== 'object' || Array.isArray(copy)) {
    throw new CountersignError('invalid_request', 'params must be a JSON object.')
  }
  return copy as Record<string, unknown>
}
