import { describe, expect, it } from 'vitest'
import { CountersignError, type ErrorCode } from './errors.js'
import { openRequest, transition, type LifecycleEvent } from './request-lifecycle.js'
import { isEligibleApprover } from './review-eligibility.js'
import type { ReviewRequirements } from './review-requirements.js'
import { checkVote, tallyVotes } from './review-tally.js'
import type { Principal, RecordedVote, RequestState, ReviewRequirement } from './types.js'

const NOW = Date.UTC(2025, 0, 15, 9, 0, 0)
const MINUTE = 60_000

function person(id: string, groups: string[] = [], extra: Partial<Principal> = {}): Principal {
  return { id, kind: 'human', displayName: id, email: id.includes('@') ? id : undefined, groups, ...extra }
}

const riley = person('riley@example.com')
const dana = person('dana@example.com')
const danaOnSlack = person('slack:T01/U0DANA', [], { email: 'DANA@Example.com' })
const omar = person('okta|00u2omar', [], { email: 'Omar@Example.com' })
const sam = person('sam@example.com', ['sre'])
const pat = person('pat@example.com', ['security'])
const eve = person('eve@example.com', ['marketing'])
const releaseBot: Principal = {
  id: 'agent:release-bot',
  kind: 'agent',
  displayName: 'Release bot',
  groups: ['data-owners'],
  onBehalfOf: { id: 'riley@example.com', verified: false },
}
const reviewerBot: Principal = { id: 'agent:reviewer', kind: 'agent', displayName: 'Reviewer bot', groups: ['data-owners'] }
const deployer: Principal = { id: 'svc:deployer', kind: 'service', displayName: 'Deployer', groups: ['data-owners'] }

const policyGroups = { 'data-owners': ['dana@example.com', 'omar@example.com', 'riley@example.com', 'sam@example.com'] }

const owners: ReviewRequirement = {
  rule: 'prod-export-needs-two-owners',
  approvers: ['group:data-owners'],
  quorum: 2,
  denyQuorum: 1,
}

interface Setup {
  requester?: Principal
  requirements?: ReviewRequirement[]
  settings?: Partial<ReviewRequirements>
}

/** A pending request for `db.export` on prod, frozen so any mutation fails the test. */
function pendingRequest(setup: Setup = {}): RequestState {
  const { state } = openRequest(
    {
      id: 'req_1',
      requester: setup.requester ?? releaseBot,
      input: { action: 'db.export', resource: 'orders', environment: 'prod', params: { limit: 100 } },
      effect: 'review',
      review: {
        requirements: setup.requirements ?? [owners],
        allowEdit: true,
        requireReason: false,
        escalateTo: ['group:security'],
        onTimeout: 'deny',
        policyGroups,
        timeoutMs: 30 * MINUTE,
        escalateAfterMs: 10 * MINUTE,
        notify: [],
        ...setup.settings,
      },
      via: 'api',
      decision: { matchedRules: [{ name: 'owners', effect: 'review' }], risk: 0, policySha256: 'ab' },
    },
    NOW,
  )
  return deepFreeze(state)
}

/** Every request these tests open has the same action, so the same first digest. */
const FIRST_DIGEST = pendingRequest().digest

function voteEvent(voter: Principal, extra: Partial<Extract<LifecycleEvent, { type: 'vote' }>> = {}): LifecycleEvent {
  return { type: 'vote', voter, via: 'console', decision: 'approve', digest: FIRST_DIGEST, reason: 'checked the export scope', ...extra }
}

function afterVotes(state: RequestState, ...voters: Principal[]): RequestState {
  return voters.reduce((current, voter) => deepFreeze(transition(current, voteEvent(voter), NOW).state), state)
}

/**
 * Runs the event, expects the refusal code, and checks the request is exactly
 * as it was. For vote refusals, checkVote on its own must give the same answer.
 */
