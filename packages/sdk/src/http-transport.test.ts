import { describe, expect, it } from 'vitest'
import { deliveryOfNetworkError, deliveryOfStatus, mayRetry } from './http-transport.js'

function fetchFailure(code: string): TypeError {
  const cause = Object.assign(new Error(`connect ${code} 127.0.0.1:8080`), { code })
  return new TypeError('fetch failed', { cause })
}

describe('deliveryOfStatus', () => {
  it('treats 503 as not delivered: nothing was committed', () => {
    expect(deliveryOfStatus(503)).toBe('not_delivered')
  })

  it('treats 502 and 504 as unknown: a proxy may have forwarded the call', () => {
    expect(deliveryOfStatus(502)).toBe('unknown')
    expect(deliveryOfStatus(504)).toBe('unknown')
  })

  it('does not treat refusals or internal errors as outages', () => {
    for (const status of [400, 401, 403, 404, 409, 410, 413, 500]) expect(deliveryOfStatus(status)).toBeUndefined()
  })
})

describe('deliveryOfNetworkError', () => {
  it('knows a refused connection never reached the gateway', () => {
    expect(deliveryOfNetworkError(fetchFailure('ECONNREFUSED'))).toBe('not_delivered')
  })

  it('knows an unresolvable host never reached the gateway', () => {
    expect(deliveryOfNetworkError(fetchFailure('ENOTFOUND'))).toBe('not_delivered')
  })

  it('finds the refusal inside the AggregateError of a happy-eyeballs connect', () => {
    const aggregate = new AggregateError([
      Object.assign(new Error('connect ECONNREFUSED ::1:8080'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8080'), { code: 'ECONNREFUSED' }),
    ])
    expect(deliveryOfNetworkError(new TypeError('fetch failed', { cause: aggregate }))).toBe('not_delivered')
  })

  it('cannot know whether a reset connection delivered the call', () => {
    expect(deliveryOfNetworkError(fetchFailure('ECONNRESET'))).toBe('unknown')
    expect(deliveryOfNetworkError(fetchFailure('UND_ERR_SOCKET'))).toBe('unknown')
  })

  it('cannot know whether a timed-out call was delivered', () => {
    expect(deliveryOfNetworkError(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))).toBe(
      'unknown',
    )
  })
})

describe('mayRetry', () => {
  it('retries idempotent calls after any outage', () => {
    expect(mayRetry('unknown', true)).toBe(true)
    expect(mayRetry('not_delivered', true)).toBe(true)
  })

  it('retries votes, redemptions and results only when they certainly did not arrive', () => {
    expect(mayRetry('not_delivered', false)).toBe(true)
    expect(mayRetry('unknown', false)).toBe(false)
  })
})
