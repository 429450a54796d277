/*
 * The client's view of the wire contract: the same fields as the generated wire types, in
 * camelCase. A test holds each type equal to its wire type with the names camelCased.
 */
import type { BoundFile, Effect, GrantStatus, PrincipalKind, RequestStatus, ResultOutcome, VoteDecision } from './wire-contract.generated.js'

export type { BoundFile, Effect, GrantStatus, PrincipalKind, RequestStatus, ResultOutcome, VoteDecision }

/**
 * The action you want to run. `action`, `resource`, `environment` and `params` are what the
 * digest binds: the approval covers exactly these values and nothing else.
 *
 * @example
 * const spec: ActionSpec = {
 *   action: 'db.export', resource: 'pg://prod/customers', environment: 'prod',
 *   params: { table: 'customers' }, reason: 'weekly churn report',
 *   context: { run: process.env.GITHUB_RUN_ID },
 * }
 */
export interface ActionSpec<P extends Record<string, unknown> = Record<string, unknown>> {
  /** A dotted verb such as `db.export` or `iam.role.attach`. */
  action: string
  resource: string
  environment: string
  /** The exact arguments the action will run with. */
  params: P
  /** Why the action is needed; shown to reviewers. */
  reason?: string
  /** Anything that helps a reviewer decide: model, run id, repository, commit, trace. */
  context?: Record<string, unknown>
  bind?: BoundFile[]
}

export interface Requester {
  id: string
  kind: PrincipalKind
  displayName: string
}

export interface OnBehalfOf {
  id: string
  /** True only when a token proved the link. */
  verified: boolean
}

export interface MatchedRule {
  name: string
  effect: Effect
}

export interface Decision {
  effect: Effect
  matchedRules: MatchedRule[]
  risk: number
  explain: string[]
  policySha256: string
}

export interface ReviewRequirement {
  rule: string
  /** `group:NAME` entries or principal ids. */
  approvers: string[]
  quorum: number
  /** Ids of the people who approved the current version. */
  approvals: string[]
  denials: string[]
  met: boolean
}

export interface Review {
  requirements: ReviewRequirement[]
  deadlineAt: string | null
  escalateAt: string | null
  escalated: boolean
  requireReason: boolean
  allowEdit: boolean
}

export interface Vote {
  voterId: string
  voterName: string
  decision: VoteDecision
  reason: string | null
  /** The version of the params the vote was cast on; an edit starts a new version. */
  version: number
  /** The channel the vote came through: api, cli, slack, teams, console. */
  via: string
  votedAt: string
}

export interface Grant {
  /** The single-use grant token; present only for the requester, while the grant is issued. */
  token: string | null
  jti: string
  digest: string
  status: GrantStatus
  issuedAt: string
  expiresAt: string
  redeemedAt: string | null
}

export interface ActionResult {
  outcome: ResultOutcome
  exitCode: number | null
  detail: string | null
}

/**
 * A request as the gateway reports it. Times are RFC 3339 strings (UTC), exactly as sent.
 *
 * `params` are the real parameters when you are the requester (edited by a reviewer if
 * they were edited) and redacted parameters for everyone else.
 */
export interface ActionRequest {
  id: string
  status: RequestStatus
  action: string
  resource: string
  environment: string
  /** Starts at 1; every reviewer edit of the params adds one. */
  version: number
  /** SHA-256 of the canonical `{action, resource, environment, params}` of this version. */
  digest: string
  params: Record<string, unknown>
  /** The files the approval binds, with their hashes. */
  bind: BoundFile[]
  reason: string | null
  context: Record<string, unknown>
  requester: Requester
  onBehalfOf: OnBehalfOf | null
  decision: Decision
  /** Null when no review applies. */
  review: Review | null
  votes: Vote[]
  grant: Grant | null
  result: ActionResult | null
  createdAt: string
  updatedAt: string
  decidedAt: string | null
}

/** What the gateway answers when a grant is redeemed: the exact action the grant allows. */
export interface Redemption {
  requestId: string
  jti: string
  digest: string
  action: string
  resource: string
  environment: string
  params: Record<string, unknown>
  redeemedAt: string
}

export interface VoteInput {
  decision: VoteDecision
  /**
   * The `digest` of the request as you read it. The vote counts only on that
   * version; if an edit landed since, it is refused with `version_mismatch`.
   */
  digest: string
  reason?: string
  /** Approve these params instead (only where the policy allows edits). */
  params?: Record<string, unknown>
}

export interface ResultInput {
  outcome: ResultOutcome
  exitCode?: number
  detail?: string
}
