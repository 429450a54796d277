import { describe, expect, it } from 'vitest'
import { CountersignError } from './errors.js'
import { parseRedemption, parseRequestPage, parseRequestView, requestViewOf } from './parse-request-view.js'
import type { RequestView } from './wire-contract.generated.js'

/** A request view exactly as the generated wire contract types it. */
function wireView(overrides: { [K in keyof RequestView]?: unknown } = {}): Record<string, unknown> {
  const view: RequestView = {
    id: 'req_01J9Z3',
    status: 'approved',
    action: 'db.export',
    resource: 'pg://prod/customers',
    environment: 'prod',
    version: 2,
    digest: 'b'.repeat(64),
    params: { table: 'customers', limit: 1000 },
    bind: [{ path: 'export.sql', sha256: 'd'.repeat(64) }],
    reason: 'weekly churn report',
    context: { run_id: '42' },
    requester: { id: 'agent-7', kind: 'agent', display_name: 'Churn bot' },
    on_behalf_of: { id: 'dana@example.com', verified: false },
    decision: {
      effect: 'review',
      matched_rules: [{ name: 'prod-export-needs-two-owners', effect: 'review' }],
      risk: 40,
      explain: ['matched prod-export-needs-two-owners'],
      policy_sha256: 'c'.repeat(64),
    },
    review: {
      requirements: [
        {
          rule: 'prod-export-needs-two-owners',
          approvers: ['group:data-owners'],
          quorum: 2,
          approvals: ['dana@example.com', 'omar@example.com'],
          denials: [],
          met: true,
        },
      ],
      deadline_at: '2025-03-01T10:30:00.000Z',
      escalate_at: '2025-03-01T10:10:00.000Z',
      escalated: false,
      require_reason: true,
      allow_edit: true,
    },
    votes: [
      {
        voter_id: 'dana@example.com',
        voter_name: 'Dana',
        decision: 'approve',
        reason: 'ok',
        version: 2,
        via: 'slack',
        voted_at: '2025-03-01T10:01:00.000Z',
      },
    ],
    grant: {
      token: 'eyJhbGciOiJFZERTQSJ9.e30.sig',
      jti: 'grt_1',
      digest: 'b'.repeat(64),
      status: 'issued',
      issued_at: '2025-03-01T10:01:00.000Z',
      expires_at: '2025-03-01T10:06:00.000Z',
      redeemed_at: null,
    },
    result: null,
    created_at: '2025-03-01T10:00:00.000Z',
    updated_at: '2025-03-01T10:01:00.000Z',
    decided_at: '2025-03-01T10:01:00.000Z',
  }
  return { ...view, ...overrides }
}

function unexpectedResponse(run: () => unknown): CountersignError {
  try {
    run()
  } catch (error) {
    if (error instanceof CountersignError) return error
    throw error
  }
  throw new Error('expected the parse to fail')
}

