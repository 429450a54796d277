import type { GrantView, RequestView, ReviewView } from '../contract/index.js'
import { type Principal, rfc3339, tallyVotes } from '../core/index.js'
import type { GrantSigner } from '../grants/index.js'
import { redactString } from '../policy/index.js'
import type { RequestRecord } from './request-repository.js'

const isoOrNull = (ms: number | undefined): string | null => (ms === undefined ? null : rfc3339(ms))
const shown = (text: string | undefined | null): string | null => (text === undefined || text === null ? null : redactString(text))

/**
 * The wire shape of a request (`RequestView` in the contract). Every text a
 * person may read (action, resource, environment, reason, bound file paths,
 * vote reasons, the result's detail, the explanation) passes through the
 * secret detectors, and context was redacted when it was stored. The requester
 * sees the real params of the current version, which it must run exactly, and
 * its grant token; everyone else sees redacted params and no token.
 */
export async function toRequestView(record: RequestRecord, viewer: Principal, grants: GrantSigner): Promise<RequestView> {
  const { state } = record
  const isRequester = viewer.id === state.requester.id
  const version = state.versions.find((v) => v.version === state.currentVersion)
  const params = isRequester ? (version?.params ?? {}) : (record.redactedParams.get(state.currentVersion) ?? {})
  let review: ReviewView | null = null
  if (state.review) {
    const tally = tallyVotes(state)
    review = {
      requirements: tally.requirements.map((r) => ({
        rule: r.rule,
        approvers: state.review?.requirements.find((q) => q.rule === r.rule)?.approvers ?? [],
        quorum: r.quorum,
        approvals: r.approvals,
        denials: r.denials,
        met: r.met,
      })),
      deadline_at: isoOrNull(state.deadlineAt),
      escalate_at: isoOrNull(state.escalateAt),
      escalated: state.escalatedAt !== undefined,
      require_reason: state.review.requireReason,
      allow_edit: state.review.allowEdit,
    }
  }
  let grant: GrantView | null = null
  if (state.grant) {
    grant = {
      token: null,
      jti: state.grant.jti,
      digest: state.digest,
      status: state.grant.status,
      issued_at: rfc3339(state.grant.issuedAt),
      expires_at: rfc3339(state.grant.expiresAt),
      redeemed_at: isoOrNull(state.grant.redeemedAt),
    }
    if (isRequester && state.grant.status === 'issued') {
      grant.token = await grants.sign(
        {
          jti: state.grant.jti,
          sub: state.requester.id,
          act: state.action,
          dig: state.digest,
          rid: state.id,
          exp: Math.floor(state.grant.expiresAt / 1000),
        },
        state.grant.issuedAt,
      )
    }
  }
  return {
    id: state.id,
    status: state.status,
    action: redactString(state.action),
    resource: redactString(state.resource),
    environment: redactString(state.environment),
    version: state.currentVersion,
    digest: state.digest,
    params,
    bind: state.bind.map((file) => ({ path: redactString(file.path), sha256: file.sha256 })),
    reason: shown(record.reason),
    context: record.context,
    requester: { id: state.requester.id, kind: state.requester.kind, display_name: state.requester.displayName },
    on_behalf_of: state.onBehalfOf ? { id: state.onBehalfOf.id, verified: state.onBehalfOf.verified } : null,
    decision: {
      effect: record.effect,
      matched_rules: record.decision.matchedRules,
      risk: record.decision.risk,
      explain: record.decision.explain.map(redactString),
      policy_sha256: record.decision.policySha256,
    },
    review,
    votes: state.votes.map((v) => ({
      voter_id: v.voterId,
      voter_name: v.voter.displayName,
      decision: v.decision,
      reason: shown(v.reason),
      version: v.version,
      via: v.via,
      voted_at: rfc3339(v.at),
    })),
    grant,
    result: state.result
      ? { outcome: state.result.outcome, exit_code: state.result.exitCode ?? null, detail: shown(state.result.detail) }
      : null,
    created_at: rfc3339(state.createdAt),
    updated_at: rfc3339(state.updatedAt),
    decided_at: isoOrNull(state.decidedAt),
  }
}
