import { backoffDelay } from './backoff-delay.js'
import { ActionCancelled, ActionDenied, ActionExpired, GrantRejected, WaitTimeout } from './errors.js'
import { HttpTransport } from './http-transport.js'
import type { HttpCall, TokenSource } from './http-transport.js'
import { parseRedemption, parseRequestPage, parseRequestView } from './parse-request-view.js'
import { sleep } from './sleep.js'
import { SDK_VERSION } from './version.js'
import type { ActionRequest, ActionSpec, Redemption, ResultInput, VoteInput } from './types.js'
import { pollTimeoutSeconds, waitDeadline } from './wait-deadline.js'

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000
const DEFAULT_USER_AGENT = `countersign-sdk/${SDK_VERSION}`
// The gateway answers a long-poll at its timeout; this is how much later we call it lost.
const LONG_POLL_MARGIN_MS = 10_000
// A long-poll that comes back pending and unchanged sooner than this was not held by the
// gateway (a proxy cut it, or something misbehaves); backing off keeps that from becoming a busy loop.
const MIN_HELD_POLL_MS = 1_000
// Reported failure details are for people reading the audit trail, not a place for stack dumps.
const MAX_DETAIL_LENGTH = 1_000

export interface CountersignOptions {
  /** The gateway's base URL, e.g. `https://countersign.example.com`. */
  url: string
  /** An API key (`cs_…`) or identity token, or a function returning a fresh one for every HTTP call. */
  token: TokenSource
  /** Replaces the global `fetch`, e.g. to add a proxy agent. */
  fetch?: typeof fetch
  userAgent?: string
  /**
   * How long one call, retries included, may keep failing to reach the gateway before it fails
   * with `GatewayUnavailable`. Default 30 000. Does not limit `wait`, which has its own deadline.
   */
  requestTimeoutMs?: number
  /**
   * The channel the gateway records for this client's calls (`x-countersign-via`): `sdk`, `cli`
   * or `api`. Default: none sent, recorded as `api`.
   */
  via?: ClientChannel
}

/** The channels a client may declare; the gateway refuses any other (Slack, Teams and the console are set by the gateway itself). */
export type ClientChannel = 'api' | 'cli' | 'sdk'

const CLIENT_CHANNELS: readonly ClientChannel[] = ['api', 'cli', 'sdk']

export interface ListFilter {
  status?: ActionRequest['status']
  action?: string
  mine?: boolean
  reviewable?: boolean
  limit?: number
  cursor?: string
}

export interface CallOptions {
  signal?: AbortSignal
}

export interface RequestOptions extends CallOptions {
  /**
   * Makes every call with this key return the request first created with it, pending or decided.
   * Default: none; the gateway then returns your pending request for the same action (same
   * digest) if there is one, so a retry or a rerun attaches to it instead of asking twice.
   */
  idempotencyKey?: string
  /**
   * Always open a new request, even when the same action of yours is already pending (sends a
   * fresh random idempotency key, reused for this call's own retries). Cannot be combined with
   * `idempotencyKey`.
   */
  newRequest?: boolean
}

export interface WaitOptions extends CallOptions {
  /**
   * Give up after this many milliseconds: with `WaitTimeout` if the gateway still says pending,
   * with `GatewayUnavailable` if it cannot be reached. Default: the request's review deadline
   * plus one minute.
   */
  timeoutMs?: number
  /** Called with every new view of the request while waiting. */
  onUpdate?: (request: ActionRequest) => void
  /**
   * Called with `false` (and the failure) when the gateway stops answering while waiting, and
   * with `true` once it answers again; waiting goes on with backoff in between.
   */
  onReachability?: (reachable: boolean, cause?: unknown) => void
}

export interface CancelOptions extends CallOptions {
  reason?: string
}

export interface GuardOptions<P extends Record<string, unknown> = Record<string, unknown>, T = unknown>
  extends RequestOptions, WaitOptions {
  /**
   * Called after the grant is redeemed and right before `fn`, with what `fn` is about to receive.
   * Throwing stops `fn` from running (the grant is spent; `failed` is reported with the error),
   * e.g. to re-check that a bound file is still the one that was approved.
   */
  beforeRun?: (params: P, request: ActionRequest) => void | Promise<void>
  /** How to report the value `fn` resolved with. Default: `succeeded`. */
  resultOf?: (value: T) => ResultInput
}