describe('parseRequestView', () => {
  it('maps every snake_case field of the documented view to its camelCase property', () => {
    expect(parseRequestView(wireView())).toEqual({
      id: 'req_01J9Z3',
      status: 'approved',
      action: 'db.export',
      resource: 'pg://prod/customers',
      environment: 'prod',
      version: 2,
      digest: 'b'.repeat(64),
      params: { table: 'customers', limit: 1000 },
      bind: [{ path: 'export.sql', sha256: 'd'.repeat(64) }],
      reason: 'weekly churn report',
      context: { run_id: '42' },
      requester: { id: 'agent-7', kind: 'agent', displayName: 'Churn bot' },
      onBehalfOf: { id: 'dana@example.com', verified: false },
      decision: {
        effect: 'review',
        matchedRules: [{ name: 'prod-export-needs-two-owners', effect: 'review' }],
        risk: 40,
        explain: ['matched prod-export-needs-two-owners'],
        policySha256: 'c'.repeat(64),
      },
      review: {
        requirements: [
          {
            rule: 'prod-export-needs-two-owners',
            approvers: ['group:data-owners'],
            quorum: 2,
            approvals: ['dana@example.com', 'omar@example.com'],
            denials: [],
            met: true,
          },
        ],
        deadlineAt: '2025-03-01T10:30:00.000Z',
        escalateAt: '2025-03-01T10:10:00.000Z',
        escalated: false,
        requireReason: true,
        allowEdit: true,
      },
      votes: [
        {
          voterId: 'dana@example.com',
          voterName: 'Dana',
          decision: 'approve',
          reason: 'ok',
          version: 2,
          via: 'slack',
          votedAt: '2025-03-01T10:01:00.000Z',
        },
      ],
      grant: {
        token: 'eyJhbGciOiJFZERTQSJ9.e30.sig',
        jti: 'grt_1',
        digest: 'b'.repeat(64),
        status: 'issued',
        issuedAt: '2025-03-01T10:01:00.000Z',
        expiresAt: '2025-03-01T10:06:00.000Z',
        redeemedAt: null,
      },
      result: null,
      createdAt: '2025-03-01T10:00:00.000Z',
      updatedAt: '2025-03-01T10:01:00.000Z',
      decidedAt: '2025-03-01T10:01:00.000Z',
    })
  })

  it('keeps the keys inside params and context exactly as sent, without renaming them', () => {
    const view = parseRequestView(wireView({ params: { source_table: 'x', nested: { row_limit: 5 } } }))
    expect(view.params).toEqual({ source_table: 'x', nested: { row_limit: 5 } })
    expect(view.context).toEqual({ run_id: '42' })
  })

  it('reads absent or null optional parts as null or empty', () => {
    const view = parseRequestView(
      wireView({
        status: 'pending',
        reason: null,
        context: undefined,
        on_behalf_of: null,
        review: null,
        votes: undefined,
        grant: null,
        decided_at: null,
      }),
    )
    expect(view).toMatchObject({
      status: 'pending',
      reason: null,
      context: {},
      onBehalfOf: null,
      review: null,
      votes: [],
      grant: null,
      decidedAt: null,
    })
  })

  it('reads a grant without a token, as other principals see it', () => {
    const grant = {
      token: null,
      jti: 'grt_1',
      digest: 'b'.repeat(64),
      status: 'redeemed',
      issued_at: '2025-03-01T10:01:00.000Z',
      expires_at: '2025-03-01T10:06:00.000Z',
      redeemed_at: '2025-03-01T10:02:00.000Z',
    }
    expect(parseRequestView(wireView({ grant })).grant).toEqual({
      token: null,
      jti: 'grt_1',
      digest: 'b'.repeat(64),
      status: 'redeemed',
      issuedAt: '2025-03-01T10:01:00.000Z',
      expiresAt: '2025-03-01T10:06:00.000Z',
      redeemedAt: '2025-03-01T10:02:00.000Z',
    })
  })

  it('maps a reported result, exit code included', () => {
    const view = parseRequestView(wireView({ result: { outcome: 'failed', exit_code: 2, detail: 'disk full' } }))
    expect(view.result).toEqual({ outcome: 'failed', exitCode: 2, detail: 'disk full' })
  })

  it('rejects a view without an id with unexpected_response naming the field', () => {
    const error = unexpectedResponse(() => parseRequestView(wireView({ id: undefined })))
    expect(error.code).toBe('unexpected_response')
    expect(error.message).toBe("The gateway's answer has no valid request.id (expected a string)")
  })

  it('rejects a status outside the lifecycle rather than guessing what it means', () => {
    const error = unexpectedResponse(() => parseRequestView(wireView({ status: 'approvedish' })))
    expect(error.code).toBe('unexpected_response')
    expect(error.details).toEqual({ path: 'request.status' })
  })

  it('rejects params that are not an object', () => {
    expect(unexpectedResponse(() => parseRequestView(wireView({ params: ['customers'] }))).details).toEqual({
      path: 'request.params',
    })
  })

  it('rejects a vote with an unknown decision, pointing at the vote', () => {
    const votes = [{ voter_id: 'x', voter_name: 'X', decision: 'maybe', version: 1, voted_at: '2025-03-01T10:01:00.000Z' }]
    expect(unexpectedResponse(() => parseRequestView(wireView({ votes }))).details).toEqual({
      path: 'request.votes[0].decision',
    })
  })

  it('rejects an optional part of the wrong type instead of dropping it', () => {
    expect(unexpectedResponse(() => parseRequestView(wireView({ review: 'none' }))).details).toEqual({
      path: 'request.review',
    })
  })

  it('rejects a body that is not an object at all', () => {
    expect(unexpectedResponse(() => parseRequestView('<html>502 Bad Gateway</html>')).code).toBe('unexpected_response')
    expect(unexpectedResponse(() => parseRequestView(null)).code).toBe('unexpected_response')
  })

  it('rejects a view without the policy decision, which every request carries', () => {
    expect(unexpectedResponse(() => parseRequestView(wireView({ decision: undefined }))).details).toEqual({ path: 'request.decision' })
  })
})

describe('requestViewOf', () => {
  it('gives back exactly the view that was parsed, in the wire form', () => {
    expect(requestViewOf(parseRequestView(wireView()))).toEqual(wireView())
    const pending = wireView({ status: 'pending', on_behalf_of: null, review: null, votes: [], grant: null, decided_at: null })
    expect(requestViewOf(parseRequestView(pending))).toEqual(pending)
  })
})

describe('parseRequestPage', () => {
  it('maps the items and the cursor of a listing', () => {
    const page = parseRequestPage({ items: [wireView()], next_cursor: 'abc' })
    expect(page.nextCursor).toBe('abc')
    expect(page.items.map((item) => item.id)).toEqual(['req_01J9Z3'])
  })

  it('rejects a listing whose items are not an array, naming the field', () => {
    expect(unexpectedResponse(() => parseRequestPage({ items: {}, next_cursor: null })).details).toEqual({ path: 'page.items' })
  })
})

describe('parseRedemption', () => {
  it('maps the redeem answer to camelCase', () => {
    const body = {
      request_id: 'req_01J9Z3',
      jti: 'grt_1',
      digest: 'b'.repeat(64),
      action: 'db.export',
      resource: 'pg://prod/customers',
      environment: 'prod',
      params: { table: 'customers' },
      redeemed_at: '2025-03-01T10:02:00.000Z',
    }
    expect(parseRedemption(body)).toEqual({
      requestId: 'req_01J9Z3',
      jti: 'grt_1',
      digest: 'b'.repeat(64),
      action: 'db.export',
      resource: 'pg://prod/customers',
      environment: 'prod',
      params: { table: 'customers' },
      redeemedAt: '2025-03-01T10:02:00.000Z',
    })
  })

  it('rejects a redeem answer without params, so nothing runs with guessed arguments', () => {
    const error = unexpectedResponse(() =>
      parseRedemption({ request_id: 'r', jti: 'j', digest: 'd', action: 'a', resource: 'r', environment: 'e', redeemed_at: 't' }),
    )
    expect(error.details).toEqual({ path: 'redemption.params' })
  })
})
