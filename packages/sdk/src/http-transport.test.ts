import { describe, expect, it } from 'vitest'
import { GatewayUnavailable } from './errors.js'
import { deliveryOfNetworkError, deliveryOfStatus, HttpTransport, isPermanentNetworkError, mayRetry } from './http-transport.js'

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

describe('isPermanentNetworkError', () => {
  it('knows that a refused certificate or TLS handshake will not heal by retrying', () => {
    for (const code of ['DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_WRONG_VERSION_NUMBER', 'EPROTO']) {
      expect(isPermanentNetworkError(fetchFailure(code)), code).toBe(true)
    }
  })

  it('keeps retrying refused connections and unknown hosts, which a restart or a DNS blip explains', () => {
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET']) expect(isPermanentNetworkError(fetchFailure(code)), code).toBe(false)
  })
})

describe('HttpTransport', () => {
  it('fails at once on a certificate failure instead of retrying until the deadline', async () => {
    let attempts = 0
    const transport = new HttpTransport({
      baseUrl: 'https://countersign.example.com',
      token: 'cs_x',
      userAgent: 'test',
      fetch: () => {
        attempts += 1
        return Promise.reject(fetchFailure('DEPTH_ZERO_SELF_SIGNED_CERT'))
      },
    })
    const error = await transport.call({ method: 'GET', path: '/v1/requests', idempotent: true }, { deadline: Date.now() + 60_000 }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(GatewayUnavailable)
    expect(attempts).toBe(1)
  })

  it('sends the declared channel as x-countersign-via and tells the caller about each retry', async () => {
    const seen: Array<string | null> = []
    const retries: unknown[] = []
    const transport = new HttpTransport({
      baseUrl: 'http://127.0.0.1:1',
      token: 'cs_x',
      userAgent: 'test',
      via: 'cli',
      fetch: (_input, init) => {
        seen.push(new Headers(init?.headers).get('x-countersign-via'))
        if (seen.length === 1) return Promise.reject(fetchFailure('ECONNREFUSED'))
        return Promise.resolve(new Response('{"ok":true}', { status: 200 }))
      },
    })
    const body = await transport.call({ method: 'GET', path: '/v1/requests', idempotent: true }, { deadline: Date.now() + 60_000, onRetry: (cause) => retries.push(cause) })
    expect(body).toEqual({ ok: true })
    expect(seen).toEqual(['cli', 'cli'])
    expect(retries).toHaveLength(1)
  })
})
