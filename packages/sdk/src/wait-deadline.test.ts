import { describe, expect, it } from 'vitest'
import { DEADLINE_GRACE_MS, pollTimeoutSeconds, waitDeadline } from './wait-deadline.js'
import type { ActionRequest } from './types.js'

const startedAt = Date.parse('2025-03-01T10:00:00Z')

function pendingWithDeadline(deadlineAt: string | null): ActionRequest {
  return {
    id: 'req_1',
    status: 'pending',
    action: 'db.export',
    resource: 'pg://prod/customers',
    environment: 'prod',
    version: 1,
    digest: 'a'.repeat(64),
    params: {},
    bind: [],
    reason: null,
    context: {},
    requester: { id: 'agent-1', kind: 'agent', displayName: 'agent-1' },
    onBehalfOf: null,
    decision: { effect: 'review', matchedRules: [], risk: 0, explain: [], policySha256: 'c'.repeat(64) },
    review:
      deadlineAt === null
        ? null
        : { requirements: [], deadlineAt, escalateAt: null, escalated: false, requireReason: false, allowEdit: false },
    votes: [],
    grant: null,
    result: null,
    createdAt: '2025-03-01T09:59:00Z',
    updatedAt: '2025-03-01T09:59:00Z',
    decidedAt: null,
  }
}

describe('waitDeadline', () => {
  it("uses the caller's timeout when one is given, whatever the request says", () => {
    const lastSeen = pendingWithDeadline('2025-03-01T11:00:00Z')
    expect(waitDeadline({ startedAt, timeoutMs: 5_000, requestTimeoutMs: 30_000, lastSeen })).toBe(startedAt + 5_000)
  })

  it('waits until one minute past the review deadline when the caller gives no timeout', () => {
    const lastSeen = pendingWithDeadline('2025-03-01T10:30:00Z')
    expect(waitDeadline({ startedAt, timeoutMs: undefined, requestTimeoutMs: 30_000, lastSeen })).toBe(
      Date.parse('2025-03-01T10:30:00Z') + DEADLINE_GRACE_MS,
    )
  })

  it('gives up after the per-call limit while the request has never been seen', () => {
    expect(waitDeadline({ startedAt, timeoutMs: undefined, requestTimeoutMs: 30_000, lastSeen: undefined })).toBe(
      startedAt + 30_000,
    )
  })

  it('has no deadline of its own when the request has no review deadline', () => {
    expect(
      waitDeadline({ startedAt, timeoutMs: undefined, requestTimeoutMs: 30_000, lastSeen: pendingWithDeadline(null) }),
    ).toBe(Number.POSITIVE_INFINITY)
  })

  it('treats an unparseable review deadline as none rather than as already passed', () => {
    const lastSeen = pendingWithDeadline('next tuesday')
    expect(waitDeadline({ startedAt, timeoutMs: undefined, requestTimeoutMs: 30_000, lastSeen })).toBe(
      Number.POSITIVE_INFINITY,
    )
  })
})

describe('pollTimeoutSeconds', () => {
  it('asks the gateway to hold each long-poll for 25 s when there is time', () => {
    expect(pollTimeoutSeconds(3_600_000)).toBe(25)
    expect(pollTimeoutSeconds(Number.POSITIVE_INFINITY)).toBe(25)
  })

  it('shortens the last long-poll so it ends at the deadline', () => {
    expect(pollTimeoutSeconds(7_200)).toBe(8)
  })

  it('never asks for less than the 1 s minimum the gateway accepts', () => {
    expect(pollTimeoutSeconds(200)).toBe(1)
    expect(pollTimeoutSeconds(-5_000)).toBe(1)
  })
})
