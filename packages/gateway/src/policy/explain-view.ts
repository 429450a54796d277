import type { Evaluation } from './evaluate.js'

/**
 * An evaluation as `countersign policy explain` prints it: the wire style,
 * snake_case names, durations in `*_ms` fields.
 */
export function explainView(evaluation: Evaluation): Record<string, unknown> {
  const { review } = evaluation
  return {
    effect: evaluation.effect,
    matched_rules: evaluation.matchedRules,
    risk: evaluation.risk,
    review:
      review === null
        ? null
        : {
            requirements: review.requirements.map((requirement) => ({
              rule: requirement.rule,
              approvers: requirement.approvers,
              quorum: requirement.quorum,
              deny_quorum: requirement.denyQuorum,
            })),
            timeout_ms: review.timeoutMs,
            on_timeout: review.onTimeout,
            require_reason: review.requireReason,
            allow_edit: review.allowEdit,
            fresh_auth_ms: review.freshAuthMs ?? null,
            escalate_after_ms: review.escalateAfterMs ?? null,
            escalate_to: review.escalateTo,
            notify: review.notify,
            policy_groups: review.policyGroups,
          },
    redacted: evaluation.redacted,
    policy_sha256: evaluation.policySha256,
    explain: evaluation.explain,
  }
}
