import { describe, expect, it } from 'vitest'
import { openRequest, transition } from './request-lifecycle.js'
import { reviewEligibility } from './review-eligibility.js'
import type { Principal, RequestState } from './types.js'

const NOW = Date.UTC(2025, 0, 15, 9, 0, 0)
const MINUTE = 60_000

function person(id: string, extra: Partial<Principal> = {}): Principal {
  return { id, kind: 'human', displayName: id, email: id, groups: ['owners'], authTime: NOW, ...extra }
}

const dana = person('dana@example.com')
const omar = person('omar@example.com')
const priya = person('priya@example.com')
const agent: Principal = { id: 'etl-bot', kind: 'agent', displayName: 'ETL bot', groups: ['owners'], onBehalfOf: { id: 'priya@example.com', verified: false } }

function pending(): RequestState {
  return openRequest(
    {
      id: 'req_1',
      requester: agent,
      input: { action: 'db.export', resource: 'orders', environment: 'prod', params: { limit: 100 } },
      effect: 'review',
      decision: { matchedRules: [{ name: 'owners', effect: 'review' }], risk: 0, policySha256: 'ab' },
      review: {
        requirements: [{ rule: 'owners', approvers: ['group:owners'], quorum: 1, denyQuorum: 1 }],
        timeoutMs: 30 * MINUTE,
        onTimeout: 'deny',
        requireReason: false,
        allowEdit: true,
        freshAuthMs: 5 * MINUTE,
        escalateTo: [],
        notify: [],
        policyGroups: {},
      },
      via: 'api',
    },
    NOW,
  ).state
}

function refusalOf(state: RequestState, voter: Principal, digest?: string): { code: string; message: string; details: Record<string, unknown> } {
  const answer = reviewEligibility(state, voter, NOW, digest)
  if (answer.eligible) throw new Error(`${voter.id} was eligible`)
  return { code: answer.refusal.code, message: answer.refusal.message, details: answer.refusal.details }
}

describe('reviewEligibility', () => {
  it('lets an approver vote on the version they name', () => {
    const state = pending()
    expect(reviewEligibility(state, dana, NOW, state.digest)).toEqual({ eligible: true })
  })

  it('leaves the sign-in age to the vote: a reviewer who must sign in again can still review', () => {
    expect(reviewEligibility(pending(), { ...dana, authTime: NOW - 60 * MINUTE }, NOW)).toEqual({ eligible: true })
  })

  it('refuses a key the human the agent acts for created with self_approval', () => {
    expect(refusalOf(pending(), { ...dana, keyCreatedBy: 'PRIYA@example.com' })).toMatchObject({
      code: 'self_approval',
      details: { voter_id: 'dana@example.com', key_created_by: 'PRIYA@example.com' },
    })
  })

  it('refuses a key the requesting agent created with self_approval', () => {
    expect(refusalOf(pending(), { ...omar, keyCreatedBy: 'etl-bot' }).code).toBe('self_approval')
  })

  it('refuses the on-behalf-of human with self_approval', () => {
    expect(refusalOf(pending(), priya).code).toBe('self_approval')
  })

  it('refuses the editor of the current version with self_approval naming the version', () => {
    const state = pending()
    const edited = transition(state, { type: 'vote', voter: dana, via: 'console', decision: 'approve', digest: state.digest, editParams: { limit: 5 } }, NOW).state
    expect(refusalOf(edited, dana, edited.digest)).toEqual({
      code: 'self_approval',
      message: 'dana@example.com authored version 2 of this request (an edit), so cannot approve it; it needs its approvals from other reviewers.',
      details: { voter_id: 'dana@example.com', edited_version: 2 },
    })
    expect(reviewEligibility(edited, omar, NOW, edited.digest)).toEqual({ eligible: true })
  })

  it('refuses a digest other than the current version\'s with version_mismatch, and ignores the version when none is named', () => {
    const state = pending()
    const edited = transition(state, { type: 'vote', voter: omar, via: 'console', decision: 'approve', digest: state.digest, editParams: { limit: 5 } }, NOW).state
    expect(refusalOf(edited, dana, state.digest)).toMatchObject({ code: 'version_mismatch', details: { current_version: 2 } })
    expect(reviewEligibility(edited, dana, NOW)).toEqual({ eligible: true })
  })

  it('says who may not vote before which version they named', () => {
    expect(refusalOf(pending(), agent, 'f'.repeat(64)).code).toBe('non_human_reviewer')
    expect(refusalOf(pending(), person('eve@example.com', { groups: [] }), 'f'.repeat(64)).code).toBe('not_an_approver')
  })

  it('refuses a second vote on the same version with already_voted', () => {
    const state = pending()
    const denied = transition(state, { type: 'vote', voter: dana, via: 'console', decision: 'deny', digest: state.digest }, NOW).state
    expect(refusalOf({ ...denied, status: 'pending' }, dana).code).toBe('already_voted')
  })

  it('refuses everyone once the request is decided or past its deadline with request_not_pending', () => {
    const state = pending()
    expect(refusalOf({ ...state, status: 'approved' }, dana).code).toBe('request_not_pending')
    expect(reviewEligibility(state, dana, NOW + 30 * MINUTE).eligible).toBe(false)
  })
})
