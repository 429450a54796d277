/*
 * Generated from the gateway's wire schemas (packages/gateway/src/contract) by
 * `npm run build`; do not edit. A test fails when this file is stale.
 */

/** Where a request is in its lifecycle. Every status except `pending` is final. */
export const REQUEST_STATUSES = [
  "pending",
  "approved",
  "denied",
  "expired",
  "cancelled",
] as const

/** Where a request is in its lifecycle. Every status except `pending` is final. */
export type RequestStatus = (typeof REQUEST_STATUSES)[number]

export const PRINCIPAL_KINDS = [
  "human",
  "agent",
  "service",
] as const

export type PrincipalKind = (typeof PRINCIPAL_KINDS)[number]

/** What the policy decided: run at once, refuse, or wait for people. */
export const EFFECTS = [
  "allow",
  "deny",
  "review",
] as const

/** What the policy decided: run at once, refuse, or wait for people. */
export type Effect = (typeof EFFECTS)[number]

export const VOTE_DECISIONS = [
  "approve",
  "deny",
] as const

export type VoteDecision = (typeof VOTE_DECISIONS)[number]

export const GRANT_STATUSES = [
  "issued",
  "redeemed",
  "expired",
] as const

export type GrantStatus = (typeof GRANT_STATUSES)[number]

export const RESULT_OUTCOMES = [
  "succeeded",
  "failed",
] as const

export type ResultOutcome = (typeof RESULT_OUTCOMES)[number]

/** A file whose content the approval binds, e.g. a Terraform plan. */
export interface BoundFile {
  path: string
  /** SHA-256 of the file, hex. */
  sha256: string
}

export interface RequesterView {
  id: string
  kind: PrincipalKind
  display_name: string
}

export interface OnBehalfOfView {
  /** The human the requester acts for (usually an email). */
  id: string
  /** True only when a token proved the link. */
  verified: boolean
}

export interface MatchedRule {
  name: string
  effect: Effect
}

/** What the policy decided when the request was submitted. */
export interface DecisionView {
  effect: Effect
  matched_rules: MatchedRule[]
  /** The additive risk score, 0 to 100. */
  risk: number
  /** Why the policy decided as it did, one line per step. */
  explain: string[]
  /** SHA-256 of the policy file that decided. */
  policy_sha256: string
}

export interface ReviewRequirementView {
  /** The rule that demanded this review. */
  rule: string
  /** `group:NAME` entries or principal ids. */
  approvers: string[]
  quorum: number
  /** Ids of the people whose approval of the current version counts. */
  approvals: string[]
  /** Ids of the people whose deny vote on the current version counts. */
  denials: string[]
  met: boolean
}

export interface ReviewView {
  /** Every requirement must be met (AND). */
  requirements: ReviewRequirementView[]
  /** When the request expires (or is denied) if still pending. */
  deadline_at: string | null
  /** When a still-pending request is escalated. */
  escalate_at: string | null
  escalated: boolean
  require_reason: boolean
  allow_edit: boolean
}

export interface VoteView {
  voter_id: string
  voter_name: string
  decision: VoteDecision
  reason: string | null
  /** The version of the params the vote was cast on; an edit starts a new version. */
  version: number
  /** The channel the vote came through: api, cli, slack, teams, console. */
  via: string
  /** When the vote was cast. */
  voted_at: string
}

/** The grant an approval yields: good for this one action, once. */
export interface GrantView {
  /** The single-use grant (an EdDSA JWT); only the requester sees it, and only while it is issued. */
  token: string | null
  jti: string
  /** The digest of the approved version; redeeming with another digest fails. */
  digest: string
  status: GrantStatus
  /** When the grant was issued. */
  issued_at: string
  /** When the grant can no longer be redeemed. */
  expires_at: string
  /** When the grant was redeemed. */
  redeemed_at: string | null
}

/** How the approved action went, as its requester reported it. */
export interface ResultView {
  outcome: ResultOutcome
  exit_code: number | null
  detail: string | null
}

