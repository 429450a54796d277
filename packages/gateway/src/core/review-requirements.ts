import type { ReviewRequirement, TimeoutOutcome } from './types.js'

/**
 * What a review demands before a request may be approved. One shape all the
 * way: a policy rule compiles to one, the rules that match a request combine
 * into one with {@link stricterOf}, the request stores it, and an edit
 * combines the request's with what the edited params demand, the same way.
 * Plain data, so it can be stored as JSON and rebuilt.
 */
export interface ReviewRequirements {
  /** One per rule that asked for review; every one must be met (AND). */
  requirements: ReviewRequirement[]
  /** How long the review may take; the deadline is set from it when the request opens. */
  timeoutMs: number
  onTimeout: TimeoutOutcome
  requireReason: boolean
  allowEdit: boolean
  /** A voter must have authenticated within this many ms before voting. */
  freshAuthMs?: number
  /** When a request still pending is escalated, counted from when it opened. */
  escalateAfterMs?: number
  /** Approvers (`group:NAME` or ids) added to every requirement once the request is escalated. */
  escalateTo: string[]
  /** Notification channels to tell about the request. */
  notify: string[]
  /**
   * Members of the policy-listed groups that approvers and escalation targets
   * name, as of the decision, so eligibility can be checked later without the
   * policy (which may have been reloaded since).
   */
  policyGroups: Record<string, string[]>
}

/**
 * The requirements of two reviews together, never looser than either: every
 * requirement of both (kept by rule name, `a`'s first), a reason or a recent
 * sign-in if either asks, edits only if both allow, `deny` on timeout if
 * either says so, the shorter of each duration, and everyone either escalates
 * to or notifies. Policy evaluation folds the matching rules with it; an edit
 * folds in what the edited params demand, so adding a rule or editing params
 * can only make review stricter.
 *
 * @example
 * const review = matchingRules.map((rule) => rule.review).reduce(stricterOf)
 */
export function stricterOf(a: ReviewRequirements, b: ReviewRequirements): ReviewRequirements {
  const rules = new Set(a.requirements.map((requirement) => requirement.rule))
  const combined: ReviewRequirements = {
    requirements: [...a.requirements, ...b.requirements.filter((requirement) => !rules.has(requirement.rule))],
    timeoutMs: Math.min(a.timeoutMs, b.timeoutMs),
    onTimeout: a.onTimeout === 'deny' || b.onTimeout === 'deny' ? 'deny' : 'expire',
    requireReason: a.requireReason || b.requireReason,
    allowEdit: a.allowEdit && b.allowEdit,
    escalateTo: union(a.escalateTo, b.escalateTo),
    notify: union(a.notify, b.notify),
    policyGroups: mergeGroups(a.policyGroups, b.policyGroups),
  }
  const freshAuthMs = shorter(a.freshAuthMs, b.freshAuthMs)
  if (freshAuthMs !== undefined) combined.freshAuthMs = freshAuthMs
  const escalateAfterMs = shorter(a.escalateAfterMs, b.escalateAfterMs)
  if (escalateAfterMs !== undefined) combined.escalateAfterMs = escalateAfterMs
  return combined
}

function shorter(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b
  return b === undefined ? a : Math.min(a, b)
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])]
}

function mergeGroups(a: Record<string, string[]>, b: Record<string, string[]>): Record<string, string[]> {
  const merged: Record<string, string[]> = {}
  for (const groups of [a, b]) {
    for (const [name, members] of Object.entries(groups)) merged[name] = union(merged[name] ?? [], members)
  }
  return merged
}
