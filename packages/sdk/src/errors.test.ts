import { describe, expect, it } from 'vitest'
import {
  ActionCancelled,
  ActionDenied,
  ActionExpired,
  CountersignError,
  GatewayUnavailable,
  GrantRejected,
  WaitTimeout,
  denialsOf,
  errorFromResponse,
} from './errors.js'
import type { ActionRequest, Vote } from './types.js'

function request(overrides: Partial<ActionRequest> = {}): ActionRequest {
  return {
    id: 'req_1',
    status: 'denied',
    action: 'db.export',
    resource: 'pg://prod/customers',
    environment: 'prod',
    version: 2,
    digest: 'a'.repeat(64),
    params: {},
    bind: [],
    reason: null,
    context: {},
    requester: { id: 'agent-1', kind: 'agent', displayName: 'agent-1' },
    onBehalfOf: null,
    decision: { effect: 'review', matchedRules: [], risk: 0, explain: [], policySha256: '' },
    review: null,
    votes: [],
    grant: null,
    result: null,
    createdAt: '2025-03-01T10:00:00Z',
    updatedAt: '2025-03-01T10:05:00Z',
    decidedAt: '2025-03-01T10:05:00Z',
    ...overrides,
  }
}

function vote(voterId: string, decision: Vote['decision'], version: number, reason: string | null = null): Vote {
  return { voterId, voterName: voterId, decision, reason, version, via: 'slack', votedAt: '2025-03-01T10:04:00Z' }
}

describe('errorFromResponse', () => {
  it('builds a CountersignError with the code, message, status and details of the body', () => {
    const error = errorFromResponse(403, {
      error: { code: 'self_approval', message: 'You cannot approve your own request', details: { request_id: 'req_1' } },
    })
    expect(error).toBeInstanceOf(CountersignError)
    expect(error.name).toBe('CountersignError')
    expect(error.code).toBe('self_approval')
    expect(error.message).toBe('You cannot approve your own request')
    expect(error.status).toBe(403)
    expect(error.details).toEqual({ request_id: 'req_1' })
  })

  it('builds a GrantRejected for each grant refusal code', () => {
    const cases = [
      [409, 'grant_already_redeemed'],
      [409, 'digest_mismatch'],
      [410, 'grant_expired'],
      [401, 'grant_invalid'],
    ] as const
    for (const [status, code] of cases) {
      const error = errorFromResponse(status, { error: { code, message: 'refused' } })
      expect(error).toBeInstanceOf(GrantRejected)
      expect(error.code).toBe(code)
      expect(error.status).toBe(status)
    }
  })

  it('defaults details to an empty object when the body has none', () => {
    expect(errorFromResponse(404, { error: { code: 'not_found', message: 'No such request' } }).details).toEqual({})
  })

  it('keeps an unknown code from a newer gateway in details under unexpected_response', () => {
    const error = errorFromResponse(409, { error: { code: 'quorum_frozen', message: 'Frozen', details: { rule: 'r' } } })
    expect(error.code).toBe('unexpected_response')
    expect(error.message).toBe('Frozen')
    expect(error.details).toEqual({ rule: 'r', code: 'quorum_frozen' })
  })

  it('reports an answer without the error shape, such as a proxy page, as unexpected_response', () => {
    const error = errorFromResponse(500, undefined)
    expect(error.code).toBe('unexpected_response')
    expect(error.status).toBe(500)
    expect(error.message).toBe('The gateway answered HTTP 500 without an error body')
    expect(errorFromResponse(400, { message: 'bad' }).code).toBe('unexpected_response')
  })

  it('falls back to the code as the message when the body has none', () => {
    expect(errorFromResponse(401, { error: { code: 'unauthenticated' } }).message).toBe('unauthenticated')
  })

  it('serializes to code, message, status and details', () => {
    const error = errorFromResponse(409, { error: { code: 'already_voted', message: 'Already voted' } })
    expect(JSON.parse(JSON.stringify(error))).toEqual({
      code: 'already_voted',
      message: 'Already voted',
      status: 409,
      details: {},
    })
  })
})

