import { describe, expect, it } from 'vitest'
import { stricterOf, type ReviewRequirements } from './review-requirements.js'

const MINUTE = 60_000

const owners: ReviewRequirements = {
  requirements: [{ rule: 'owners', approvers: ['group:data-owners'], quorum: 2, denyQuorum: 1 }],
  timeoutMs: 30 * MINUTE,
  onTimeout: 'expire',
  requireReason: false,
  allowEdit: true,
  freshAuthMs: 10 * MINUTE,
  escalateAfterMs: 20 * MINUTE,
  escalateTo: ['group:security'],
  notify: ['slack-data'],
  policyGroups: { 'data-owners': ['dana@example.com'], security: ['sofia@example.com'] },
}

const security: ReviewRequirements = {
  requirements: [{ rule: 'security', approvers: ['group:security', 'lee@example.com'], quorum: 1, denyQuorum: 2 }],
  timeoutMs: 60 * MINUTE,
  onTimeout: 'deny',
  requireReason: true,
  allowEdit: false,
  freshAuthMs: 5 * MINUTE,
  escalateAfterMs: 10 * MINUTE,
  escalateTo: ['ciso@example.com'],
  notify: ['slack-security', 'slack-data'],
  policyGroups: { security: ['marc@example.com'] },
}

describe('stricterOf', () => {
  it('keeps every requirement of both and the stricter side of every option', () => {
    expect(stricterOf(owners, security)).toEqual({
      requirements: [...owners.requirements, ...security.requirements],
      timeoutMs: 30 * MINUTE,
      onTimeout: 'deny',
      requireReason: true,
      allowEdit: false,
      freshAuthMs: 5 * MINUTE,
      escalateAfterMs: 10 * MINUTE,
      escalateTo: ['group:security', 'ciso@example.com'],
      notify: ['slack-data', 'slack-security'],
      policyGroups: { 'data-owners': ['dana@example.com'], security: ['sofia@example.com', 'marc@example.com'] },
    })
  })

  it('is never looser than either side, in either order', () => {
    for (const [a, b] of [[owners, security], [security, owners]] as const) {
      const combined = stricterOf(a, b)
      for (const side of [a, b]) {
        expect(combined.timeoutMs).toBeLessThanOrEqual(side.timeoutMs)
        expect(combined.freshAuthMs).toBeLessThanOrEqual(side.freshAuthMs ?? Infinity)
        if (side.requireReason) expect(combined.requireReason).toBe(true)
        if (!side.allowEdit) expect(combined.allowEdit).toBe(false)
        if (side.onTimeout === 'deny') expect(combined.onTimeout).toBe('deny')
        expect(combined.requirements).toEqual(expect.arrayContaining(side.requirements))
      }
    }
  })

  it('keeps a requirement once when both sides carry the same rule', () => {
    const combined = stricterOf(owners, { ...owners, requirements: [{ ...owners.requirements[0]!, quorum: 1 }] })
    expect(combined.requirements).toEqual(owners.requirements)
  })

  it('leaves out a sign-in window and an escalation that neither side asks for', () => {
    const plain: ReviewRequirements = { ...security, escalateTo: [] }
    delete plain.freshAuthMs
    delete plain.escalateAfterMs
    const combined = stricterOf(plain, plain)
    expect('freshAuthMs' in combined).toBe(false)
    expect('escalateAfterMs' in combined).toBe(false)
  })
})
