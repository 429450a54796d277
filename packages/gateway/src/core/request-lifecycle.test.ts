import { describe, expect, it } from 'vitest'
import { canonicalDigest } from './canonical-digest.js'
import { CountersignError, type ErrorCode } from './errors.js'
import { openRequest, reviewStateOf, transition, type LifecycleEvent, type NewRequest } from './request-lifecycle.js'
import type { Principal, RequestState, ReviewSettings } from './types.js'

const NOW = Date.UTC(2025, 0, 15, 9, 0, 0)
const MINUTE = 60_000
const PLAN_SHA = 'c'.repeat(64)

function person(id: string, groups: string[] = []): Principal {
  return { id, kind: 'human', displayName: id, email: id, groups }
}

const dana = person('dana@example.com', ['data-owners'])
const omar = person('omar@example.com', ['data-owners'])
const eve = person('eve@example.com')
const pat = person('pat@example.com', ['security'])
const pipeline: Principal = {
  id: 'workload:github:acme/infra',
  kind: 'service',
  displayName: 'acme/infra deploy workflow',
  groups: [],
}
const downstream: Principal = { id: 'svc:warehouse', kind: 'service', displayName: 'Warehouse', groups: [] }

const input = {
  action: 'terraform.apply',
  resource: 'acme/infra',
  environment: 'prod',
  params: { argv: ['terraform', 'apply', 'plan.tfplan'], cwd: '/src' },
  reason: 'roll out the new VPC',
  bind: [{ path: 'plan.tfplan', sha256: PLAN_SHA }],
}

const settings: ReviewSettings & { timeoutMs: number; escalateAfterMs?: number } = {
  requirements: [{ rule: 'prod-apply', approvers: ['group:data-owners'], quorum: 1, denyQuorum: 1 }],
  allowEdit: true,
  requireReason: false,
  escalateTo: ['group:security'],
  onTimeout: 'deny',
  policyGroups: {},
  timeoutMs: 30 * MINUTE,
  escalateAfterMs: 10 * MINUTE,
}

function newRequest(overrides: Partial<NewRequest> = {}): NewRequest {
  return { id: 'req_7', requester: pipeline, input, effect: 'review', review: settings, via: 'cli', ...overrides }
}

function pending(review: Partial<typeof settings> = {}): RequestState {
  return deepFreeze(openRequest(newRequest({ review: { ...settings, ...review } }), NOW).state)
}

function apply(state: RequestState, event: LifecycleEvent, now = NOW): RequestState {
  return deepFreeze(transition(state, event, now).state)
}

const approve = (voter: Principal): LifecycleEvent => ({ type: 'vote', voter, via: 'slack', decision: 'approve' })
const issue: LifecycleEvent = { type: 'grant_issued', jti: 'grant_1', expiresAt: NOW + 5 * MINUTE }

function approved(): RequestState {
  return apply(pending(), approve(dana))
}

function redeemed(): RequestState {
  const withGrant = apply(approved(), issue)
  return apply(withGrant, { type: 'grant_redeemed', jti: 'grant_1', digest: withGrant.digest, by: pipeline, via: 'api' }, NOW + MINUTE)
}

function expectRefused(state: RequestState, event: LifecycleEvent, code: ErrorCode, now = NOW): CountersignError {
  const before = structuredClone(state)
  let caught: unknown
  try {
    transition(state, event, now)
  } catch (error) {
    caught = error
  }
  expect(caught).toBeInstanceOf(CountersignError)
  expect((caught as CountersignError).code).toBe(code)
  expect(state).toEqual(before)
  return caught as CountersignError
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const member of Object.values(value)) deepFreeze(member)
  }
  return value
}

