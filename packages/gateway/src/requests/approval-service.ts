import type { Transaction } from 'kysely'
import {
  type ActionRequestInput,
  type AuditEvent,
  type AuditRefusalType,
  checkVote,
  CountersignError,
  isCountersignError,
  type LifecycleEvent,
  openRequest,
  type Principal,
  type RequestResult,
  type RequestState,
  type ReviewRequirements,
  type Transition,
  transition,
  type VoteInput,
} from '../core/index.js'
import type { GrantSigner } from '../grants/index.js'
import { type CompiledPolicy, evaluate } from '../policy/index.js'
import { type Database, isUniqueViolation, type Store } from '../store/index.js'
import { newGrantId, newRequestId } from './new-id.js'
import { redactAuditEvent } from './redact-audit-event.js'
import { type RequestRecord, requestRepository } from './request-repository.js'
import { canSee, canSeeAll } from './request-visibility.js'

/** Appends audit events inside the caller's transaction and returns the last sequence number written. */
export interface AuditAppender {
  append(trx: Transaction<Database>, events: AuditEvent[], now: number): Promise<number>
}

/** Told after a change has committed, so waiters read the new state. */
export interface ChangeListener {
  requestChanged(change: { requestId: string; seq: number; before?: RequestState; after: RequestState; effect?: string }): void
}

export interface ApprovalServiceOptions {
  store: Store
  policy: () => CompiledPolicy
  grants: GrantSigner
  audit: AuditAppender
  listener: ChangeListener
  now: () => number
  /** Grant lifetime. */
  grantTtlMs: number
}

/** The outcome of a request submission: the request, and whether this call created it. */
export interface Submission {
  record: RequestRecord
  created: boolean
}

/** A redemption: what the redeemer may now run, exactly once. */
export interface Redemption {
  requestId: string
  jti: string
  digest: string
  action: string
  resource: string
  environment: string
  params: Record<string, unknown>
  redeemedAt: number
}

/**
 * Applies decisions to requests: evaluates policy, records versions, votes and
 * grants, and appends the audit events of each change in the same
 * transaction. Refusals concerning a request are audited too, and change
 * nothing else.
 */
export class ApprovalService {
  readonly #options: ApprovalServiceOptions

  constructor(options: ApprovalServiceOptions) {
    this.#options = options
  }

  /** Submits a request: policy decides, and retries with the same key or digest return the first request. */
  async submit(requester: Principal, input: ActionRequestInput, via: string): Promise<Submission> {
    const { store, now: clock } = this.#options
    const now = clock()
    const policy = this.#options.policy()
    const evaluation = evaluate(policy, input, requester, now)
    const opened = openRequest(
      {
        id: newRequestId(now),
        requester,
        input,
        effect: evaluation.effect,
        via,
        ...(evaluation.review ? { review: evaluation.review } : {}),
        decision: { matchedRules: evaluation.matchedRules, risk: evaluation.risk, policySha256: evaluation.policySha256 },
      },
      now,
    )
    const digest = opened.state.digest
    const decided = this.#withGrant(opened, now)
    const shown = (): Record<string, unknown> => evaluation.redacted.params
    const auditEvents = decided.auditEvents.map((event) => redactAuditEvent(event, shown))
    const record: RequestRecord = {
      state: decided.state,
      effect: evaluation.effect,
      reason: input.reason ?? null,
      context: evaluation.redacted.context,
      decision: {
        matchedRules: evaluation.matchedRules,
        risk: evaluation.risk,
        explain: evaluation.explain,
        policySha256: evaluation.policySha256,
      },
      idempotencyKey: input.idempotencyKey ?? null,
      redactedParams: new Map([[1, evaluation.redacted.params]]),
    }
    let outcome: { existing: RequestRecord } | { seq: number }
    try {
      // The retry lookup and the insert share one transaction, so two identical submissions cannot both insert.
      outcome = await store.db.transaction().execute(async (trx) => {
        await requestRepository.lockSubmission(trx, requester.id, digest)
        const existing = await findExisting(trx, requester, input, digest)
        if (existing) return { existing }
        await requestRepository.insert(trx, record)
        return { seq: await this.#options.audit.append(trx, auditEvents, now) }
      })
    } catch (error) {
      // One key used for two different actions at once takes two different locks; the key's unique constraint lets one through.
      if (input.idempotencyKey !== undefined && isUniqueViolation(error)) {
        const winner = await store.db.transaction().execute((trx) => findExisting(trx, requester, input, digest))
        if (winner) return { record: winner, created: false }
      }
      throw error
    }
    if ('existing' in outcome) return { record: outcome.existing, created: false }
    this.#options.listener.requestChanged({ requestId: record.state.id, seq: outcome.seq, after: record.state, effect: evaluation.effect })
    return { record, created: true }
  }

  /** Loads a request the caller may see: humans and operators see every request, agents and services only their own. */
  async get(viewer: Principal, id: string): Promise<RequestRecord> {
    const record = await this.#options.store.db.transaction().execute((trx) => requestRepository.load(trx, id, { lock: false }))
    if (!record || !canSee(viewer, record.state)) {
      throw new CountersignError('not_found', `No request ${id} that you may see; check the id.`, { id })
    }
    return record
  }

  /** One page of the requests the viewer may see, newest first. */
  list(
    viewer: Principal,
    filter: { status?: string; action?: string; mine: boolean; limit: number; cursor?: string },
  ): Promise<{ records: RequestRecord[]; nextCursor: string | null }> {
    // Agents and services only ever see their own requests; humans and operators see all.
    const ownOnly = filter.mine || !canSeeAll(viewer)
    return this.#options.store.db.transaction().execute((trx) =>
      requestRepository.listPage(trx, {
        ...(filter.status !== undefined ? { status: filter.status } : {}),
        ...(filter.action !== undefined ? { action: filter.action } : {}),
        ...(ownOnly ? { requesterId: viewer.id } : {}),
        limit: filter.limit,
        ...(filter.cursor !== undefined ? { cursor: filter.cursor } : {}),
      }),
    )
  }