describe('denialsOf', () => {
  it('names the policy rules with effect deny when the policy denied the request', () => {
    const denied = request({
      decision: {
        effect: 'deny',
        matchedRules: [
          { name: 'no-prod-exports-on-friday', effect: 'deny' },
          { name: 'prod-export-needs-two-owners', effect: 'review' },
        ],
        risk: 80,
        explain: [],
        policySha256: '',
      },
    })
    expect(denialsOf(denied)).toEqual([{ by: 'policy', id: 'no-prod-exports-on-friday', reason: null }])
  })

  it('names the reviewers who denied the current version, with their reasons', () => {
    const denied = request({
      votes: [
        vote('omar@example.com', 'deny', 1, 'wrong table'),
        vote('dana@example.com', 'approve', 2),
        vote('lee@example.com', 'deny', 2, 'not this week'),
      ],
    })
    expect(denialsOf(denied)).toEqual([{ by: 'reviewer', id: 'lee@example.com', reason: 'not this week' }])
  })

  it('is empty when neither a rule nor a vote denied it', () => {
    expect(denialsOf(request())).toEqual([])
  })
})

describe('outcome errors', () => {
  it('ActionDenied says who denied the action and why', () => {
    const error = new ActionDenied(request({ votes: [vote('lee@example.com', 'deny', 2, 'not this week')] }))
    expect(error).toBeInstanceOf(CountersignError)
    expect(error.name).toBe('ActionDenied')
    expect(error.code).toBe('action_denied')
    expect(error.status).toBeUndefined()
    expect(error.message).toBe('db.export on pg://prod/customers (prod, req_1) was denied by lee@example.com ("not this week")')
    expect(error.deniedBy).toEqual([{ by: 'reviewer', id: 'lee@example.com', reason: 'not this week' }])
    expect(error.details).toEqual({ request_id: 'req_1' })
  })

  it('ActionDenied names the policy rule when the policy denied', () => {
    const denied = request({
      decision: { effect: 'deny', matchedRules: [{ name: 'no-iam', effect: 'deny' }], risk: 0, explain: [], policySha256: '' },
    })
    expect(new ActionDenied(denied).message).toBe('db.export on pg://prod/customers (prod, req_1) was denied by policy rule "no-iam"')
  })

  it('ActionExpired, ActionCancelled and WaitTimeout carry the request and a stable code', () => {
    const expired = new ActionExpired(request({ status: 'expired' }))
    const cancelled = new ActionCancelled(request({ status: 'cancelled' }))
    const timedOut = new WaitTimeout(request({ status: 'pending' }))
    expect([expired.code, cancelled.code, timedOut.code]).toEqual(['action_expired', 'action_cancelled', 'wait_timeout'])
    expect([expired.name, cancelled.name, timedOut.name]).toEqual(['ActionExpired', 'ActionCancelled', 'WaitTimeout'])
    expect(expired.request.id).toBe('req_1')
    expect(expired.message).toBe('db.export on pg://prod/customers (prod, req_1) expired before it was approved and run')
  })

  it('GatewayUnavailable keeps the last failure as its cause and names the network error', () => {
    const cause = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8080'), { code: 'ECONNREFUSED' }),
    })
    const error = new GatewayUnavailable('http://127.0.0.1:8080', cause)
    expect(error.code).toBe('gateway_unavailable')
    expect(error.cause).toBe(cause)
    expect(error.status).toBeUndefined()
    expect(error.message).toBe('Could not reach the Countersign gateway at http://127.0.0.1:8080: fetch failed (ECONNREFUSED)')
  })

  it('GatewayUnavailable carries the status of a last answer that was an outage', () => {
    const cause = errorFromResponse(503, { error: { code: 'store_unavailable', message: 'The store is unavailable' } })
    const error = new GatewayUnavailable('https://cs.example.com', cause)
    expect(error.status).toBe(503)
    expect(error.message).toBe('Could not reach the Countersign gateway at https://cs.example.com: HTTP 503: The store is unavailable')
  })
})
