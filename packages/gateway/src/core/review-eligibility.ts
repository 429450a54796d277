import { CountersignError } from './errors.js'
import { rfc3339 } from './rfc3339.js'
import { samePerson, type Identity } from './same-person.js'
import type { Principal, RecordedVote, RequestState, ReviewRequirement } from './types.js'
import type { ReviewRequirements } from './review-requirements.js'

const GROUP_PREFIX = 'group:'

/** Whether someone may vote on a request now, and if not, the refusal that says why. */
export type Eligibility = { eligible: true } | { eligible: false; refusal: CountersignError }

/**
 * May `voter` vote on the current version of this request at `now`, and why
 * not? Pure, and the one answer the vote path and the "reviewable" listing
 * share. With `digest`, the voter names the version they saw, and a vote for
 * any other version is refused.
 *
 * The first refusal that applies wins, most fundamental first:
 * `request_not_pending` (decided, or past its deadline), `invalid_transition`
 * (decided by policy, no review), `non_human_reviewer`, `self_approval` (the
 * requester, the human they act for, or a key either of them created),
 * `not_an_approver`, `version_mismatch`, `self_approval` again for the author
 * of an edited version (`details.edited_version`), `already_voted`.
 *
 * What only a vote carries (a reason, a recent sign-in, an edit) is checked by
 * `checkVote`.
 *
 * @example
 * const answer = reviewEligibility(state, reviewer, Date.now(), state.digest)
 * if (!answer.eligible) console.log(answer.refusal.code, answer.refusal.message)
 */
export function reviewEligibility(state: RequestState, voter: Principal, now: number, digest?: string): Eligibility {
  const refusal = firstRefusal(state, voter, now, digest)
  return refusal === undefined ? { eligible: true } : { eligible: false, refusal }
}

function firstRefusal(state: RequestState, voter: Principal, now: number, digest: string | undefined): CountersignError | undefined {
  if (state.status !== 'pending') {
    return new CountersignError('request_not_pending', `This request is ${state.status} and no longer takes votes.`, {
      status: state.status,
    })
  }
  if (state.deadlineAt !== undefined && now >= state.deadlineAt) {
    return new CountersignError(
      'request_not_pending',
      `The review deadline passed at ${new Date(state.deadlineAt).toISOString()}; the request no longer takes votes.`,
      { deadline_at: rfc3339(state.deadlineAt) },
    )
  }
  const review = state.review
  if (review === undefined) return new CountersignError('invalid_transition', 'This request was decided by policy and has no review.')
  if (voter.kind !== 'human') {
    return new CountersignError(
      'non_human_reviewer',
      `Only people can review requests; ${voter.id} is a${voter.kind === 'agent' ? 'n' : ''} ${voter.kind}.`,
      { voter_id: voter.id, kind: voter.kind },
    )
  }
  if (isRequesterSide(voter, state)) {
    return new CountersignError(
      'self_approval',
      `${voter.id} made this request or is the person it was made for, so cannot review it; ask another approver.`,
      { voter_id: voter.id },
    )
  }
  if (voter.keyCreatedBy !== undefined && isRequesterSide({ id: voter.keyCreatedBy }, state)) {
    return new CountersignError(
      'self_approval',
      `${voter.id} signed in with a key that ${voter.keyCreatedBy} created, and ${voter.keyCreatedBy} made this request or is the person it was made for, so it cannot count; ask another approver.`,
      { voter_id: voter.id, key_created_by: voter.keyCreatedBy },
    )
  }
  if (!review.requirements.some((requirement) => isEligibleApprover(approversOf(requirement, state), voter, review.policyGroups))) {
    return new CountersignError(
      'not_an_approver',
      `${voter.id} is not an approver for this request; approvers are ${describeApprovers(state, review)}.`,
      { voter_id: voter.id },
    )
  }
  if (digest !== undefined && digest !== state.digest) {
    const seen = state.versions.find((version) => version.digest === digest)
    return new CountersignError(
      'version_mismatch',
      `${seen === undefined ? 'The digest names no version of this request' : `The vote names version ${seen.version}`}, but the request is now at version ${state.currentVersion} (digest ${state.digest}); read it again and vote on what it says now.`,
      { digest, current_version: state.currentVersion, current_digest: state.digest },
    )
  }
  const author = authorOfEdit(state)
  if (author !== undefined && samePerson(author, voter)) {
    return new CountersignError(
      'self_approval',
      `${voter.id} authored version ${state.currentVersion} of this request (an edit), so cannot approve it; it needs its approvals from other reviewers.`,
      { voter_id: voter.id, edited_version: state.currentVersion },
    )
  }
  const earlier = state.votes.find((cast) => cast.version === state.currentVersion && samePerson(voteIdentity(cast), voter))
  if (earlier !== undefined) {
    return new CountersignError(
      'already_voted',
      `${voter.id} already voted (${earlier.decision}) on version ${state.currentVersion} of this request; each person votes once per version.`,
      { voter_id: voter.id, version: state.currentVersion, decision: earlier.decision },
    )
  }
  return undefined
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
export function isEligibleApprover(approvers: string[], voter: Principal, policyGroups: Record<string, string[]>): boolean {
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

/** A requirement's approvers, with the escalation targets once the request has escalated. */
export function approversOf(requirement: ReviewRequirement, state: RequestState): string[] {
  const escalateTo = state.review?.escalateTo ?? []
  return state.escalatedAt !== undefined ? [...requirement.approvers, ...escalateTo] : requirement.approvers
}

/** The requester, and the human the requester acts for (verified or only claimed). */
export function isRequesterSide(voter: Identity, state: RequestState): boolean {
  const requesterSide: Identity[] = [state.requester]
  for (const link of [state.onBehalfOf, state.requester.onBehalfOf]) {
    if (link !== undefined) requesterSide.push({ id: link.id })
  }
  return requesterSide.some((identity) => samePerson(identity, voter))
}

/** Whether a recorded vote was cast with a key the requester's side created. */
export function isMintedByRequesterSide(cast: RecordedVote, state: RequestState): boolean {
  const creator = cast.voter.keyCreatedBy
  return creator !== undefined && isRequesterSide({ id: creator }, state)
}

/**
 * Who made the current version, when a reviewer's edit made it (version 1 is
 * the requester's own). The editor's approval is recorded with the edit, and
 * its identity (id and email) is the editor's, so the same person arriving
 * through another channel is recognised too.
 */
export function authorOfEdit(state: RequestState): Identity | undefined {
  if (state.currentVersion <= 1) return undefined
  const version = state.versions.find((v) => v.version === state.currentVersion)
  if (version === undefined) return undefined
  const editVote = state.votes.find((cast) => cast.version === version.version && cast.voterId === version.createdBy)
  return editVote === undefined ? { id: version.createdBy } : voteIdentity(editVote)
}

export function voteIdentity(cast: RecordedVote): Identity {
  return { id: cast.voterId, email: cast.voter.email }
}

function describeApprovers(state: RequestState, review: ReviewRequirements): string {
  const entries = new Set(review.requirements.flatMap((requirement) => approversOf(requirement, state)))
  return [...entries].join(', ') || 'none'
}

function entryNamesPrincipal(entry: string, principal: Principal): boolean {
  if (entry === principal.id) return true
  if (!entry.includes('@')) return false
  const lower = entry.toLowerCase()
  return lower === principal.id.toLowerCase() || lower === principal.email?.toLowerCase()
}