  /** How many requests wait for review (for the pending gauge). */
  countPending(): Promise<number> {
    return requestRepository.countPending(this.#options.store.db)
  }

  /** Casts a vote (approve or deny, optionally with edited params). */
  vote(voter: Principal, id: string, vote: VoteInput, via: string): Promise<RequestRecord> {
    return this.#change(id, { principal: voter, via, refusal: 'vote.refused' }, (record) => {
      const now = this.#options.now()
      // The vote is judged here, under the request's lock, against the version it names, so an edit that commits first refuses it.
      const event: Extract<LifecycleEvent, { type: 'vote' }> = { type: 'vote', voter, via, decision: vote.decision, digest: vote.digest }
      if (vote.reason !== undefined) event.reason = vote.reason
      if (vote.editParams !== undefined) {
        event.editParams = vote.editParams
        // Only an eligible reviewer learns how the policy judges an edit.
        checkVote(record.state, voter, vote, now)
        const editReview = this.#reviewOfEdit(record, vote.editParams, now)
        if (editReview) event.editReview = editReview
      }
      return transition(record.state, event, now)
    })
  }

  /** Cancels a pending request; only its requester may. */
  cancel(by: Principal, id: string, reason: string | undefined, via: string): Promise<RequestRecord> {
    return this.#change(id, { principal: by, via, refusal: 'cancel.refused' }, (record) =>
      transition(record.state, { type: 'cancel', by, via, ...(reason !== undefined ? { reason } : {}) }, this.#options.now()),
    )
  }

  /** Records how the approved action went; only the requester may, once, after redeeming. */
  reportResult(by: Principal, id: string, result: RequestResult, via: string): Promise<RequestRecord> {
    return this.#change(id, { principal: by, via, refusal: 'result.refused' }, (record) =>
      transition(record.state, { type: 'result', by, via, ...result }, this.#options.now()),
    )
  }

  /**
   * Redeems a grant exactly once for the action whose digest it carries. The
   * token's signature and expiry are checked first, then that the redeemer is
   * the grant's subject (anyone else gets `not_found`, audited); then, under
   * the request's lock, its single use and its digest.
   */
  async redeem(by: Principal, token: string, digest: string, via: string): Promise<Redemption> {
    const now = this.#options.now()
    let claims
    try {
      claims = await this.#options.grants.verify(token, now)
    } catch (error) {
      const requestId = isCountersignError(error) ? error.details['request_id'] : undefined
      if (isCountersignError(error) && typeof requestId === 'string') await this.#auditRefusal(requestId, by, 'grant.refused', error, via)
      throw error
    }
    // A grant is the requester's to use: anyone else holding the token learns nothing from it, not even that it exists.
    if (claims.sub !== by.id) {
      const refused = new CountersignError('not_found', 'No grant that you may redeem; a grant is redeemed by the principal it was issued to.')
      await this.#auditRefusal(claims.rid, by, 'grant.refused', refused, via)
      throw refused
    }
    if (claims.dig !== digest) {
      const mismatch = new CountersignError(
        'digest_mismatch',
        'The digest does not match the action this grant approved; run exactly the approved action.',
        { expected: claims.dig, received: digest },
      )
      await this.#auditRefusal(claims.rid, by, 'grant.refused', mismatch, via)
      throw mismatch
    }
    const record = await this.#change(claims.rid, { principal: by, via, refusal: 'grant.refused' }, (current) =>
      transition(current.state, { type: 'grant_redeemed', jti: claims.jti, digest, by, via }, now),
    )
    const { state } = record
    const version = state.versions.find((v) => v.version === state.currentVersion)
    return {
      requestId: state.id,
      jti: claims.jti,
      digest: state.digest,
      action: state.action,
      resource: state.resource,
      environment: state.environment,
      params: version?.params ?? {},
      redeemedAt: state.grant?.redeemedAt ?? now,
    }
  }

  /** Applies a timer event (expire, escalate, grant expiry) as the gateway itself. */
  fire(id: string, event: Extract<LifecycleEvent, { type: 'expire' | 'escalate' | 'grant_expired' }>): Promise<RequestRecord> {
    return this.#change(id, undefined, (record) => transition(record.state, event, this.#options.now()))
  }

  async #change(
    id: string,
    actor: { principal: Principal; via: string; refusal: AuditRefusalType } | undefined,
    apply: (record: RequestRecord) => Transition,
  ): Promise<RequestRecord> {
    const now = this.#options.now()
    let outcome: { record: RequestRecord; before: RequestState; seq: number }
    try {
      outcome = await this.#options.store.db.transaction().execute(async (trx) => {
        const record = await requestRepository.load(trx, id, { lock: true })
        // A request the caller may not see does not exist for them, whatever they try to do to it.
        if (!record || (actor && !canSee(actor.principal, record.state))) {
          throw new CountersignError('not_found', `No request ${id} that you may see; check the id.`, { id })
        }
        const changed = this.#withGrant(apply(record), now)
        const redacted = new Map(record.redactedParams)
        for (const version of changed.state.versions) {
          if (!redacted.has(version.version)) redacted.set(version.version, this.#redactParams(changed.state, version.params, now))
        }
        const auditEvents = changed.auditEvents.map((event) => redactAuditEvent(event, (version) => redacted.get(version) ?? {}))
        await requestRepository.update(trx, record.state, changed.state, redacted)
        const seq = await this.#options.audit.append(trx, auditEvents, now)
        return { record: { ...record, state: changed.state, redactedParams: redacted }, before: record.state, seq }
      })
    } catch (error) {
      if (actor && isCountersignError(error) && error.code !== 'not_found') {
        await this.#auditRefusal(id, actor.principal, actor.refusal, error, actor.via)
      }
      throw error
    }
    this.#options.listener.requestChanged({ requestId: id, seq: outcome.seq, before: outcome.before, after: outcome.record.state })
    return outcome.record
  }

  /** Every approval, by policy or by people, comes with its single-use grant. */
  #withGrant(changed: Transition, now: number): Transition {
    if (changed.state.status !== 'approved' || changed.state.grant) return changed
    const issued = transition(changed.state, { type: 'grant_issued', jti: newGrantId(now), expiresAt: now + this.#options.grantTtlMs }, now)
    return { state: issued.state, auditEvents: [...changed.auditEvents, ...issued.auditEvents] }
  }

  /**
   * Judges edited params as if they had been submitted: a deny refuses the
   * edit, and a review adds its requirements to the request's.
   */
  #reviewOfEdit(record: RequestRecord, params: Record<string, unknown>, now: number): ReviewRequirements | undefined {
    const { state } = record
    const input: ActionRequestInput = {
      action: state.action,
      resource: state.resource,
      environment: state.environment,
      params,
      context: record.context,
      ...(record.reason !== null ? { reason: record.reason } : {}),
      ...(state.bind.length > 0 ? { bind: state.bind } : {}),
    }
    const evaluation = evaluate(this.#options.policy(), input, state.requester, now)
    if (evaluation.effect === 'deny') {
      const rules = evaluation.matchedRules.filter((rule) => rule.effect === 'deny').map((rule) => rule.name)
      throw new CountersignError(
        'edit_denied_by_policy',
        `The policy denies the edited action${rules.length > 0 ? ` (${rules.join(', ')})` : ''}; approve the original, edit it differently, or deny it.`,
        { rules },
      )
    }
    return evaluation.review ?? undefined
  }

  #redactParams(state: RequestState, params: Record<string, unknown>, now: number): Record<string, unknown> {
    const input = { action: state.action, resource: state.resource, environment: state.environment, params }
    return evaluate(this.#options.policy(), input, state.requester, now).redacted.params
  }

  async #auditRefusal(id: string, actor: Principal, type: AuditRefusalType, error: CountersignError, via: string): Promise<void> {
    const now = this.#options.now()
    const { store, audit } = this.#options
    await store.db.transaction().execute(async (trx) => {
      if (!(await requestRepository.exists(trx, id))) return
      const refusal: AuditEvent = { type, actor: { id: actor.id, kind: actor.kind, via }, requestId: id, data: { code: error.code } }
      await audit.append(trx, [refusal], now)
    })
  }
}

/** The request a retry refers to: same requester and idempotency key, or same digest while still pending. */
async function findExisting(
  trx: Transaction<Database>,
  requester: Principal,
  input: ActionRequestInput,
  digest: string,
): Promise<RequestRecord | undefined> {
  const id = input.idempotencyKey !== undefined
    ? await requestRepository.findByIdempotencyKey(trx, requester.id, input.idempotencyKey)
    : await requestRepository.findPendingByDigest(trx, requester.id, digest)
  if (id === undefined) return undefined
  const record = await requestRepository.load(trx, id, { lock: false })
  if (!record) return undefined
  if (input.idempotencyKey !== undefined && record.state.versions[0]?.digest !== digest) {
    throw new CountersignError(
      'idempotency_conflict',
      `The idempotency key "${input.idempotencyKey}" was already used for a different action; use a new key.`,
      { request_id: id },
    )
  }
  return record
}