/**
 * The action to run once approved. It receives the approved params (a reviewer's edit included,
 * so validate them if their shape matters) and the approved request.
 */
export type GuardedAction<P extends Record<string, unknown>, T> = (params: P, request: ActionRequest) => T | Promise<T>

/**
 * A client for one Countersign gateway.
 *
 * @example
 * import { Countersign } from '@countersign/sdk'
 *
 * const cs = new Countersign({ url: 'https://countersign.example.com', token: process.env.COUNTERSIGN_TOKEN! })
 * const rows = await cs.guard(
 *   { action: 'db.export', resource: 'pg://prod/customers', environment: 'prod',
 *     params: { table: 'customers' }, reason: 'weekly churn report' },
 *   async (params) => exportTable(params),
 * )
 */
export class Countersign {
  /** The gateway's base URL, without a trailing slash. */
  readonly url: string
  readonly #transport: HttpTransport
  readonly #requestTimeoutMs: number

  constructor(options: CountersignOptions) {
    if (!isRecord(options)) throw new TypeError('Countersign options must be an object')
    const baseUrl = parseBaseUrl(options.url)
    this.url = baseUrl
    if (typeof options.token === 'string') {
      if (options.token === '') throw new TypeError('token must not be empty')
    } else if (typeof options.token !== 'function') {
      throw new TypeError('token must be a string or a function that returns one')
    }
    if (options.fetch !== undefined && typeof options.fetch !== 'function') throw new TypeError('fetch must be a function')
    if (options.userAgent !== undefined && typeof options.userAgent !== 'string') {
      throw new TypeError('userAgent must be a string')
    }
    if (options.requestTimeoutMs !== undefined) assertPositiveMs(options.requestTimeoutMs, 'requestTimeoutMs')
    if (options.via !== undefined && !CLIENT_CHANNELS.includes(options.via)) {
      throw new TypeError(`via must be one of ${CLIENT_CHANNELS.join(', ')}`)
    }
    const fetchImpl = options.fetch ?? globalThis.fetch
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    this.#transport = new HttpTransport({
      baseUrl,
      token: options.token,
      // Browsers refuse a fetch called with any `this` but the global object.
      fetch: (input, init) => fetchImpl(input, init),
      userAgent: options.userAgent ?? DEFAULT_USER_AGENT,
      ...(options.via !== undefined ? { via: options.via } : {}),
    })
  }

  /**
   * Asks for permission to run an action. Resolves with the request as the policy left it:
   * `approved` (with a grant), `denied`, or `pending` review. Asking again for an action of yours
   * that is still pending returns that request instead of a new one (pass `newRequest` to open a
   * new one), so network failures and 502/503/504 are retried without creating a second request.
   *
   * @example
   * const request = await cs.request({
   *   action: 'iam.role.attach', resource: 'arn:aws:iam::123456789012:role/deploy', environment: 'prod',
   *   params: { policy: 'AdministratorAccess' }, reason: 'incident 4711',
   * })
   * console.log(request.status, request.id)
   */
  async request(spec: ActionSpec, options: RequestOptions = {}): Promise<ActionRequest> {
    assertSpec(spec)
    if (options.idempotencyKey !== undefined) assertNonEmptyString(options.idempotencyKey, 'idempotencyKey')
    if (options.newRequest !== undefined && typeof options.newRequest !== 'boolean') throw new TypeError('newRequest must be a boolean')
    if (options.newRequest === true && options.idempotencyKey !== undefined) {
      throw new TypeError('newRequest and idempotencyKey cannot be combined: a key already names one request')
    }
    const idempotencyKey = options.newRequest === true ? crypto.randomUUID() : options.idempotencyKey
    const body = {
      action: spec.action,
      resource: spec.resource,
      environment: spec.environment,
      params: spec.params,
      reason: spec.reason,
      context: spec.context,
      bind: spec.bind,
      idempotency_key: idempotencyKey,
    }
    return parseRequestView(await this.#call({ method: 'POST', path: '/v1/requests', body, idempotent: true }, options))
  }

  /**
   * Reads a request as it is now.
   *
   * @example
   * const request = await cs.get('req_01J9Z3')
   * if (request.status === 'pending') console.log(request.review?.requirements)
   */
  async get(id: string, options: CallOptions = {}): Promise<ActionRequest> {
    assertNonEmptyString(id, 'id')
    return parseRequestView(await this.#call({ method: 'GET', path: requestPath(id), idempotent: true }, options))
  }

  /**
   * Lists requests the caller may see, newest first: all of them for humans, only their own for
   * agents and services. `reviewable` keeps those the caller could vote on now.
   *
   * @example
   * const { items } = await cs.list({ status: 'pending', reviewable: true })
   */
  async list(filter: ListFilter = {}, options: CallOptions = {}): Promise<{ items: ActionRequest[]; nextCursor: string | null }> {
    const query = new URLSearchParams()
    if (filter.status !== undefined) query.set('status', filter.status)
    if (filter.action !== undefined) query.set('action', filter.action)
    if (filter.mine) query.set('mine', 'true')
    if (filter.reviewable) query.set('reviewable', 'true')
    if (filter.limit !== undefined) query.set('limit', String(filter.limit))
    if (filter.cursor !== undefined) query.set('cursor', filter.cursor)
    const suffix = query.size > 0 ? `?${query}` : ''
    return parseRequestPage(await this.#call({ method: 'GET', path: `/v1/requests${suffix}`, idempotent: true }, options))
  }

  /**
   * Waits until the request is decided and resolves with it (any status but `pending`).
   *
   * Each round trip is a long-poll that the gateway answers as soon as something changes, so a
   * decision arrives at once. Network failures and 502/503/504, as during a gateway restart, are
   * retried with backoff until the deadline; then `GatewayUnavailable`. Reaching `timeoutMs`
   * while the request is still pending rejects with `WaitTimeout`; the request stays pending.
   *
   * @example
   * const decided = await cs.wait(request.id, {
   *   onUpdate: (r) => console.log(r.status, r.review?.requirements.map((q) => `${q.approvals.length}/${q.quorum}`)),
   * })
   */
  async wait(id: string, options: WaitOptions = {}): Promise<ActionRequest> {
    assertNonEmptyString(id, 'id')
    if (options.timeoutMs !== undefined) assertPositiveMs(options.timeoutMs, 'timeoutMs')
    return this.#waitUntilDecided(id, undefined, options)
  }

  /**
   * Approves or denies a request as the calling human. The vote names the `digest` of the
   * version you read, and counts only on that version: if another reviewer's edit landed in
   * between, it is refused with `version_mismatch` (HTTP 409) and you read the request again.
   * Passing `params` approves an edited version, where the policy allows edits.
   *
   * @example
   * const request = await cs.get('req_01J9Z3')
   * await cs.vote(request.id, { decision: 'approve', digest: request.digest, reason: 'checked the table list' })
   */
  async vote(id: string, input: VoteInput, options: CallOptions = {}): Promise<ActionRequest> {
    assertNonEmptyString(id, 'id')
    if (!isRecord(input) || (input.decision !== 'approve' && input.decision !== 'deny')) {
      throw new TypeError('decision must be "approve" or "deny"')
    }
    if (typeof input.digest !== 'string' || !/^[0-9a-f]{64}$/.test(input.digest)) {
      throw new TypeError('digest must be the digest of the version you read (the request\'s `digest`, 64 lowercase hex digits)')
    }
    assertOptionalString(input.reason, 'reason')
    if (input.params !== undefined && !isRecord(input.params)) throw new TypeError('params must be an object')
    const body = { decision: input.decision, digest: input.digest, reason: input.reason, params: input.params }
    return parseRequestView(
      await this.#call({ method: 'POST', path: `${requestPath(id)}/votes`, body, idempotent: false }, options),
    )
  }

  /**
   * Withdraws your own pending request.
   *
   * @example
   * await cs.cancel('req_01J9Z3', { reason: 'no longer needed' })
   */
  async cancel(id: string, options: CancelOptions = {}): Promise<ActionRequest> {
    assertNonEmptyString(id, 'id')
    assertOptionalString(options.reason, 'reason')
    return parseRequestView(
      await this.#call(
        { method: 'POST', path: `${requestPath(id)}/cancel`, body: { reason: options.reason }, idempotent: false },
        options,
      ),
    )
  }

  /**
   * Spends a grant: succeeds once per grant, and only with the digest the grant was issued for.
   * Refusals reject with `GrantRejected` (`grant_already_redeemed`, `digest_mismatch`,
   * `grant_expired`, `grant_invalid`).
   *
   * @example
   * const approved = await cs.wait(id)
   * if (approved.status === 'approved' && approved.grant?.token) {
   *   const { params } = await cs.redeem(approved.grant.token, approved.digest)
   *   await exportTable(params)
   * }
   */
  async redeem(token: string, digest: string, options: CallOptions = {}): Promise<Redemption> {
    assertNonEmptyString(token, 'token')
    assertNonEmptyString(digest, 'digest')
    return parseRedemption(
      await this.#call(
        { method: 'POST', path: '/v1/grants/redeem', body: { token, digest }, idempotent: false },
        options,
      ),
    )
  }

  /**
   * Records how the approved action went, for the audit trail.
   *
   * @example
   * await cs.reportResult(id, { outcome: 'failed', exitCode: 1, detail: 'relation "customers" does not exist' })
   */
  async reportResult(id: string, input: ResultInput, options: CallOptions = {}): Promise<ActionRequest> {
    assertNonEmptyString(id, 'id')
    if (!isRecord(input) || (input.outcome !== 'succeeded' && input.outcome !== 'failed')) {
      throw new TypeError('outcome must be "succeeded" or "failed"')
    }
    if (input.exitCode !== undefined && !Number.isInteger(input.exitCode)) throw new TypeError('exitCode must be an integer')
    assertOptionalString(input.detail, 'detail')
    const body = { outcome: input.outcome, exit_code: input.exitCode, detail: input.detail }
    return parseRequestView(
      await this.#call({ method: 'POST', path: `${requestPath(id)}/result`, body, idempotent: false }, options),
    )
  }

  /**
   * Runs `fn` only if the action is approved, and only once.
   *
   * Requests the action, waits for the decision, redeems the grant against the approved digest,
   * then calls `fn` with the approved params (a reviewer's edit included) and reports the outcome.
   * Resolves with what `fn` returns; if `fn` throws, reports `failed` and rethrows its error.
   *
   * Fails closed: `fn` never runs when the action is denied (`ActionDenied`), expires
   * (`ActionExpired`), is cancelled (`ActionCancelled`), the wait times out (`WaitTimeout`), the
   * grant is refused or redeems anything but the approved request and digest (`GrantRejected`),
   * the gateway cannot be reached (`GatewayUnavailable`), `beforeRun` throws, or the signal aborts
   * (its reason).
   *
   * A `timeoutMs` that runs out leaves the request pending, so a rerun of the same action attaches
   * to it. Aborting the signal while the request is pending cancels it: whoever aborted no longer
   * wants it, and reviewers should not approve what nobody waits for.
   *
   * @example
   * const outcome = await cs.guard(
   *   { action: 'db.export', resource: 'pg://prod/customers', environment: 'prod',
   *     params: { table: 'customers' }, reason: 'weekly churn report' },
   *   async (params) => exportTable(params),
   *   { onUpdate: (r) => console.log(`${r.id}: ${r.status}`), signal: AbortSignal.timeout(3_600_000) },
   * )
   */
  async guard<P extends Record<string, unknown>, T>(
    spec: ActionSpec<P>,
    fn: GuardedAction<P, T>,
    options: GuardOptions<P, T> = {},
  ): Promise<T> {
    if (typeof fn !== 'function') throw new TypeError('guard needs the function to run once approved')
    if (options.timeoutMs !== undefined) assertPositiveMs(options.timeoutMs, 'timeoutMs')
    if (options.beforeRun !== undefined && typeof options.beforeRun !== 'function') throw new TypeError('beforeRun must be a function')
    if (options.resultOf !== undefined && typeof options.resultOf !== 'function') throw new TypeError('resultOf must be a function')
    const { signal, onUpdate } = options
    const created = await this.request(spec, {
      signal,
      ...(options.idempotencyKey !== undefined ? { idempotencyKey: options.idempotencyKey } : {}),
      ...(options.newRequest !== undefined ? { newRequest: options.newRequest } : {}),
    })
    onUpdate?.(created)
    const decided =
      created.status === 'pending' ? await this.#waitOrCancelOnAbort(created, options) : created
    const approved = requireApproved(decided)
    const redemption = await this.#redeemGrantOf(approved, signal)
    // The redeemed params are exactly what the grant binds; the cast trusts the caller's P.
    const params = redemption.params as P
    let value: T
    try {
      await options.beforeRun?.(params, approved)
      // The last moment to honour an abort: past this line the action is running.
      signal?.throwIfAborted()
    } catch (error) {
      await this.#reportAfterRun(approved.id, { outcome: 'failed', detail: `not run: ${describeError(error)}` })
      throw error
    }
    try {
      value = await fn(params, approved)
    } catch (error) {
      await this.#reportAfterRun(approved.id, { outcome: 'failed', detail: describeError(error) })
      throw error
    }
    await this.#reportAfterRun(approved.id, resultFor(value, options.resultOf))
    return value
  }

  /** Waits for a pending request; an abort cancels it first if it is still pending. */
  async #waitOrCancelOnAbort(created: ActionRequest, options: WaitOptions): Promise<ActionRequest> {
    try {
      return await this.#waitUntilDecided(created.id, created, options)
    } catch (error) {
      if (options.signal?.aborted === true) {
        // Not tied to the aborted signal; a request that was decided meanwhile refuses the cancel, which is fine.
        await this.cancel(created.id, { reason: 'the requester stopped waiting' }).catch(() => undefined)
      }
      throw error
    }
  }

  #call(call: HttpCall, options: CallOptions): Promise<unknown> {
    return this.#transport.call(call, { deadline: Date.now() + this.#requestTimeoutMs, signal: options.signal })
  }

  async #waitUntilDecided(id: string, known: ActionRequest | undefined, options: WaitOptions): Promise<ActionRequest> {
    const startedAt = Date.now()
    let lastSeen = known
    let unheldPolls = 0
    let unreachable = false
    const onRetry =
      options.onReachability === undefined
        ? undefined
        : (cause: unknown): void => {
            unreachable = true
            options.onReachability?.(false, cause)
          }
    const deadline = (): number =>
      waitDeadline({ startedAt, timeoutMs: options.timeoutMs, requestTimeoutMs: this.#requestTimeoutMs, lastSeen })
    for (;;) {
      const giveUpAt = deadline()
      const seconds = pollTimeoutSeconds(giveUpAt - Date.now())
      const sentAt = Date.now()
      const view = parseRequestView(
        await this.#transport.call(
          {
            method: 'GET',
            path: `${requestPath(id)}/wait?timeout=${seconds}`,
            idempotent: true,
            attemptTimeoutMs: seconds * 1000 + LONG_POLL_MARGIN_MS,
          },
          { deadline: giveUpAt, signal: options.signal, ...(onRetry !== undefined ? { onRetry } : {}) },
        ),
      )
      if (unreachable) {
        unreachable = false
        options.onReachability?.(true)
      }
      const changed = lastSeen === undefined || JSON.stringify(view) !== JSON.stringify(lastSeen)
      lastSeen = view
      if (changed) options.onUpdate?.(view)
      if (view.status !== 'pending') return view
      if (Date.now() >= deadline()) throw new WaitTimeout(view)
      if (!changed && Date.now() - sentAt < MIN_HELD_POLL_MS) {
        await sleep(backoffDelay(unheldPolls), options.signal)
        unheldPolls += 1
      } else {
        unheldPolls = 0
      }
    }
  }

  async #redeemGrantOf(approved: ActionRequest, signal: AbortSignal | undefined): Promise<Redemption> {
    const grant = approved.grant
    if (grant === null || grant.token === null) {
      const code =
        grant?.status === 'redeemed' ? 'grant_already_redeemed' : grant?.status === 'expired' ? 'grant_expired' : 'grant_invalid'
      throw new GrantRejected(code, `Request ${approved.id} is approved but carries no grant this caller can redeem`, {
        details: { request_id: approved.id },
      })
    }
    const redemption = await this.redeem(grant.token, approved.digest, { signal })
    // The gateway checked the digest; refusing a redemption for anything else keeps a faulty
    // gateway from handing over params that were never approved.
    if (redemption.requestId !== approved.id || redemption.digest !== approved.digest) {
      throw new GrantRejected('digest_mismatch', `The grant redeemed for ${approved.id} binds a different action`, {
        details: { request_id: approved.id, expected: approved.digest, redeemed: redemption.digest },
      })
    }
    return redemption
  }

  async #reportAfterRun(id: string, input: ResultInput): Promise<void> {
    try {
      // Not tied to the caller's signal: the action has run, and the audit trail should say how.
      await this.reportResult(id, input)
    } catch {
      // The action already ran; failing the caller now would invite a second run. The audit
      // trail still shows the grant redeemed, only without a result.
    }
  }
}

