export * from './errors.js'
export * from './types.js'
export { canonicalDigest, canonicalJson } from './canonical-digest.js'
export { rfc3339 } from './rfc3339.js'
export { computeDeadlines, parseDuration, type DeadlineSettings, type Deadlines } from './deadlines.js'
export {
  checkVote,
  isEligibleApprover,
  tallyVotes,
  type RequirementTally,
  type ReviewOutcome,
  type TallyResult,
} from './review-tally.js'
export {
  openRequest,
  reviewStateOf,
  transition,
  type LifecycleEvent,
  type NewRequest,
  type Transition,
} from './request-lifecycle.js'
export { samePerson, type Identity } from './same-person.js'