function expectRefused(state: RequestState, event: LifecycleEvent, code: ErrorCode, now = NOW): CountersignError {
  const before = structuredClone(state)
  let caught: unknown
  try {
    transition(state, event, now)
  } catch (error) {
    caught = error
  }
  expect(caught).toBeInstanceOf(CountersignError)
  const error = caught as CountersignError
  expect(error.code).toBe(code)
  expect(state).toEqual(before)
  expect(state.votes).toEqual(before.votes)
  expect(state.status).toBe(before.status)
  if (event.type === 'vote' && code !== 'invalid_request') {
    expect(() => checkVote(state, event.voter, event, now)).toThrow(error.message)
  }
  return error
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const member of Object.values(value)) deepFreeze(member)
  }
  return value
}

function recorded(voter: Principal, decision: 'approve' | 'deny', version = 1, at = NOW): RecordedVote {
  return { requestId: 'req_1', version, voterId: voter.id, decision, at, voter, via: 'console' }
}

function reviewWith(votes: RecordedVote[], requirements: ReviewRequirement[] = [owners]): RequestState {
  return { ...pendingRequest({ requirements }), votes }
}

describe('checkVote refuses and records nothing', () => {
  it('refuses a vote from the requester with self_approval', () => {
    const state = pendingRequest({ requester: dana })
    const error = expectRefused(state, voteEvent(dana), 'self_approval')
    expect(error.message).toBe(
      'dana@example.com made this request or is the person it was made for, so cannot review it; ask another approver.',
    )
  })

  it('refuses the requester voting through another channel with the same email in other case with self_approval', () => {
    expectRefused(pendingRequest({ requester: dana }), voteEvent(danaOnSlack), 'self_approval')
  })

  it('refuses a vote from the human an agent only claims to act for with self_approval', () => {
    expectRefused(pendingRequest(), voteEvent(riley), 'self_approval')
  })

  it('refuses a vote from the verified on-behalf-of human with self_approval', () => {
    const requester: Principal = { ...releaseBot, onBehalfOf: { id: 'Riley@Example.com', verified: true } }
    expectRefused(pendingRequest({ requester }), voteEvent(riley), 'self_approval')
  })

  it('refuses a vote from an agent in an approver group with non_human_reviewer', () => {
    expectRefused(pendingRequest(), voteEvent(reviewerBot), 'non_human_reviewer')
  })

  it('refuses a vote from a service in an approver group with non_human_reviewer', () => {
    expectRefused(pendingRequest(), voteEvent(deployer), 'non_human_reviewer')
  })

  it('refuses the requesting agent approving its own request with non_human_reviewer', () => {
    expectRefused(pendingRequest(), voteEvent(releaseBot), 'non_human_reviewer')
  })

  it('refuses a vote from someone in no approver group with not_an_approver', () => {
    const error = expectRefused(pendingRequest(), voteEvent(eve), 'not_an_approver')
    expect(error.message).toBe('eve@example.com is not an approver for this request; approvers are group:data-owners.')
  })

  it('refuses an escalation approver before the request is escalated with not_an_approver', () => {
    expectRefused(pendingRequest(), voteEvent(pat), 'not_an_approver')
  })

  it('refuses a second vote by the same person on the same version with already_voted', () => {
    const state = afterVotes(pendingRequest(), dana)
    expectRefused(state, voteEvent(dana, { decision: 'deny' }), 'already_voted')
  })

  it('refuses a second vote by the same person through another channel with already_voted', () => {
    const state = afterVotes(pendingRequest(), dana)
    expectRefused(state, voteEvent(danaOnSlack), 'already_voted')
  })

  it('refuses a vote on an approved request with request_not_pending', () => {
    const approved = afterVotes(pendingRequest(), dana, omar)
    expect(approved.status).toBe('approved')
    expectRefused(approved, voteEvent(sam), 'request_not_pending')
  })

  it('refuses a vote on a denied request with request_not_pending', () => {
    const denied = deepFreeze(transition(pendingRequest(), voteEvent(dana, { decision: 'deny' }), NOW).state)
    expect(denied.status).toBe('denied')
    expectRefused(denied, voteEvent(omar), 'request_not_pending')
  })

  it('refuses a vote on a cancelled request with request_not_pending', () => {
    const cancelled = deepFreeze(transition(pendingRequest(), { type: 'cancel', by: releaseBot, via: 'api' }, NOW).state)
    expectRefused(cancelled, voteEvent(dana), 'request_not_pending')
  })

  it('refuses a vote after the deadline, before the request is marked expired, with request_not_pending', () => {
    const state = pendingRequest()
    expectRefused(state, voteEvent(dana), 'request_not_pending', NOW + 30 * MINUTE)
  })

  it.each([undefined, '', '   '])('refuses a vote with reason %j when the rule requires one with reason_required', (reason) => {
    const state = pendingRequest({ settings: { requireReason: true } })
    expectRefused(state, voteEvent(dana, { reason }), 'reason_required')
  })

  it('refuses a vote from someone who never signed in interactively with fresh_auth_required', () => {
    const state = pendingRequest({ settings: { freshAuthMs: 5 * MINUTE } })
    expectRefused(state, voteEvent(dana), 'fresh_auth_required')
  })

  it('refuses a vote from someone who signed in too long ago with fresh_auth_required', () => {
    const state = pendingRequest({ settings: { freshAuthMs: 5 * MINUTE } })
    const stale = { ...dana, authTime: NOW - 5 * MINUTE - 1 }
    const error = expectRefused(state, voteEvent(stale), 'fresh_auth_required')
    expect(error.details).toEqual({ fresh_auth_ms: 5 * MINUTE, authenticated_at: new Date(NOW - 5 * MINUTE - 1).toISOString() })
    expect(error.message).toBe('This request requires a sign-in within the last 5 min; sign in again and vote.')
  })

  it('accepts a vote from someone who signed in exactly at the edge of the fresh-auth window', () => {
    const state = pendingRequest({ settings: { freshAuthMs: 5 * MINUTE } })
    const fresh = { ...dana, authTime: NOW - 5 * MINUTE }
    expect(transition(state, voteEvent(fresh), NOW).state.votes).toHaveLength(1)
  })

  it('refuses an edit when the rule does not allow edits with edit_not_allowed', () => {
    const state = pendingRequest({ settings: { allowEdit: false } })
    expectRefused(state, voteEvent(dana, { editParams: { limit: 10 } }), 'edit_not_allowed')
  })

  it('refuses an edit attached to a deny vote with edit_not_allowed', () => {
    expectRefused(pendingRequest(), voteEvent(dana, { decision: 'deny', editParams: { limit: 10 } }), 'edit_not_allowed')
  })

  it('refuses edited params that JSON cannot carry with invalid_request', () => {
    expectRefused(pendingRequest(), voteEvent(dana, { editParams: { limit: Number.NaN } }), 'invalid_request')
  })

  it('reports self_approval before not_an_approver for a requester outside the approver groups', () => {
    expectRefused(pendingRequest({ requester: eve }), voteEvent(eve), 'self_approval')
  })

  it('reports not_an_approver before reason_required and fresh_auth_required for an outsider', () => {
    const state = pendingRequest({ settings: { requireReason: true, freshAuthMs: MINUTE } })
    expectRefused(state, voteEvent(eve, { reason: '' }), 'not_an_approver')
  })

  it('reports already_voted before reason_required for a second vote', () => {
    const state = afterVotes(pendingRequest(), dana)
    const strict = deepFreeze({ ...state, review: { ...state.review!, requireReason: true } })
    expectRefused(strict, voteEvent(dana, { reason: '' }), 'already_voted')
  })

  it('reports request_not_pending before non_human_reviewer', () => {
    const approved = afterVotes(pendingRequest(), dana, omar)
    expectRefused(approved, voteEvent(reviewerBot), 'request_not_pending')
  })
})

