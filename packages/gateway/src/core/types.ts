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

/**
 * Everything needed to judge and count votes on one request. Plain data, so
 * it can be stored as JSON and rebuilt.
 */
export interface ReviewState {
  status: RequestStatus
  requester: Principal
  /** The human the requester acts for; excluded from voting whether verified or only claimed. */
  onBehalfOf?: OnBehalfOf
  currentVersion: number
  requirements: ReviewRequirement[]
  escalated: boolean
  /** Approvers (`group:NAME` or ids) added to every requirement once the request is escalated. */
  escalateTo: string[]
  votes: RecordedVote[]
  allowEdit: boolean
  requireReason: boolean
  /** A voter must have authenticated within this many ms before voting. */
  freshAuthMs?: number
  /** Group members from policy, in addition to the groups a principal's identity carries. */
  policyGroups: Record<string, string[]>
  /** Once this instant passes the request no longer takes votes, even before it is marked expired. */
  deadlineAt?: number
}

/** What a reviewer submits. `editParams` replaces the params (approve only, when the rule allows). */
export interface VoteInput {
  decision: VoteDecision
  reason?: string
  editParams?: Record<string, unknown>
}

/** The review part of a policy decision, as a request carries it. */
export interface ReviewSettings {
  requirements: ReviewRequirement[]
  allowEdit: boolean
  requireReason: boolean
  freshAuthMs?: number
  escalateTo: string[]
  onTimeout: TimeoutOutcome
  policyGroups: Record<string, string[]>
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
  review?: ReviewSettings
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