describe('openRequest', () => {
  it('starts a reviewed request pending at version 1 with the digest of its params and bound files', () => {
    const { state, auditEvents } = openRequest(newRequest(), NOW)
    const digest = canonicalDigest(input, input.bind)
    expect(state).toMatchObject({
      id: 'req_7',
      status: 'pending',
      currentVersion: 1,
      digest,
      deadlineAt: NOW + 30 * MINUTE,
      escalateAt: NOW + 10 * MINUTE,
      versions: [{ version: 1, params: input.params, digest, createdAt: NOW, createdBy: pipeline.id }],
      votes: [],
    })
    expect(auditEvents).toEqual([
      {
        type: 'request.created',
        actor: { id: pipeline.id, kind: 'service', via: 'cli' },
        requestId: 'req_7',
        data: {
          action: 'terraform.apply',
          resource: 'acme/infra',
          environment: 'prod',
          digest,
          version: 1,
          effect: 'review',
          on_behalf_of: null,
          deadlineAt: NOW + 30 * MINUTE,
          escalateAt: NOW + 10 * MINUTE,
          requirements: [{ rule: 'prod-apply', approvers: ['group:data-owners'], quorum: 1 }],
        },
      },
    ])
  })

  it('starts an allowed request approved, decided by policy', () => {
    const { state, auditEvents } = openRequest(newRequest({ effect: 'allow', review: undefined }), NOW)
    expect(state).toMatchObject({ status: 'approved', decidedAt: NOW })
    expect(state.review).toBeUndefined()
    expect(auditEvents.map((event) => [event.type, event.data.cause])).toEqual([
      ['request.created', undefined],
      ['request.approved', 'policy'],
    ])
  })

  it('starts a denied request denied, decided by policy', () => {
    const { state, auditEvents } = openRequest(newRequest({ effect: 'deny', review: undefined }), NOW)
    expect(state.status).toBe('denied')
    expect(auditEvents.map((event) => event.type)).toEqual(['request.created', 'request.denied'])
  })

  it('records the human an agent acts for', () => {
    const agent: Principal = { ...pipeline, kind: 'agent', onBehalfOf: { id: 'riley@example.com', verified: false } }
    const { state, auditEvents } = openRequest(newRequest({ requester: agent }), NOW)
    expect(state.onBehalfOf).toEqual({ id: 'riley@example.com', verified: false })
    expect(auditEvents[0]?.data.on_behalf_of).toEqual({ id: 'riley@example.com', verified: false })
  })

  it('keeps a copy of the params, so later changes to the caller object cannot alter the stored version', () => {
    const params = { limit: 10 }
    const { state } = openRequest(newRequest({ input: { ...input, params } }), NOW)
    params.limit = 1_000_000
    expect(state.versions[0]?.params).toEqual({ limit: 10 })
  })

  it('refuses params with a non-finite number with invalid_request', () => {
    expect(() => openRequest(newRequest({ input: { ...input, params: { limit: Number.NaN } } }), NOW)).toThrow(
      expect.objectContaining({ code: 'invalid_request' }),
    )
  })

  it('throws a TypeError when asked to review without review settings', () => {
    expect(() => openRequest(newRequest({ review: undefined }), NOW)).toThrow(TypeError)
  })
})

