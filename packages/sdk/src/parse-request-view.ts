import { CountersignError } from './errors.js'
import type {
  ActionRequest,
  ActionResult,
  BoundFile,
  Decision,
  Grant,
  OnBehalfOf,
  Redemption,
  Requester,
  Review,
  ReviewRequirement,
  Vote,
} from './types.js'
import {
  type BoundFile as WireBoundFile,
  type DecisionView,
  EFFECTS,
  GRANT_STATUSES,
  type GrantView,
  type MatchedRule,
  type OnBehalfOfView,
  PRINCIPAL_KINDS,
  type RedemptionView,
  REQUEST_STATUSES,
  type RequesterView,
  type RequestPage,
  type RequestView,
  RESULT_OUTCOMES,
  type ResultView,
  type ReviewRequirementView,
  type ReviewView,
  VOTE_DECISIONS,
  type VoteView,
} from './wire-contract.generated.js'

/** An untrusted object whose keys are those of the wire type `T`, each still to be checked. */
type Fields<T> = { readonly [K in keyof T]?: unknown }
type Key<T> = keyof T & string
type Json = Record<string, unknown>

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function malformed(path: string, expected: string): CountersignError {
  return new CountersignError('unexpected_response', `The gateway's answer has no valid ${path} (expected ${expected})`, {
    details: { path },
  })
}

/*
 * Readers for untrusted JSON. Required fields must be present with the right type; nullable
 * fields may be absent or null, but a value of the wrong type is still refused, because a
 * gateway that sends one is not speaking this contract.
 */

function record<T = Json>(value: unknown, path: string): Fields<T> {
  if (!isRecord(value)) throw malformed(path, 'an object')
  return value as Fields<T>
}

function string<T>(object: Fields<T>, key: Key<T>, path: string): string {
  const value = object[key]
  if (typeof value !== 'string') throw malformed(`${path}.${key}`, 'a string')
  return value
}

function nullableString<T>(object: Fields<T>, key: Key<T>, path: string): string | null {
  const value = object[key]
  if (value === undefined || value === null) return null
  if (typeof value !== 'string') throw malformed(`${path}.${key}`, 'a string or null')
  return value
}

function number<T>(object: Fields<T>, key: Key<T>, path: string): number {
  const value = object[key]
  if (typeof value !== 'number' || !Number.isFinite(value)) throw malformed(`${path}.${key}`, 'a number')
  return value
}

function nullableNumber<T>(object: Fields<T>, key: Key<T>, path: string): number | null {
  const value = object[key]
  if (value === undefined || value === null) return null
  if (typeof value !== 'number' || !Number.isFinite(value)) throw malformed(`${path}.${key}`, 'a number or null')
  return value
}

function boolean<T>(object: Fields<T>, key: Key<T>, path: string): boolean {
  const value = object[key]
  if (value === undefined || value === null) return false
  if (typeof value !== 'boolean') throw malformed(`${path}.${key}`, 'a boolean')
  return value
}

function oneOf<V extends string, T>(allowed: readonly V[], object: Fields<T>, key: Key<T>, path: string): V {
  const value = object[key]
  const match = allowed.find((candidate) => candidate === value)
  if (match === undefined) throw malformed(`${path}.${key}`, `one of ${allowed.join(', ')}`)
  return match
}

function object<T>(value: Fields<T>, key: Key<T>, path: string): Json {
  const inner = value[key]
  if (inner === undefined || inner === null) return {}
  return record(inner, `${path}.${key}`) as Json
}

function nullableObject<T, W, R>(value: Fields<T>, key: Key<T>, path: string, parse: (inner: Fields<W>, path: string) => R): R | null {
  const inner = value[key]
  if (inner === undefined || inner === null) return null
  return parse(record<W>(inner, `${path}.${key}`), `${path}.${key}`)
}

function list<T, R>(value: Fields<T>, key: Key<T>, path: string, parse: (item: unknown, path: string) => R): R[] {
  const inner = value[key]
  if (inner === undefined || inner === null) return []
  if (!Array.isArray(inner)) throw malformed(`${path}.${key}`, 'an array')
  return inner.map((item, index) => parse(item, `${path}.${key}[${index}]`))
}

function stringItem(item: unknown, path: string): string {
  if (typeof item !== 'string') throw malformed(path, 'a string')
  return item
}