describe('tallyVotes', () => {
  it('approves when quorum distinct eligible people approve', () => {
    const approved = afterVotes(pendingRequest(), dana, omar)
    expect(approved.status).toBe('approved')
    expect(tallyVotes(approved).requirements).toEqual([
      {
        rule: 'prod-export-needs-two-owners',
        quorum: 2,
        denyQuorum: 1,
        approvals: ['dana@example.com', 'okta|00u2omar'],
        denials: [],
        met: true,
        denied: false,
      },
    ])
  })

  it('counts a person in two approver groups once, so a quorum of 2 stays pending', () => {
    const twoGroups: ReviewRequirement = { ...owners, approvers: ['group:data-owners', 'group:sre'] }
    const state = afterVotes(pendingRequest({ requirements: [twoGroups] }), sam)
    expect(state.status).toBe('pending')
    expect(tallyVotes(state)).toMatchObject({
      outcome: 'pending',
      requirements: [{ approvals: ['sam@example.com'], met: false }],
    })
  })

  it('counts the same person voting through two channels once, by their first vote', () => {
    const review = reviewWith([recorded(dana, 'approve'), recorded(danaOnSlack, 'approve', 1, NOW + 1)])
    expect(tallyVotes(review)).toMatchObject({ outcome: 'pending', requirements: [{ approvals: ['dana@example.com'] }] })
  })

  it('never counts recorded votes from agents, services, the requester or the on-behalf-of human', () => {
    const review = reviewWith([
      recorded(reviewerBot, 'approve'),
      recorded(deployer, 'approve'),
      recorded(releaseBot, 'approve'),
      recorded(riley, 'approve'),
      recorded(dana, 'approve'),
    ])
    expect(tallyVotes(review)).toMatchObject({ outcome: 'pending', requirements: [{ approvals: ['dana@example.com'] }] })
  })

  it('denies on an eligible deny even when the approval quorum is met at the same time', () => {
    const review = reviewWith([recorded(dana, 'approve'), recorded(omar, 'approve'), recorded(sam, 'deny')])
    expect(tallyVotes(review)).toMatchObject({
      outcome: 'denied',
      requirements: [{ met: true, denied: true, denials: ['sam@example.com'] }],
    })
  })

  it('denies a pending request as soon as one eligible person denies it', () => {
    const { state, auditEvents } = transition(afterVotes(pendingRequest(), dana), voteEvent(omar, { decision: 'deny' }), NOW)
    expect(state.status).toBe('denied')
    expect(auditEvents.map((event) => event.type)).toEqual(['vote.cast', 'request.denied'])
  })

  it('approves when denials stay below a deny quorum of 2', () => {
    const review = reviewWith(
      [recorded(dana, 'approve'), recorded(omar, 'approve'), recorded(sam, 'deny')],
      [{ ...owners, denyQuorum: 2 }],
    )
    expect(tallyVotes(review).outcome).toBe('approved')
  })

  it('never counts a recorded approval cast with a key the requester side created, nor the editor\'s own on their version', () => {
    const minted = { ...omar, keyCreatedBy: 'riley@example.com' }
    expect(tallyVotes(reviewWith([recorded(dana, 'approve'), recorded(minted, 'approve')]))).toMatchObject({
      outcome: 'pending',
      requirements: [{ approvals: ['dana@example.com'] }],
    })
    const base = pendingRequest()
    const edited: RequestState = {
      ...base,
      versions: [...base.versions, { version: 2, params: { limit: 5 }, digest: 'e'.repeat(64), createdAt: NOW, createdBy: 'okta|00u2omar' }],
      currentVersion: 2,
      digest: 'e'.repeat(64),
      votes: [recorded(omar, 'approve', 2), recorded(dana, 'approve', 2, NOW + 1), recorded(person('omar@example.com'), 'approve', 2, NOW + 2)],
    }
    expect(tallyVotes(edited)).toMatchObject({ outcome: 'pending', requirements: [{ approvals: ['dana@example.com'] }] })
  })

  it('ignores a recorded deny from someone who is not eligible', () => {
    const review = reviewWith([recorded(eve, 'deny'), recorded(dana, 'approve'), recorded(omar, 'approve')])
    expect(tallyVotes(review)).toMatchObject({ outcome: 'approved', requirements: [{ denials: [] }] })
  })

  it('requires every requirement to be met (AND across rules)', () => {
    const requirements: ReviewRequirement[] = [
      { rule: 'owners', approvers: ['group:data-owners'], quorum: 1, denyQuorum: 1 },
      { rule: 'risky-prod-change', approvers: ['group:sre'], quorum: 1, denyQuorum: 1 },
    ]
    const afterDana = afterVotes(pendingRequest({ requirements }), dana)
    expect(afterDana.status).toBe('pending')
    expect(tallyVotes(afterDana).requirements.map((requirement) => requirement.met)).toEqual([true, false])
    const afterSam = afterVotes(afterDana, person('sre-only@example.com', ['sre']))
    expect(afterSam.status).toBe('approved')
  })

  it('denies when the deny threshold of any one requirement is met', () => {
    const requirements: ReviewRequirement[] = [
      { rule: 'owners', approvers: ['group:data-owners'], quorum: 1, denyQuorum: 1 },
      { rule: 'risky-prod-change', approvers: ['group:sre'], quorum: 1, denyQuorum: 1 },
    ]
    const review = reviewWith([recorded(dana, 'approve'), recorded(person('sre-only@example.com', ['sre']), 'deny')], requirements)
    expect(tallyVotes(review).outcome).toBe('denied')
  })

  it('stops counting approvals of the old version once a reviewer edits the params, and never counts the editor on their edit', () => {
    const afterDana = afterVotes(pendingRequest(), dana)
    const { state, auditEvents } = transition(afterDana, voteEvent(omar, { editParams: { limit: 10 } }), NOW + 1)
    expect(state.currentVersion).toBe(2)
    expect(state.status).toBe('pending')
    expect(tallyVotes(state).requirements[0]?.approvals).toEqual([])
    expect(auditEvents.map((event) => event.type)).toEqual(['request.edited', 'vote.cast'])
    expect(auditEvents[0]?.data).toMatchObject({ from_version: 1, to_version: 2, voided_votes: 1 })

    const afterDanaAgain = deepFreeze(transition(deepFreeze(state), voteEvent(dana, { digest: state.digest }), NOW + 2).state)
    expect(afterDanaAgain.status).toBe('pending')
    const again = transition(afterDanaAgain, voteEvent(sam, { digest: state.digest }), NOW + 3).state
    expect(again.status).toBe('approved')
    expect(tallyVotes(again).requirements[0]?.approvals).toEqual(['dana@example.com', 'sam@example.com'])
  })

  it('lets escalation approvers vote and count once the request is escalated', () => {
    const escalated = deepFreeze(transition(afterVotes(pendingRequest(), dana), { type: 'escalate' }, NOW + 10 * MINUTE).state)
    const { state } = transition(escalated, voteEvent(pat), NOW + 11 * MINUTE)
    expect(state.status).toBe('approved')
    expect(tallyVotes(state).requirements[0]?.approvals).toEqual(['dana@example.com', 'pat@example.com'])
  })

  it('treats a quorum or deny quorum below 1 as 1, so a requirement always needs a person', () => {
    const review = reviewWith([], [{ ...owners, quorum: 0, denyQuorum: 0 }])
    expect(tallyVotes(review)).toMatchObject({ outcome: 'pending', requirements: [{ quorum: 1, denyQuorum: 1 }] })
  })

  it('keeps a review with no requirements pending instead of approving it', () => {
    expect(tallyVotes(reviewWith([], [])).outcome).toBe('pending')
  })
})

describe('isEligibleApprover', () => {
  it('matches a group carried by the identity', () => {
    expect(isEligibleApprover(['group:sre'], sam, {})).toBe(true)
  })

  it('matches a policy group member by email, ignoring case', () => {
    expect(isEligibleApprover(['group:data-owners'], omar, policyGroups)).toBe(true)
  })

  it('matches a direct entry by exact id, and by email ignoring case', () => {
    expect(isEligibleApprover(['okta|00u2omar'], omar, {})).toBe(true)
    expect(isEligibleApprover(['OMAR@example.com'], omar, {})).toBe(true)
    expect(isEligibleApprover(['OKTA|00u2omar'], omar, {})).toBe(false)
  })

  it('does not match someone outside every entry', () => {
    expect(isEligibleApprover(['group:data-owners', 'group:sre', 'dana@example.com'], eve, policyGroups)).toBe(false)
  })

  it.each(['group:constructor', 'group:__proto__', 'group:toString', 'group:'])(
    'does not match %s through properties every object inherits',
    (entry) => {
      expect(isEligibleApprover([entry], eve, policyGroups)).toBe(false)
    },
  )
})