describe('transition: votes', () => {
  it('approves on an eligible vote and records who voted, how, and on which digest', () => {
    const state = pending()
    const { state: next, auditEvents } = transition(state, approve(dana), NOW + MINUTE)
    expect(next).toMatchObject({ status: 'approved', decidedAt: NOW + MINUTE, updatedAt: NOW + MINUTE })
    expect(next.votes).toEqual([
      {
        requestId: 'req_7',
        version: 1,
        voterId: 'dana@example.com',
        decision: 'approve',
        at: NOW + MINUTE,
        voter: dana,
        via: 'slack',
      },
    ])
    expect(auditEvents).toEqual([
      {
        type: 'vote.cast',
        actor: { id: 'dana@example.com', kind: 'human', via: 'slack' },
        requestId: 'req_7',
        data: { version: 1, digest: state.digest, decision: 'approve', reason: null },
      },
      {
        type: 'request.approved',
        actor: { id: 'countersign', kind: 'system', via: 'gateway' },
        requestId: 'req_7',
        data: {
          cause: 'votes',
          digest: state.digest,
          version: 1,
          requirements: [{ rule: 'prod-apply', quorum: 1, approvals: ['dana@example.com'], denials: [] }],
        },
      },
    ])
  })

  it('denies on an eligible deny vote', () => {
    const next = apply(pending(), { type: 'vote', voter: dana, via: 'console', decision: 'deny', reason: 'wrong account' })
    expect(next.status).toBe('denied')
    expect(next.votes[0]?.reason).toBe('wrong account')
  })

  it('makes an approving edit a new version with a new digest that the editor approves', () => {
    const state = pending({ requirements: [{ ...settings.requirements[0]!, quorum: 2 }] })
    const editedParams = { argv: ['terraform', 'apply', '-target=module.vpc', 'plan.tfplan'], cwd: '/src' }
    const { state: next, auditEvents } = transition(
      state,
      { type: 'vote', voter: dana, via: 'console', decision: 'approve', editParams: editedParams },
      NOW + MINUTE,
    )
    const newDigest = canonicalDigest({ ...input, params: editedParams }, input.bind)
    expect(newDigest).not.toBe(state.digest)
    expect(next).toMatchObject({ status: 'pending', currentVersion: 2, digest: newDigest })
    expect(next.versions).toEqual([
      state.versions[0],
      { version: 2, params: editedParams, digest: newDigest, createdAt: NOW + MINUTE, createdBy: 'dana@example.com' },
    ])
    expect(next.votes.map((vote) => [vote.voterId, vote.version])).toEqual([['dana@example.com', 2]])
    expect(auditEvents[0]).toEqual({
      type: 'request.edited',
      actor: { id: 'dana@example.com', kind: 'human', via: 'console' },
      requestId: 'req_7',
      data: { from_version: 1, to_version: 2, previous_digest: state.digest, digest: newDigest, voided_votes: 0 },
    })
  })

  it('grants on the edited digest, so the original action can no longer be redeemed', () => {
    const edited = apply(pending(), {
      type: 'vote',
      voter: dana,
      via: 'console',
      decision: 'approve',
      editParams: { argv: ['terraform', 'plan'], cwd: '/src' },
    })
    expect(edited.status).toBe('approved')
    const withGrant = apply(edited, issue)
    const originalDigest = canonicalDigest(input, input.bind)
    expectRefused(
      withGrant,
      { type: 'grant_redeemed', jti: 'grant_1', digest: originalDigest, by: pipeline, via: 'api' },
      'digest_mismatch',
    )
  })

  it('treats an edit that leaves the params as they were as a plain approval', () => {
    const { state, auditEvents } = transition(
      pending(),
      { type: 'vote', voter: dana, via: 'console', decision: 'approve', editParams: { cwd: '/src', argv: ['terraform', 'apply', 'plan.tfplan'] } },
      NOW,
    )
    expect(state.currentVersion).toBe(1)
    expect(auditEvents.map((event) => event.type)).toEqual(['vote.cast', 'request.approved'])
  })

  it('refuses a vote on a request decided by policy with request_not_pending', () => {
    const allowed = deepFreeze(openRequest(newRequest({ effect: 'allow', review: undefined }), NOW).state)
    expectRefused(allowed, approve(dana), 'request_not_pending')
  })
})

describe('transition: cancel', () => {
  it('lets the requester cancel a pending request', () => {
    const { state, auditEvents } = transition(pending(), { type: 'cancel', by: pipeline, via: 'cli', reason: 'superseded' }, NOW)
    expect(state).toMatchObject({ status: 'cancelled', decidedAt: NOW })
    expect(auditEvents).toEqual([
      {
        type: 'request.cancelled',
        actor: { id: pipeline.id, kind: 'service', via: 'cli' },
        requestId: 'req_7',
        data: { reason: 'superseded' },
      },
    ])
  })

  it('refuses a cancel by anyone but the requester with not_requester', () => {
    expectRefused(pending(), { type: 'cancel', by: dana, via: 'console' }, 'not_requester')
  })

  it('refuses to cancel a request that is no longer pending with request_not_pending', () => {
    expectRefused(approved(), { type: 'cancel', by: pipeline, via: 'cli' }, 'request_not_pending')
  })

  it('refuses a cancel after the deadline, leaving the request to its timeout rule', () => {
    expectRefused(pending(), { type: 'cancel', by: pipeline, via: 'cli' }, 'request_not_pending', NOW + 30 * MINUTE)
  })
})

