import { backoffDelay } from './backoff-delay.js'
import { CountersignError, GatewayUnavailable, errorFromResponse, networkErrorCode } from './errors.js'
import { sleep } from './sleep.js'

/** A bearer token, or a function that returns a fresh one (e.g. a short-lived workload identity token). */
export type TokenSource = string | (() => string | Promise<string>)

/**
 * Whether a failed attempt may have changed anything on the gateway. `not_delivered` means it
 * did not: the connection was never made, or the answer was 503, which the gateway sends only
 * when its store is unavailable and a proxy sends when it has no gateway to forward to. (A
 * database connection lost during the very COMMIT of a call is answered 503 too, though the
 * change may have been made; a retry of such a call is refused, one vote per person and one
 * redemption per grant, never applied twice.)
 */
export type Delivery = 'not_delivered' | 'unknown'

export interface HttpCall {
  method: 'GET' | 'POST'
  /** Path under the gateway's URL, starting with `/`. */
  path: string
  body?: unknown
  /**
   * True when sending the call twice has the same effect as once (reads, and request creation
   * with an idempotency key). Such calls are retried after any network failure or 502/503/504;
   * the others only after failures that were `not_delivered`.
   */
  idempotent: boolean
  /** Upper bound for one attempt, instead of the time left; a long-poll sets it a little above its poll timeout. */
  attemptTimeoutMs?: number
}

export interface CallBudget {
  /** Epoch milliseconds after which no new attempt starts; then the call fails with `GatewayUnavailable`. */
  deadline: number
  signal?: AbortSignal | undefined
  /** Told about each failed attempt that will be retried. */
  onRetry?: (cause: unknown) => void
}

export interface HttpTransportOptions {
  baseUrl: string
  token: TokenSource
  fetch: typeof fetch
  userAgent: string
  /** Sent as `x-countersign-via`, the channel the gateway records. */
  via?: string
}

type Attempt = { kind: 'answered'; body: unknown } | { kind: 'unreachable'; cause: unknown; delivery: Delivery }

const UNDELIVERED_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
])

// A certificate or TLS handshake failure will not go away by retrying; failing at once says why.
const PERMANENT_FAILURE_CODE = /CERT|SSL|TLS|EPROTO|^UNABLE_TO_|HOSTNAME_MISMATCH/

// setTimeout-based timers overflow above 2^31 - 1 ms and would fire at once.
const MAX_TIMER_MS = 2_147_483_647

/** The delivery of an answer whose status says the gateway is unavailable; undefined for any other status. */
export function deliveryOfStatus(status: number): Delivery | undefined {
  if (status === 503) return 'not_delivered'
  if (status === 502 || status === 504) return 'unknown'
  return undefined
}

/** The delivery of a `fetch` that threw: only a connection that was never established is certain. */
export function deliveryOfNetworkError(error: unknown): Delivery {
  const code = networkErrorCode(error)
  return code !== undefined && UNDELIVERED_NETWORK_CODES.has(code) ? 'not_delivered' : 'unknown'
}

/** Whether a `fetch` failure is one no retry can fix: the TLS handshake or certificate was refused. */
export function isPermanentNetworkError(error: unknown): boolean {
  const seen = new Set<unknown>()
  let current: unknown = error
  while (current instanceof Error && !seen.has(current)) {
    seen.add(current)
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string' && PERMANENT_FAILURE_CODE.test(code)) return true
    current = current.cause
  }
  return false
}

export function mayRetry(delivery: Delivery, idempotent: boolean): boolean {
  return idempotent || delivery === 'not_delivered'
}

function parseJson(text: string): unknown {
  if (text === '') return undefined
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

/** Sends JSON calls to the gateway and retries them through outages within a deadline. */
export class HttpTransport {
  readonly #baseUrl: string
  readonly #token: TokenSource
  readonly #fetch: typeof fetch
  readonly #userAgent: string
  readonly #via: string | undefined

  constructor(options: HttpTransportOptions) {
    this.#baseUrl = options.baseUrl
    this.#token = options.token
    this.#fetch = options.fetch
    this.#userAgent = options.userAgent
    this.#via = options.via
  }

  /**
   * Resolves with the JSON body of a 2xx answer. Throws the gateway's refusal as a
   * `CountersignError`, `GatewayUnavailable` once retrying is pointless or the deadline is near,
   * and the signal's reason when it aborts.
   */
  async call(call: HttpCall, budget: CallBudget): Promise<unknown> {
    for (let retry = 0; ; retry += 1) {
      budget.signal?.throwIfAborted()
      // A long-poll may run past the deadline: the gateway holds it, so ending it early would
      // mistake a pending answer for an outage.
      const attemptTimeoutMs = call.attemptTimeoutMs ?? budget.deadline - Date.now()
      const attempt = await this.#attempt(call, budget.signal, attemptTimeoutMs)
      if (attempt.kind === 'answered') return attempt.body
      if (!mayRetry(attempt.delivery, call.idempotent) || isPermanentNetworkError(attempt.cause)) {
        throw new GatewayUnavailable(this.#baseUrl, attempt.cause)
      }
      const delay = backoffDelay(retry)
      if (delay >= budget.deadline - Date.now()) throw new GatewayUnavailable(this.#baseUrl, attempt.cause)
      budget.onRetry?.(attempt.cause)
      await sleep(delay, budget.signal)
    }
  }

  async #attempt(call: HttpCall, signal: AbortSignal | undefined, timeoutMs: number): Promise<Attempt> {
    const token = typeof this.#token === 'string' ? this.#token : await this.#token()
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: `Bearer ${token}`,
      'user-agent': this.#userAgent,
    }
    if (this.#via !== undefined) headers['x-countersign-via'] = this.#via
    if (call.body !== undefined) headers['content-type'] = 'application/json'
    const timeout = AbortSignal.timeout(Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(timeoutMs))))
    let status: number
    let text: string
    try {
      const response = await this.#fetch(`${this.#baseUrl}${call.path}`, {
        method: call.method,
        headers,
        ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      })
      status = response.status
      text = await response.text()
    } catch (error) {
      // The caller's abort is not an outage: it ends the call with the caller's own reason.
      if (signal?.aborted) throw signal.reason
      return { kind: 'unreachable', cause: error, delivery: deliveryOfNetworkError(error) }
    }
    const body = parseJson(text)
    if (status >= 200 && status < 300) {
      if (body === undefined) {
        throw new CountersignError('unexpected_response', `The gateway answered HTTP ${status} without a JSON body`, {
          status,
        })
      }
      return { kind: 'answered', body }
    }
    const error = errorFromResponse(status, body)
    const delivery = deliveryOfStatus(status)
    if (delivery === undefined) throw error
    return { kind: 'unreachable', cause: error, delivery }
  }
}
