import { CountersignError } from './errors.js'
import { rfc3339 } from './rfc3339.js'
import { samePerson, type Identity } from './same-person.js'
import type { Principal, RecordedVote, ReviewRequirement, ReviewState, VoteInput } from './types.js'

const GROUP_PREFIX = 'group:'

export type ReviewOutcome = 'approved' | 'denied' | 'pending'

export interface RequirementTally {
  rule: string
  /** Distinct eligible approvals needed (at least 1). */
  quorum: number
  /** Distinct eligible denials that deny the request (at least 1). */
  denyQuorum: number
  /** Voter ids of the distinct eligible people who approved the current version. */
  approvals: string[]
  /** Voter ids of the distinct eligible people who denied the current version. */
  denials: string[]
  met: boolean
  denied: boolean
}

export interface TallyResult {
  outcome: ReviewOutcome
  requirements: RequirementTally[]
}

/**
 * Whether `voter` is one of `approvers`. An entry `group:NAME` matches a voter
 * whose identity carries group NAME, or who is listed under NAME in the
 * policy's `groups`. Any other entry is a principal id or email. Entries that
 * look like emails compare case-insensitively; other ids compare exactly.
 *
 * @example
 * isEligibleApprover(['group:sre', 'dana@example.com'], voter, { sre: ['omar@example.com'] })
 */
export function isEligibleApprover(
  approvers: string[],
  voter: Principal,
  policyGroups: Record<string, string[]>,
): boolean {
  return approvers.some((entry) => {
    if (!entry.startsWith(GROUP_PREFIX)) return entryNamesPrincipal(entry, voter)
    const name = entry.slice(GROUP_PREFIX.length)
    if (name === '') return false
    if (voter.groups.includes(name)) return true
    // hasOwn keeps names like "constructor" from reaching Object.prototype.
    const members = Object.hasOwn(policyGroups, name) ? policyGroups[name] : undefined
    return Array.isArray(members) && members.some((member) => entryNamesPrincipal(member, voter))
  })
}

/**
 * Checks that `voter` may cast `vote` on `review` at `now`, and throws the
 * first refusal that applies. Checks run in a fixed order, so a caller sees
 * the most fundamental problem first: `request_not_pending`,
 * `non_human_reviewer`, `self_approval`, `not_an_approver`, `already_voted`,
 * `reason_required`, `fresh_auth_required`, `edit_not_allowed`.
 *
 * Returns nothing and changes nothing; recording the vote is the caller's job.
 *
 * @throws CountersignError with one of the codes above.
 * @example
 * checkVote(review, reviewer, { decision: 'approve', reason: 'ticket OPS-12' }, Date.now())
 */
export function checkVote(review: ReviewState, voter: Principal, vote: VoteInput, now: number): void {
  if (review.status !== 'pending') {
    throw new CountersignError(
      'request_not_pending',
      `This request is ${review.status} and no longer takes votes.`,
      { status: review.status },
    )
  }
  if (review.deadlineAt !== undefined && now >= review.deadlineAt) {
    throw new CountersignError(
      'request_not_pending',
      `The review deadline passed at ${new Date(review.deadlineAt).toISOString()}; the request no longer takes votes.`,
      { deadline_at: rfc3339(review.deadlineAt) },
    )
  }
  if (voter.kind !== 'human') {
    throw new CountersignError(
      'non_human_reviewer',
      `Only people can review requests; ${voter.id} is a${voter.kind === 'agent' ? 'n' : ''} ${voter.kind}.`,
      { voter_id: voter.id, kind: voter.kind },
    )
  }
  if (isRequesterSide(voter, review)) {
    throw new CountersignError(
      'self_approval',
      `${voter.id} made this request or is the person it was made for, so cannot review it; ask another approver.`,
      { voter_id: voter.id },
    )
  }
  if (!review.requirements.some((requirement) => isEligibleFor(requirement, review, voter))) {
    throw new CountersignError(
      'not_an_approver',
      `${voter.id} is not an approver for this request; approvers are ${describeApprovers(review)}.`,
      { voter_id: voter.id },
    )
  }
  const earlier = review.votes.find(
    (cast) => cast.version === review.currentVersion && samePerson(voteIdentity(cast), voter),
  )
  if (earlier !== undefined) {
    throw new CountersignError(
      'already_voted',
      `${voter.id} already voted (${earlier.decision}) on version ${review.currentVersion} of this request; each person votes once per version.`,
      { voter_id: voter.id, version: review.currentVersion, decision: earlier.decision },
    )
  }
  if (review.requireReason && (vote.reason === undefined || vote.reason.trim() === '')) {
    throw new CountersignError('reason_required', 'This request requires a reason with every vote; add one and vote again.')
  }
  if (review.freshAuthMs !== undefined) {
    const oldestAccepted = now - review.freshAuthMs
    if (voter.authTime === undefined || voter.authTime < oldestAccepted) {
      throw new CountersignError(
        'fresh_auth_required',
        `This request requires a sign-in within the last ${describeMs(review.freshAuthMs)}; sign in again and vote.`,
        { fresh_auth_ms: review.freshAuthMs, authenticated_at: voter.authTime === undefined ? null : rfc3339(voter.authTime) },
      )
    }
  }
  if (vote.editParams !== undefined) {
    if (vote.decision !== 'approve') {
      throw new CountersignError('edit_not_allowed', 'Params can only be edited with an approving vote; deny without edits.')
    }
    if (!review.allowEdit) {
      throw new CountersignError('edit_not_allowed', 'The rule that requires this review does not allow editing params.')
    }
  }
}