describe('transition: edits judged again by the policy', () => {
  const stricter: ReviewSettings = {
    requirements: [{ rule: 'big-change', approvers: ['group:security'], quorum: 1, denyQuorum: 1 }],
    allowEdit: true,
    requireReason: true,
    freshAuthMs: 5 * MINUTE,
    escalateTo: [],
    onTimeout: 'expire',
    policyGroups: { security: ['pat@example.com'] },
  }
  const editTo = (params: Record<string, unknown>, extra: Partial<Extract<LifecycleEvent, { type: 'vote' }>> = {}): LifecycleEvent => ({
    type: 'vote', voter: { ...dana, authTime: NOW }, via: 'console', decision: 'approve', reason: 'smaller', editParams: params, editReview: stricter, ...extra,
  })

  it('adds the requirements of the edited params and keeps the stricter options', () => {
    const { state } = transition(pending(), editTo({ argv: ['terraform', 'apply', '-target=x'], cwd: '/src' }), NOW)
    expect(state.status).toBe('pending')
    expect(state.review?.requirements.map((r) => r.rule)).toEqual(['prod-apply', 'big-change'])
    expect(state.review).toMatchObject({ allowEdit: true, requireReason: true, freshAuthMs: 5 * MINUTE, onTimeout: 'deny' })
    expect(state.review?.policyGroups).toEqual({ security: ['pat@example.com'] })
  })

  it('refuses the edit when the stricter review asks more of the editor than they gave', () => {
    expectRefused(pending(), editTo({ argv: ['terraform', 'destroy'], cwd: '/src' }, { reason: undefined }), 'reason_required')
  })

  it('keeps the review as it was when the edit changes nothing', () => {
    const { state } = transition(pending(), editTo({ ...input.params }), NOW)
    expect(state.review?.requirements.map((r) => r.rule)).toEqual(['prod-apply'])
    expect(state.status).toBe('approved')
  })
})

describe('transition: expire', () => {
  it('refuses to expire a request before its deadline with invalid_transition', () => {
    expectRefused(pending(), { type: 'expire' }, 'invalid_transition', NOW + 30 * MINUTE - 1)
  })

  it('denies a request at its deadline when on_timeout is deny', () => {
    const { state, auditEvents } = transition(pending(), { type: 'expire' }, NOW + 30 * MINUTE)
    expect(state).toMatchObject({ status: 'denied', decidedAt: NOW + 30 * MINUTE })
    expect(auditEvents).toEqual([
      {
        type: 'request.denied',
        actor: { id: 'countersign', kind: 'system', via: 'scheduler' },
        requestId: 'req_7',
        data: { cause: 'timeout', deadline_at: new Date(NOW + 30 * MINUTE).toISOString() },
      },
    ])
  })

  it('expires a request after its deadline when on_timeout is expire', () => {
    const { state, auditEvents } = transition(pending({ onTimeout: 'expire' }), { type: 'expire' }, NOW + 31 * MINUTE)
    expect(state.status).toBe('expired')
    expect(auditEvents.map((event) => event.type)).toEqual(['request.expired'])
  })

  it('refuses to expire a request that is already decided with request_not_pending', () => {
    expectRefused(approved(), { type: 'expire' }, 'request_not_pending', NOW + 31 * MINUTE)
  })
})

describe('transition: escalate', () => {
  it('refuses to escalate before escalateAt with invalid_transition', () => {
    expectRefused(pending(), { type: 'escalate' }, 'invalid_transition', NOW + 10 * MINUTE - 1)
  })

  it('escalates at escalateAt and records where it went', () => {
    const { state, auditEvents } = transition(pending(), { type: 'escalate' }, NOW + 10 * MINUTE)
    expect(state).toMatchObject({ status: 'pending', escalatedAt: NOW + 10 * MINUTE })
    expect(reviewStateOf(state).escalated).toBe(true)
    expect(auditEvents).toEqual([
      {
        type: 'request.escalated',
        actor: { id: 'countersign', kind: 'system', via: 'scheduler' },
        requestId: 'req_7',
        data: { to: ['group:security'] },
      },
    ])
  })

  it('lets escalation approvers decide after escalation', () => {
    const escalated = apply(pending(), { type: 'escalate' }, NOW + 10 * MINUTE)
    expect(apply(escalated, approve(pat), NOW + 11 * MINUTE).status).toBe('approved')
  })

  it('refuses to escalate twice with invalid_transition', () => {
    const escalated = apply(pending(), { type: 'escalate' }, NOW + 10 * MINUTE)
    expectRefused(escalated, { type: 'escalate' }, 'invalid_transition', NOW + 20 * MINUTE)
  })

  it('refuses to escalate a request whose rule has no escalation with invalid_transition', () => {
    expectRefused(pending({ escalateTo: [], escalateAfterMs: undefined }), { type: 'escalate' }, 'invalid_transition', NOW + 20 * MINUTE)
  })

  it('refuses to escalate once the deadline has passed with invalid_transition', () => {
    expectRefused(pending(), { type: 'escalate' }, 'invalid_transition', NOW + 30 * MINUTE)
  })
})