/** A request as the gateway reports it; every endpoint that returns a request returns this. */
export interface RequestView {
  id: string
  status: RequestStatus
  /** A dotted verb such as `db.export`. */
  action: string
  resource: string
  environment: string
  /** Starts at 1; every reviewer edit of the params adds one. */
  version: number
  /** SHA-256 of the canonical `{action, resource, environment, params}` of this version (and the bound files). */
  digest: string
  /** The real params of the current version for the requester, redacted params for everyone else. */
  params: Record<string, unknown>
  bind: BoundFile[]
  reason: string | null
  context: Record<string, unknown>
  requester: RequesterView
  on_behalf_of: OnBehalfOfView | null
  decision: DecisionView
  /** Null when no review applies. */
  review: ReviewView | null
  votes: VoteView[]
  grant: GrantView | null
  result: ResultView | null
  /** When the request was submitted. */
  created_at: string
  /** When the request last changed. */
  updated_at: string
  /** When the request left `pending`. */
  decided_at: string | null
}

export interface RequestPage {
  /** Newest first. */
  items: RequestView[]
  /** Pass as `cursor` for the next page; null on the last page. */
  next_cursor: string | null
}

/** The answer of a redemption: the exact action the grant allows, once. */
export interface RedemptionView {
  request_id: string
  jti: string
  digest: string
  action: string
  resource: string
  environment: string
  /** The exact params to run. */
  params: Record<string, unknown>
  /** When the grant was redeemed. */
  redeemed_at: string
}

/** An API key as the admin API shows it; never its token, except once at creation. */
export interface ApiKeyView {
  id: string
  /** The first characters of the token, to recognise it by. */
  prefix: string
  kind: PrincipalKind
  principal_id: string
  display_name: string
  email: string | null
  groups: string[]
  on_behalf_of: string | null
  /** When the key was created. */
  created_at: string
  /** The principal that created the key. */
  created_by: string
  /** When the key was revoked. */
  revoked_at: string | null
}

export interface CreatedApiKey {
  id: string
  /** The first characters of the token, to recognise it by. */
  prefix: string
  kind: PrincipalKind
  principal_id: string
  display_name: string
  email: string | null
  groups: string[]
  on_behalf_of: string | null
  /** When the key was created. */
  created_at: string
  /** The principal that created the key. */
  created_by: string
  /** When the key was revoked. */
  revoked_at: string | null
  /** The key itself (`cs_…`); shown only in this answer. */
  token: string
}

export interface ApiKeyList {
  items: ApiKeyView[]
}

/** A signed statement that the audit log had `size` entries ending in `head_hash` at `ts`. */
export interface AuditCheckpoint {
  size: number
  head_hash: string
  /** Signed as milliseconds since the Unix epoch, like the `ts` of audit entries. */
  ts: number
  signature: string
  key_id: string
}

/** The key audit checkpoints are signed with; keep a copy outside the operator's reach. */
export interface AuditPublicKey {
  key_id: string
  /** The Ed25519 public key, SPKI PEM. */
  pem: string
  jwk: {
    kty: string
    crv: string
    x: string
    kid: string
    alg: string
    use: string
  }
}

export const WIRE_ERROR_CODES = [
  "invalid_request",
  "payload_too_large",
  "unsupported_media_type",
  "unauthenticated",
  "rate_limited",
  "forbidden",
  "not_found",
  "idempotency_conflict",
  "self_approval",
  "not_an_approver",
  "non_human_reviewer",
  "already_voted",
  "version_mismatch",
  "request_not_pending",
  "edit_not_allowed",
  "edit_denied_by_policy",
  "reason_required",
  "fresh_auth_required",
  "not_requester",
  "invalid_transition",
  "grant_invalid",
  "grant_already_redeemed",
  "grant_expired",
  "digest_mismatch",
  "request_not_approved",
  "store_unavailable",
  "internal",
] as const

export type WireErrorCode = (typeof WIRE_ERROR_CODES)[number]

/** Every refusal: a stable `code` to switch on, a message for people, details. */
export interface ErrorBody {
  error: {
    code: WireErrorCode
    /** What was wrong and what to do, for people; may change. */
    message: string
    /** Structured facts about the refusal: snake_case keys, times as RFC 3339 strings. */
    details: Record<string, unknown>
  }
}