/**
 * Counts the votes on the current version. Each requirement counts distinct
 * eligible people: someone in two approver groups counts once, and the same
 * person voting through two channels (same id or same email) counts once, by
 * their first vote. Votes from non-humans, the requester or the human they act
 * for never count, even if they were somehow recorded.
 *
 * A requirement whose deny threshold is met denies the request, and that is
 * checked before approvals and is final. Otherwise the request is approved
 * only when every requirement is met; a review with no requirements stays
 * pending rather than approving on nothing.
 *
 * @example
 * tallyVotes(review).outcome // 'approved' | 'denied' | 'pending'
 */
export function tallyVotes(
  review: ReviewState,
  policyGroups: Record<string, string[]> = review.policyGroups,
): TallyResult {
  const counted = distinctHumanVotes(review)
  const requirements = review.requirements.map((requirement): RequirementTally => {
    const eligible = counted.filter((cast) =>
      isEligibleApprover(approversOf(requirement, review), cast.voter, policyGroups),
    )
    const approvals = eligible.filter((cast) => cast.decision === 'approve').map((cast) => cast.voterId)
    const denials = eligible.filter((cast) => cast.decision === 'deny').map((cast) => cast.voterId)
    const quorum = atLeastOne(requirement.quorum)
    const denyQuorum = atLeastOne(requirement.denyQuorum)
    return {
      rule: requirement.rule,
      quorum,
      denyQuorum,
      approvals,
      denials,
      met: approvals.length >= quorum,
      denied: denials.length >= denyQuorum,
    }
  })
  let outcome: ReviewOutcome = 'pending'
  if (requirements.some((requirement) => requirement.denied)) outcome = 'denied'
  else if (requirements.length > 0 && requirements.every((requirement) => requirement.met)) outcome = 'approved'
  return { outcome, requirements }
}

function distinctHumanVotes(review: ReviewState): RecordedVote[] {
  const current = review.votes
    .map((cast, index) => ({ cast, index }))
    .filter(({ cast }) => cast.version === review.currentVersion)
    .sort((a, b) => a.cast.at - b.cast.at || a.index - b.index)
    .map(({ cast }) => cast)
  const counted: RecordedVote[] = []
  for (const cast of current) {
    if (cast.voter.kind !== 'human' || isRequesterSide(voteIdentity(cast), review)) continue
    if (counted.some((other) => samePerson(voteIdentity(other), voteIdentity(cast)))) continue
    counted.push(cast)
  }
  return counted
}

function isEligibleFor(requirement: ReviewRequirement, review: ReviewState, voter: Principal): boolean {
  return isEligibleApprover(approversOf(requirement, review), voter, review.policyGroups)
}

function approversOf(requirement: ReviewRequirement, review: ReviewState): string[] {
  return review.escalated ? [...requirement.approvers, ...review.escalateTo] : requirement.approvers
}

function describeApprovers(review: ReviewState): string {
  const entries = new Set(review.requirements.flatMap((requirement) => approversOf(requirement, review)))
  return [...entries].join(', ') || 'none'
}

function describeMs(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.ceil(ms / 1000)} s`
}

function atLeastOne(count: number | undefined): number {
  // A stored requirement without a sane count must still need a person.
  return typeof count === 'number' && Number.isFinite(count) && count >= 1 ? Math.floor(count) : 1
}

function voteIdentity(cast: RecordedVote): Identity {
  return { id: cast.voterId, email: cast.voter.email }
}

function isRequesterSide(voter: Identity, review: ReviewState): boolean {
  const requesterSide: Identity[] = [review.requester]
  for (const link of [review.onBehalfOf, review.requester.onBehalfOf]) {
    if (link !== undefined) requesterSide.push({ id: link.id })
  }
  return requesterSide.some((identity) => samePerson(identity, voter))
}

function entryNamesPrincipal(entry: string, principal: Principal): boolean {
  if (entry === principal.id) return true
  if (!entry.includes('@')) return false
  const lower = entry.toLowerCase()
  return lower === principal.id.toLowerCase() || lower === principal.email?.toLowerCase()
}