describe('transition: grants', () => {
  it('refuses to issue a grant for a pending request with request_not_approved', () => {
    expectRefused(pending(), issue, 'request_not_approved')
  })

  it('issues one grant for an approved request, bound to its digest', () => {
    const state = approved()
    const { state: next, auditEvents } = transition(state, issue, NOW)
    expect(next.grant).toEqual({ jti: 'grant_1', status: 'issued', issuedAt: NOW, expiresAt: NOW + 5 * MINUTE })
    expect(auditEvents).toEqual([
      {
        type: 'grant.issued',
        actor: { id: 'countersign', kind: 'system', via: 'gateway' },
        requestId: 'req_7',
        data: { jti: 'grant_1', digest: state.digest, expires_at: new Date(NOW + 5 * MINUTE).toISOString() },
      },
    ])
  })

  it('refuses a second grant for the same approval with invalid_transition', () => {
    expectRefused(apply(approved(), issue), { ...issue, jti: 'grant_2' }, 'invalid_transition')
  })

  it('refuses a grant that expires at or before the moment it is issued with invalid_request', () => {
    expectRefused(approved(), { ...issue, expiresAt: NOW }, 'invalid_request')
  })

  it('redeems the grant once with the approved digest', () => {
    const withGrant = apply(approved(), issue)
    const { state, auditEvents } = transition(
      withGrant,
      { type: 'grant_redeemed', jti: 'grant_1', digest: withGrant.digest, by: downstream, via: 'api' },
      NOW + MINUTE,
    )
    expect(state.grant).toMatchObject({ status: 'redeemed', redeemedAt: NOW + MINUTE })
    expect(auditEvents).toEqual([
      {
        type: 'grant.redeemed',
        actor: { id: 'svc:warehouse', kind: 'service', via: 'api' },
        requestId: 'req_7',
        data: { jti: 'grant_1', digest: withGrant.digest },
      },
    ])
  })

  it('refuses a second redemption with grant_already_redeemed', () => {
    const state = redeemed()
    expectRefused(
      state,
      { type: 'grant_redeemed', jti: 'grant_1', digest: state.digest, by: pipeline, via: 'api' },
      'grant_already_redeemed',
      NOW + 2 * MINUTE,
    )
  })

  it('refuses to redeem with another digest with digest_mismatch', () => {
    const withGrant = apply(approved(), issue)
    const other = canonicalDigest({ ...input, params: { argv: ['terraform', 'destroy'], cwd: '/src' } }, input.bind)
    const error = expectRefused(
      withGrant,
      { type: 'grant_redeemed', jti: 'grant_1', digest: other, by: pipeline, via: 'api' },
      'digest_mismatch',
    )
    expect(error.details).toEqual({ expected: withGrant.digest, actual: other })
  })

  it('refuses to redeem when a different bound file is presented with digest_mismatch', () => {
    const withGrant = apply(approved(), issue)
    const swappedPlan = canonicalDigest(input, [{ path: 'plan.tfplan', sha256: 'd'.repeat(64) }])
    expectRefused(
      withGrant,
      { type: 'grant_redeemed', jti: 'grant_1', digest: swappedPlan, by: pipeline, via: 'api' },
      'digest_mismatch',
    )
  })

  it('refuses to redeem an unknown grant id with grant_invalid', () => {
    const withGrant = apply(approved(), issue)
    expectRefused(
      withGrant,
      { type: 'grant_redeemed', jti: 'grant_forged', digest: withGrant.digest, by: pipeline, via: 'api' },
      'grant_invalid',
    )
  })

  it('refuses to redeem at the expiry instant with grant_expired, even before the grant is marked expired', () => {
    const withGrant = apply(approved(), issue)
    expectRefused(
      withGrant,
      { type: 'grant_redeemed', jti: 'grant_1', digest: withGrant.digest, by: pipeline, via: 'api' },
      'grant_expired',
      NOW + 5 * MINUTE,
    )
  })

  it('marks an unredeemed grant expired at its expiry and then refuses it with grant_expired', () => {
    const withGrant = apply(approved(), issue)
    expectRefused(withGrant, { type: 'grant_expired' }, 'invalid_transition', NOW + 5 * MINUTE - 1)
    const { state, auditEvents } = transition(withGrant, { type: 'grant_expired' }, NOW + 5 * MINUTE)
    expect(state.grant?.status).toBe('expired')
    expect(auditEvents.map((event) => event.type)).toEqual(['grant.expired'])
    expectRefused(
      deepFreeze(state),
      { type: 'grant_redeemed', jti: 'grant_1', digest: state.digest, by: pipeline, via: 'api' },
      'grant_expired',
      NOW + MINUTE,
    )
  })

  it('refuses to expire a redeemed grant with invalid_transition', () => {
    expectRefused(redeemed(), { type: 'grant_expired' }, 'invalid_transition', NOW + 10 * MINUTE)
  })
})