function parseRequester(value: Fields<RequesterView>, path: string): Requester {
  return {
    id: string(value, 'id', path),
    kind: oneOf(PRINCIPAL_KINDS, value, 'kind', path),
    displayName: nullableString(value, 'display_name', path) ?? string(value, 'id', path),
  }
}

function parseOnBehalfOf(value: Fields<OnBehalfOfView>, path: string): OnBehalfOf {
  return { id: string(value, 'id', path), verified: boolean(value, 'verified', path) }
}

function parseDecision(value: Fields<DecisionView>, path: string): Decision {
  return {
    effect: oneOf(EFFECTS, value, 'effect', path),
    matchedRules: list(value, 'matched_rules', path, (item, itemPath) => {
      const rule = record<MatchedRule>(item, itemPath)
      return { name: string(rule, 'name', itemPath), effect: oneOf(EFFECTS, rule, 'effect', itemPath) }
    }),
    risk: nullableNumber(value, 'risk', path) ?? 0,
    explain: list(value, 'explain', path, stringItem),
    policySha256: nullableString(value, 'policy_sha256', path) ?? '',
  }
}

function parseBoundFile(item: unknown, path: string): BoundFile {
  const value = record<WireBoundFile>(item, path)
  return { path: string(value, 'path', path), sha256: string(value, 'sha256', path) }
}

function parseRequirement(item: unknown, path: string): ReviewRequirement {
  const value = record<ReviewRequirementView>(item, path)
  return {
    rule: string(value, 'rule', path),
    approvers: list(value, 'approvers', path, stringItem),
    quorum: number(value, 'quorum', path),
    approvals: list(value, 'approvals', path, stringItem),
    denials: list(value, 'denials', path, stringItem),
    met: boolean(value, 'met', path),
  }
}

function parseReview(value: Fields<ReviewView>, path: string): Review {
  return {
    requirements: list(value, 'requirements', path, parseRequirement),
    deadlineAt: nullableString(value, 'deadline_at', path),
    escalateAt: nullableString(value, 'escalate_at', path),
    escalated: boolean(value, 'escalated', path),
    requireReason: boolean(value, 'require_reason', path),
    allowEdit: boolean(value, 'allow_edit', path),
  }
}

function parseVote(item: unknown, path: string): Vote {
  const value = record<VoteView>(item, path)
  const voterId = string(value, 'voter_id', path)
  return {
    voterId,
    voterName: nullableString(value, 'voter_name', path) ?? voterId,
    decision: oneOf(VOTE_DECISIONS, value, 'decision', path),
    reason: nullableString(value, 'reason', path),
    version: number(value, 'version', path),
    via: nullableString(value, 'via', path) ?? 'api',
    votedAt: string(value, 'voted_at', path),
  }
}

function parseGrant(value: Fields<GrantView>, path: string): Grant {
  return {
    token: nullableString(value, 'token', path),
    jti: string(value, 'jti', path),
    digest: string(value, 'digest', path),
    status: oneOf(GRANT_STATUSES, value, 'status', path),
    issuedAt: string(value, 'issued_at', path),
    expiresAt: string(value, 'expires_at', path),
    redeemedAt: nullableString(value, 'redeemed_at', path),
  }
}

function parseResult(value: Fields<ResultView>, path: string): ActionResult {
  return {
    outcome: oneOf(RESULT_OUTCOMES, value, 'outcome', path),
    exitCode: nullableNumber(value, 'exit_code', path),
    detail: nullableString(value, 'detail', path),
  }
}

/**
 * Narrows a request view from the wire (snake_case JSON, `RequestView` in the generated
 * contract) into an {@link ActionRequest}. Throws `unexpected_response` when the body does not
 * follow the API contract.
 */
