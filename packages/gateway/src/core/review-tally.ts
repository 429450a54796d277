import { CountersignError } from './errors.js'
import { rfc3339 } from './rfc3339.js'
import {
  approversOf,
  authorOfEdit,
  isEligibleApprover,
  isMintedByRequesterSide,
  isRequesterSide,
  reviewEligibility,
  voteIdentity,
} from './review-eligibility.js'
import type { ReviewRequirements } from './review-requirements.js'
import { samePerson } from './same-person.js'
import type { Principal, RecordedVote, RequestState, VoteInput } from './types.js'

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
 * Checks that `voter` may cast `vote` on the current version of the request
 * at `now`, and throws the first refusal that applies: first who may vote on
 * which version ({@link reviewEligibility}, which also holds the vote to the
 * digest it names), then what the vote itself must carry:
 * `reason_required`, `fresh_auth_required`, `edit_not_allowed`.
 *
 * Returns nothing and changes nothing; recording the vote is the caller's job.
 *
 * @throws CountersignError with a code of `reviewEligibility` or one of the codes above.
 * @example
 * checkVote(state, reviewer, { decision: 'approve', digest: state.digest, reason: 'ticket OPS-12' }, Date.now())
 */
export function checkVote(state: RequestState, voter: Principal, vote: VoteInput, now: number): void {
  const eligibility = reviewEligibility(state, voter, now, vote.digest)
  if (!eligibility.eligible) throw eligibility.refusal
  checkVoteDemands(state.review ?? requiredReview(), voter, vote, now)
}

/**
 * What a review asks of the vote itself, beyond who casts it: a reason, a
 * recent sign-in, and edits only with an approval the rule allows to edit.
 *
 * @throws CountersignError `reason_required`, `fresh_auth_required` or `edit_not_allowed`.
 */
export function checkVoteDemands(review: ReviewRequirements, voter: Principal, vote: Omit<VoteInput, 'digest'>, now: number): void {
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
 * for, a key either of them created, or the editor of the current version
 * never count, even if they were somehow recorded.
 *
 * A requirement whose deny threshold is met denies the request, and that is
 * checked before approvals and is final. Otherwise the request is approved
 * only when every requirement is met; a review with no requirements stays
 * pending rather than approving on nothing.
 *
 * @example
 * tallyVotes(state).outcome // 'approved' | 'denied' | 'pending'
 */
export function tallyVotes(state: RequestState): TallyResult {
  const review = state.review ?? requiredReview()
  const counted = distinctHumanVotes(state)
  const requirements = review.requirements.map((requirement): RequirementTally => {
    const eligible = counted.filter((cast) =>
      isEligibleApprover(approversOf(requirement, state), cast.voter, review.policyGroups),
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

function distinctHumanVotes(state: RequestState): RecordedVote[] {
  const author = authorOfEdit(state)
  const current = state.votes
    .map((cast, index) => ({ cast, index }))
    .filter(({ cast }) => cast.version === state.currentVersion)
    .sort((a, b) => a.cast.at - b.cast.at || a.index - b.index)
    .map(({ cast }) => cast)
  const counted: RecordedVote[] = []
  for (const cast of current) {
    const identity = voteIdentity(cast)
    if (cast.voter.kind !== 'human' || isRequesterSide(identity, state) || isMintedByRequesterSide(cast, state)) continue
    // The editor's approval comes with the edit; the edited version needs its quorum from others.
    if (author !== undefined && samePerson(author, identity)) continue
    if (counted.some((other) => samePerson(voteIdentity(other), identity))) continue
    counted.push(cast)
  }
  return counted
}

function requiredReview(): never {
  throw new CountersignError('invalid_transition', 'This request was decided by policy and has no review.')
}

function describeMs(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.ceil(ms / 1000)} s`
}

function atLeastOne(count: number | undefined): number {
  // A stored requirement without a sane count must still need a person.
  return typeof count === 'number' && Number.isFinite(count) && count >= 1 ? Math.floor(count) : 1
}