describe('transition: result', () => {
  const succeeded: LifecycleEvent = { type: 'result', by: pipeline, via: 'cli', outcome: 'succeeded', exitCode: 0 }

  it('refuses a result before the grant is redeemed with invalid_transition', () => {
    expectRefused(apply(approved(), issue), succeeded, 'invalid_transition')
  })

  it('records the result the requester reports after redemption', () => {
    const { state, auditEvents } = transition(redeemed(), succeeded, NOW + 2 * MINUTE)
    expect(state.result).toEqual({ outcome: 'succeeded', exitCode: 0 })
    expect(auditEvents).toEqual([
      {
        type: 'request.result',
        actor: { id: pipeline.id, kind: 'service', via: 'cli' },
        requestId: 'req_7',
        data: { outcome: 'succeeded', exit_code: 0, detail: null },
      },
    ])
  })

  it('refuses a result reported by anyone but the requester with not_requester', () => {
    expectRefused(redeemed(), { ...succeeded, by: eve }, 'not_requester')
  })

  it('refuses a second result with invalid_transition', () => {
    const done = apply(redeemed(), succeeded, NOW + 2 * MINUTE)
    expectRefused(done, { ...succeeded, outcome: 'failed', exitCode: 1 }, 'invalid_transition')
  })
})

describe('transition: the whole way through', () => {
  it('takes a request from pending to succeeded with one audit event per step', () => {
    let state = pending({ requirements: [{ ...settings.requirements[0]!, quorum: 2 }] })
    const types: string[] = []
    const steps: Array<[LifecycleEvent, number]> = [
      [approve(dana), NOW + MINUTE],
      [{ type: 'escalate' }, NOW + 10 * MINUTE],
      [approve(omar), NOW + 12 * MINUTE],
      [{ ...issue, expiresAt: NOW + 17 * MINUTE }, NOW + 12 * MINUTE],
      [{ type: 'grant_redeemed', jti: 'grant_1', digest: state.digest, by: pipeline, via: 'api' }, NOW + 13 * MINUTE],
      [{ type: 'result', by: pipeline, via: 'cli', outcome: 'failed', exitCode: 2, detail: 'provider error' }, NOW + 14 * MINUTE],
    ]
    for (const [event, at] of steps) {
      const result = transition(state, event, at)
      state = deepFreeze(result.state)
      types.push(...result.auditEvents.map((auditEvent) => auditEvent.type))
    }
    expect(types).toEqual([
      'vote.cast',
      'request.escalated',
      'vote.cast',
      'request.approved',
      'grant.issued',
      'grant.redeemed',
      'request.result',
    ])
    expect(state).toMatchObject({
      status: 'approved',
      grant: { status: 'redeemed' },
      result: { outcome: 'failed', exitCode: 2, detail: 'provider error' },
      updatedAt: NOW + 14 * MINUTE,
    })
  })
})