export function parseRequestView(body: unknown): ActionRequest {
  const path = 'request'
  const value = record<RequestView>(body, path)
  return {
    id: string(value, 'id', path),
    status: oneOf(REQUEST_STATUSES, value, 'status', path),
    action: string(value, 'action', path),
    resource: string(value, 'resource', path),
    environment: string(value, 'environment', path),
    version: number(value, 'version', path),
    digest: string(value, 'digest', path),
    params: record(value.params, `${path}.params`) as Json,
    bind: list(value, 'bind', path, parseBoundFile),
    reason: nullableString(value, 'reason', path),
    context: object(value, 'context', path),
    requester: parseRequester(record<RequesterView>(value.requester, `${path}.requester`), `${path}.requester`),
    onBehalfOf: nullableObject(value, 'on_behalf_of', path, parseOnBehalfOf),
    decision: parseDecision(record<DecisionView>(value.decision, `${path}.decision`), `${path}.decision`),
    review: nullableObject(value, 'review', path, parseReview),
    votes: list(value, 'votes', path, parseVote),
    grant: nullableObject(value, 'grant', path, parseGrant),
    result: nullableObject(value, 'result', path, parseResult),
    createdAt: string(value, 'created_at', path),
    updatedAt: string(value, 'updated_at', path),
    decidedAt: nullableString(value, 'decided_at', path),
  }
}

/** Narrows the answer of `GET /v1/requests` (`RequestPage` in the generated contract). */
export function parseRequestPage(body: unknown): { items: ActionRequest[]; nextCursor: string | null } {
  const path = 'page'
  const value = record<RequestPage>(body, path)
  if (!Array.isArray(value.items)) throw malformed(`${path}.items`, 'an array')
  return { items: value.items.map(parseRequestView), nextCursor: nullableString(value, 'next_cursor', path) }
}

/** Narrows the answer of `POST /v1/grants/redeem` (`RedemptionView` in the generated contract). */
export function parseRedemption(body: unknown): Redemption {
  const path = 'redemption'
  const value = record<RedemptionView>(body, path)
  return {
    requestId: string(value, 'request_id', path),
    jti: string(value, 'jti', path),
    digest: string(value, 'digest', path),
    action: string(value, 'action', path),
    resource: string(value, 'resource', path),
    environment: string(value, 'environment', path),
    params: record(value.params, `${path}.params`) as Json,
    redeemedAt: string(value, 'redeemed_at', path),
  }
}

/**
 * The inverse of {@link parseRequestView}: a request in the gateway's own JSON form
 * (snake_case, as `GET /v1/requests/:id` answers), e.g. to print or store it.
 *
 * @example
 * console.log(JSON.stringify(requestViewOf(await cs.get(id)), null, 2))
 */
export function requestViewOf(request: ActionRequest): RequestView {
  const { review, grant, result, decision } = request
  return {
    id: request.id,
    status: request.status,
    action: request.action,
    resource: request.resource,
    environment: request.environment,
    version: request.version,
    digest: request.digest,
    params: request.params,
    bind: request.bind.map((file) => ({ path: file.path, sha256: file.sha256 })),
    reason: request.reason,
    context: request.context,
    requester: { id: request.requester.id, kind: request.requester.kind, display_name: request.requester.displayName },
    on_behalf_of: request.onBehalfOf === null ? null : { id: request.onBehalfOf.id, verified: request.onBehalfOf.verified },
    decision: {
      effect: decision.effect,
      matched_rules: decision.matchedRules.map((rule) => ({ name: rule.name, effect: rule.effect })),
      risk: decision.risk,
      explain: decision.explain,
      policy_sha256: decision.policySha256,
    },
    review:
      review === null
        ? null
        : {
            requirements: review.requirements.map((requirement) => ({
              rule: requirement.rule,
              approvers: requirement.approvers,
              quorum: requirement.quorum,
              approvals: requirement.approvals,
              denials: requirement.denials,
              met: requirement.met,
            })),
            deadline_at: review.deadlineAt,
            escalate_at: review.escalateAt,
            escalated: review.escalated,
            require_reason: review.requireReason,
            allow_edit: review.allowEdit,
          },
    votes: request.votes.map((vote) => ({
      voter_id: vote.voterId,
      voter_name: vote.voterName,
      decision: vote.decision,
      reason: vote.reason,
      version: vote.version,
      via: vote.via,
      voted_at: vote.votedAt,
    })),
    grant:
      grant === null
        ? null
        : {
            token: grant.token,
            jti: grant.jti,
            digest: grant.digest,
            status: grant.status,
            issued_at: grant.issuedAt,
            expires_at: grant.expiresAt,
            redeemed_at: grant.redeemedAt,
          },
    result: result === null ? null : { outcome: result.outcome, exit_code: result.exitCode, detail: result.detail },
    created_at: request.createdAt,
    updated_at: request.updatedAt,
    decided_at: request.decidedAt,
  }
}
