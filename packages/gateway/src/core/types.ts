import type { ReviewRequirements } from './review-requirements.js'

/** Who is acting. Always taken from authentication, never from a request body. */
export type PrincipalKind = 'human' | 'agent' | 'service'

export interface OnBehalfOf {
  /** The human's id (usually an email). */
  id: string
  /** True only when a token proved the link; a claimed link is still excluded from voting. */
  verified: boolean
}

export interface Principal {
  id: string
  kind: PrincipalKind
  displayName: string
  email?: string
  groups: string[]
  onBehalfOf?: OnBehalfOf
  /** Extra identity claims usable in policy (e.g. GitHub Actions repository, workflow, ref, actor). */
  claims?: Record<string, unknown>
  /** When the principal last authenticated interactively (ms since epoch), for `fresh_auth`. */
  authTime?: number
  /**
   * Who created the credential this principal authenticated with (an API
   * key's creator). A key minted by the requester, or by the human the
   * requester acts for, never counts on the requester's requests.
   */
  keyCreatedBy?: string
}

/** The part of a request that the digest binds. */
export interface ActionSpec {
  action: string
  resource: string
  environment: string
  params: Record<string, unknown>
}

export interface BoundFile {
  path: string
  sha256: string
}

export interface ActionRequestInput extends ActionSpec {
  reason?: string
  context?: Record<string, unknown>
  bind?: BoundFile[]
  idempotencyKey?: string
}

export type RequestStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled'
export type GrantStatus = 'issued' | 'redeemed' | 'expired'
export type ResultOutcome = 'succeeded' | 'failed'
export type Effect = 'allow' | 'deny' | 'review'
export type VoteDecision = 'approve' | 'deny'

/** One version of a request's params. An edit makes a new version with a new digest. */
export interface RequestVersion {
  version: number
  params: Record<string, unknown>
  digest: string
  createdAt: number
  createdBy: string
}

export interface Vote {
  requestId: string
  version: number
  voterId: string
  decision: VoteDecision
  reason?: string
  at: number
}

/** One approver requirement that must be met (AND across requirements). */
export interface ReviewRequirement {
  /** The rule that demanded it. */
  rule: string
  /** `group:NAME` or a principal id. */
  approvers: string[]
  quorum: number
  /** Number of deny votes that denies the request (default 1). */
  denyQuorum: number
}

export interface Grant {
  jti: string
  requestId: string
  digest: string
  subject: string
  status: GrantStatus
  expiresAt: number
  redeemedAt?: number
}

export interface AuditActor {
  id: string
  kind: PrincipalKind | 'system'
  /** The channel the actor came through: api, cli, slack, console, scheduler, ... */
  via: string
}

export type TimeoutOutcome = 'deny' | 'expire'

/** A vote as recorded: who cast it (their principal at the time) and through which channel. */
export interface RecordedVote extends Vote {
  voter: Principal
  /** The channel the vote came through: api, cli, slack, teams, console, ... */
  via: string
}

/** What a reviewer submits. `editParams` replaces the params (approve only, when the rule allows). */
export interface VoteInput {
  decision: VoteDecision
  /** The digest of the version the voter saw; a vote counts only on that version. */
  digest: string
  reason?: string
  editParams?: Record<string, unknown>
}

export interface GrantState {
  jti: string
  status: GrantStatus
  issuedAt: number
  expiresAt: number
  redeemedAt?: number
}

export interface RequestResult {
  outcome: ResultOutcome
  exitCode?: number
  detail?: string
}

/** A request as the lifecycle sees it. Plain data; transitions return a new one. */
export interface RequestState {
  id: string
  status: RequestStatus
  requester: Principal
  onBehalfOf?: OnBehalfOf
  action: string
  resource: string
  environment: string
  bind: BoundFile[]
  versions: RequestVersion[]
  currentVersion: number
  /** Digest of the current version. */
  digest: string
  /** Present when the policy asked for review. */
  review?: ReviewRequirements
  votes: RecordedVote[]
  createdAt: number
  updatedAt: number
  deadlineAt?: number
  escalateAt?: number
  escalatedAt?: number
  decidedAt?: number
  grant?: GrantState
  result?: RequestResult
}
