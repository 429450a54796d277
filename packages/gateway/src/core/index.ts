export * from './errors.js'
export * from './types.js'
export * from './audit-event.js'
export { canonicalDigest, canonicalJson } from './canonical-digest.js'
export { decodeUtf8, parseIJson, type BodyRefusal } from './i-json.js'
export { rfc3339 } from './rfc3339.js'
export { computeDeadlines, parseDuration, type DeadlineSettings, type Deadlines } from './deadlines.js'
export { reviewEligibility, isEligibleApprover, type Eligibility } from './review-eligibility.js'
export { stricterOf, type ReviewRequirements } from './review-requirements.js'
export {
  checkVote,
  tallyVotes,
  type RequirementTally,
  type ReviewOutcome,
  type TallyResult,
} from './review-tally.js'
export {
  openRequest,
  transition,
  type LifecycleEvent,
  type NewRequest,
  type Transition,
} from './request-lifecycle.js'
export { samePerson, type Identity } from './same-person.js'
