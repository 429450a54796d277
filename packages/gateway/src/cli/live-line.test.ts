import type { ActionRequest } from '@countersign/sdk'
import { describe, expect, it } from 'vitest'
import { describeStatus } from './live-line.js'

const NOW = Date.parse('2026-03-02T10:00:00Z')
const URL = 'https://countersign.example.com'

function pendingRequest(overrides: { approvals?: string[]; requireReason?: boolean } = {}): ActionRequest {
  return {
    id: 'req_01',
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
    requester: { id: 'etl-bot', kind: 'agent', displayName: 'etl-bot' },
    onBehalfOf: null,
    decision: { effect: 'review', matchedRules: [{ name: 'two-owners', effect: 'review' }], risk: 0, explain: [], policySha256: 'ab'.repeat(32) },
    review: {
      requirements: [
        { rule: 'two-owners', approvers: ['group:data-owners'], quorum: 2, approvals: overrides.approvals ?? [], denials: [], met: false },
      ],
      deadlineAt: new Date(NOW + 12 * 60_000 + 5_000).toISOString(),
      escalateAt: null,
      escalated: false,
      requireReason: overrides.requireReason ?? false,
      allowEdit: false,
    },
    votes: [],
    grant: null,
    result: null,
    createdAt: new Date(NOW).toISOString(),
    updatedAt: new Date(NOW).toISOString(),
    decidedAt: null,
  }
}

describe('describeStatus', () => {
  const request = pendingRequest({ approvals: ['dana@example.com'], requireReason: true })
  const full =
    'req_01 pending · 1/2 approvals (group:data-owners) by dana@example.com · 12m05s left · ' +
    'approve: countersign approve req_01 --reason "…" · https://countersign.example.com/v1/requests/req_01'

  it('shows state, votes against the quorum, who approved, time left, how to approve and a link when there is room', () => {
    expect(describeStatus(request, { now: NOW, url: URL })).toBe(full)
  })

  it('puts --reason in the approve hint only when the rule requires a reason', () => {
    expect(describeStatus(pendingRequest(), { now: NOW, url: URL })).toContain('approve: countersign approve req_01 · ')
  })

  it('drops the link, then the hint, then the approver list, then the names, keeping state, votes and time left', () => {
    const widths = [full.length - 1, 100, 70, 45]
    expect(widths.map((width) => describeStatus(request, { now: NOW, url: URL, width }))).toEqual([
      'req_01 pending · 1/2 approvals (group:data-owners) by dana@example.com · 12m05s left · approve: countersign approve req_01 --reason "…"',
      'req_01 pending · 1/2 approvals (group:data-owners) by dana@example.com · 12m05s left',
      'req_01 pending · 1/2 approvals by dana@example.com · 12m05s left',
      'req_01 pending · 1/2 approvals · 12m05s left',
    ])
    for (const width of widths) expect(describeStatus(request, { now: NOW, url: URL, width }).length).toBeLessThanOrEqual(width)
  })

  it('cuts with an ellipsis only when even state, votes and time left do not fit', () => {
    expect(describeStatus(request, { now: NOW, url: URL, width: 20 })).toBe('req_01 pending · 1/…')
  })

  it('says the gateway is unreachable instead of counting down', () => {
    const line = describeStatus(request, { now: NOW, url: URL, reachable: false })
    expect(line).toContain('1/2 approvals (group:data-owners) by dana@example.com · gateway unreachable, retrying…')
    expect(line).not.toContain('left')
  })

  it('shows a decided request without time left or hints', () => {
    expect(describeStatus({ ...request, status: 'approved' }, { now: NOW, url: URL })).toBe(
      'req_01 approved · 1/2 approvals (group:data-owners) by dana@example.com',
    )
  })
})
