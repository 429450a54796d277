export { Countersign } from './countersign.js'
export type {
  CallOptions,
  CancelOptions,
  ClientChannel,
  CountersignOptions,
  ListFilter,
  GuardOptions,
  GuardedAction,
  RequestOptions,
  WaitOptions,
} from './countersign.js'
export {
  ActionCancelled,
  ActionDenied,
  ActionExpired,
  CountersignError,
  GatewayUnavailable,
  GrantRejected,
  WaitTimeout,
} from './errors.js'
export type { CountersignErrorOptions, Denial, ErrorCode, GrantRejectionCode, WireErrorCode } from './errors.js'
export type { TokenSource } from './http-transport.js'
export { requestViewOf } from './parse-request-view.js'
export type { RequestView } from './wire-contract.generated.js'
export type {
  ActionRequest,
  ActionResult,
  ActionSpec,
  BoundFile,
  Decision,
  Effect,
  Grant,
  GrantStatus,
  MatchedRule,
  OnBehalfOf,
  PrincipalKind,
  Redemption,
  Requester,
  RequestStatus,
  ResultInput,
  ResultOutcome,
  Review,
  ReviewRequirement,
  Vote,
  VoteDecision,
  VoteInput,
} from './types.js'