/** The result to report for what `fn` returned; a `resultOf` that throws must not fail an action that already ran. */
function resultFor<T>(value: T, resultOf: ((value: T) => ResultInput) | undefined): ResultInput {
  try {
    return resultOf?.(value) ?? { outcome: 'succeeded' }
  } catch (error) {
    return { outcome: 'succeeded', detail: `resultOf failed: ${describeError(error)}` }
  }
}

function requireApproved(request: ActionRequest): ActionRequest {
  switch (request.status) {
    case 'approved':
      return request
    case 'denied':
      throw new ActionDenied(request)
    case 'expired':
      throw new ActionExpired(request)
    case 'cancelled':
      throw new ActionCancelled(request)
    case 'pending':
      throw new WaitTimeout(request)
  }
}

function requestPath(id: string): string {
  return `/v1/requests/${encodeURIComponent(id)}`
}

function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  return text.length > MAX_DETAIL_LENGTH ? `${text.slice(0, MAX_DETAIL_LENGTH - 1)}…` : text
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function parseBaseUrl(url: unknown): string {
  if (typeof url !== 'string' || url === '') throw new TypeError('url must be the gateway URL, e.g. https://countersign.example.com')
  const parsed = new URL(url)
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new TypeError('url must be an http(s) URL')
  if (parsed.search !== '' || parsed.hash !== '') throw new TypeError('url must not have a query or fragment')
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`
}

function assertNonEmptyString(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`${name} must be a non-empty string`)
}

function assertOptionalString(value: unknown, name: string): void {
  if (value !== undefined && typeof value !== 'string') throw new TypeError(`${name} must be a string`)
}

function assertPositiveMs(value: unknown, name: string): void {
  if (typeof value !== 'number' || !(value > 0)) throw new TypeError(`${name} must be a positive number of milliseconds`)
}

function assertSpec(spec: unknown): asserts spec is ActionSpec {
  if (!isRecord(spec)) throw new TypeError('the action spec must be an object')
  assertNonEmptyString(spec['action'], 'action')
  assertNonEmptyString(spec['resource'], 'resource')
  assertNonEmptyString(spec['environment'], 'environment')
  if (!isRecord(spec['params'])) throw new TypeError('params must be an object')
  assertOptionalString(spec['reason'], 'reason')
  if (spec['context'] !== undefined && !isRecord(spec['context'])) throw new TypeError('context must be an object')
  const bind = spec['bind']
  if (bind !== undefined) {
    const valid =
      Array.isArray(bind) &&
      bind.every((file: unknown) => isRecord(file) && typeof file['path'] === 'string' && typeof file['sha256'] === 'string')
    if (!valid) throw new TypeError('bind must be a list of {path, sha256}')
  }
}
