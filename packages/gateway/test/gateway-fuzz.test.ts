import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { call, castVote } from './support/gateway-process.js'
import { OWNERS_REVIEW_EXPORTS } from './support/policies.js'
import { BACKENDS, PEOPLE, startTestGateway, type TestGateway } from './support/test-gateway.js'

const POLICY = OWNERS_REVIEW_EXPORTS

/** Any JSON, with the strings and numbers most likely to upset a database or a parser. */
const nasty = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom('\u0000', 'a\u0000b', '\ud800', '💥', 'x'.repeat(5000), '', ' ', '../../etc/passwd', "'; drop table requests; --"),
  fc.constantFrom(1e308, -1e308, 2 ** 63, -(2 ** 63), 0.1, -0, Number.MAX_SAFE_INTEGER + 2),
)
const body = fc.oneof(
  fc.dictionary(fc.constantFrom('action', 'resource', 'environment', 'params', 'reason', 'context', 'bind', 'idempotency_key', 'decision', 'token', 'digest', 'outcome', 'exit_code', 'detail', 'kind', 'id', 'groups'), nasty),
  fc.record({
    action: fc.oneof(fc.constant('cloud.tags.set'), fc.constant('db.export'), fc.string()),
    resource: fc.oneof(fc.string(), nasty),
    environment: fc.oneof(fc.string(), nasty),
    params: fc.oneof(fc.dictionary(fc.string(), nasty), nasty),
    reason: fc.oneof(fc.string(), nasty),
  }),
  nasty,
)

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip)(`arbitrary input on ${backend.name}`, () => {
    let gw: TestGateway
    let requestId = ''

    beforeAll(async () => {
      gw = await startTestGateway({ backend: backend.name, policy: POLICY, keys: PEOPLE })
      const created = await call(gw.url, gw.tokens.agent, 'POST', '/v1/requests', { action: 'db.export', resource: 'r', environment: 'prod', params: {} })
      requestId = created.body.id
    })

    afterAll(async () => {
      await gw?.close()
    })

    it('never answers a 5xx, whatever the body, path or token', async () => {
      const paths = ['/v1/requests', `/v1/requests/${requestId}/votes`, `/v1/requests/${requestId}/cancel`, `/v1/requests/${requestId}/result`, '/v1/grants/redeem', '/v1/keys']
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...paths),
          body,
          fc.constantFrom('agent', 'dana', 'omar', 'admin'),
          async (path, payload, who) => {
            const token = who === 'admin' ? gw.adminToken : gw.tokens[who]
            const response = await call(gw.url, token, 'POST', path, payload)
            expect(response.status, `${path} ${JSON.stringify(payload).slice(0, 200)} → ${JSON.stringify(response.body).slice(0, 300)}`).toBeLessThan(500)
            if (response.status >= 400) expect(typeof response.body.error.code).toBe('string')
          },
        ),
        { numRuns: 150 },
      )
    })

    it('refuses or stores NUL bytes and lone surrogates in every text field without a 5xx', async () => {
      for (const bad of ['a\u0000b', '\ud800', '\udfff x']) {
        const bodies = [
          { action: 'db.export', resource: bad, environment: 'prod', params: {} },
          { action: 'db.export', resource: 'r', environment: bad, params: {} },
          { action: 'db.export', resource: 'r', environment: 'prod', params: { [bad]: bad }, reason: bad, context: { note: bad } },
          { action: 'db.export', resource: 'r', environment: 'prod', params: {}, idempotency_key: bad },
        ]
        for (const payload of bodies) {
          const response = await call(gw.url, gw.tokens.agent, 'POST', '/v1/requests', payload)
          expect(response.status, `${JSON.stringify(payload)} → ${JSON.stringify(response.body)}`).toBeLessThan(500)
        }
        const vote = await castVote(gw.url, gw.tokens.dana, requestId, { decision: 'deny', reason: bad })
        expect(vote.status, JSON.stringify(vote.body)).toBeLessThan(500)
      }
    })

    it('refuses params, context and edits nested deeper than 32 levels with invalid_request', async () => {
      const nest = (levels: number): unknown => {
        let value: unknown = 'leaf'
        for (let i = 0; i < levels; i++) value = [value]
        return value
      }
      const before = (await call(gw.url, gw.tokens.dana, 'GET', '/v1/requests?limit=200')).body.items.length
      for (const levels of [33, 3000]) {
        for (const payload of [
          { action: 'db.export', resource: 'r', environment: 'prod', params: { a: nest(levels) } },
          { action: 'db.export', resource: 'r', environment: 'prod', params: {}, context: { a: nest(levels) } },
        ]) {
          const response = await call(gw.url, gw.tokens.agent, 'POST', '/v1/requests', payload)
          expect([response.status, response.body.error.code]).toEqual([400, 'invalid_request'])
        }
        const edit = await call(gw.url, gw.tokens.dana, 'POST', `/v1/requests/${requestId}/votes`, { decision: 'approve', digest: '0'.repeat(64), params: { a: nest(levels) } })
        expect([edit.status, edit.body.error.code]).toEqual([400, 'invalid_request'])
      }
      const within = await call(gw.url, gw.tokens.agent, 'POST', '/v1/requests', { action: 'cloud.tags.set', resource: 'r', environment: 'prod', params: { a: nest(30) } })
      expect(within.status).toBe(201)
      expect((await call(gw.url, gw.tokens.dana, 'GET', '/v1/requests?limit=200')).body.items.length).toBe(before + 1)
    })

    it('refuses integers too large to keep exactly, instead of rounding two actions into one digest', async () => {
      const raw = '{"action":"db.export","resource":"r","environment":"prod","params":{"amount":9007199254740993}}'
      const response = await call(gw.url, gw.tokens.agent, 'POST', '/v1/requests', raw, { 'content-type': 'application/json' })
      expect([response.status, response.body.error.code]).toEqual([400, 'invalid_request'])
      expect(response.body.error.message).toContain('9007199254740993')
      const fine = '{"action":"cloud.tags.set","resource":"r","environment":"prod","params":{"amount":9007199254740991,"ratio":1.5e300}}'
      expect((await call(gw.url, gw.tokens.agent, 'POST', '/v1/requests', fine, { 'content-type': 'application/json' })).status).toBe(201)
    })

    it('refuses query parameters a route does not take, and creates nothing', async () => {
      const before = (await call(gw.url, gw.tokens.dana, 'GET', '/v1/requests?limit=200')).body.items.length
      const dryRun = await call(gw.url, gw.tokens.agent, 'POST', '/v1/requests?dry_run=true', { action: 'cloud.tags.set', resource: 'q', environment: 'prod', params: {} })
      expect([dryRun.status, dryRun.body.error.code]).toEqual([400, 'invalid_request'])
      const bogus = await call(gw.url, gw.tokens.dana, 'GET', `/v1/requests/${requestId}?bogus=1`)
      expect([bogus.status, bogus.body.error.code]).toEqual([400, 'invalid_request'])
      expect((await call(gw.url, gw.tokens.dana, 'GET', '/v1/requests?limit=200')).body.items.length).toBe(before)
    })

    it('answers a malformed URL and a forged cursor with invalid_request in the usual shape', async () => {
      const badUrl = await call(gw.url, gw.tokens.dana, 'GET', '/v1/requests/%ff')
      expect([badUrl.status, badUrl.body.error.code]).toEqual([400, 'invalid_request'])
      for (const c of [1.5, 1e19, -1e308]) {
        const cursor = Buffer.from(JSON.stringify({ c, i: 'x' })).toString('base64url')
        const listing = await call(gw.url, gw.tokens.dana, 'GET', `/v1/requests?cursor=${cursor}`)
        expect([listing.status, listing.body.error.code]).toEqual([400, 'invalid_request'])
      }
    })

    it('answers not_found to an agent acting on a request it may not see, and audits nothing', async () => {
      const head = await gw.auditHead()
      for (const [path, body] of [
        [`/v1/requests/${requestId}/votes`, { decision: 'deny', digest: '0'.repeat(64) }],
        [`/v1/requests/${requestId}/cancel`, {}],
        [`/v1/requests/${requestId}/result`, { outcome: 'succeeded' }],
      ] as const) {
        const response = await call(gw.url, gw.tokens.otherAgent, 'POST', path, body)
        expect([response.status, response.body.error.code]).toEqual([404, 'not_found'])
      }
      expect(await gw.auditSince(head)).toEqual([])
    })

    it('makes one request of ten identical submissions sent at once', async () => {
      const body = { action: 'db.export', resource: 'pg://prod/orders', environment: 'prod', params: { table: 'orders', at: 'once' } }
      const responses = await Promise.all(Array.from({ length: 10 }, () => call(gw.url, gw.tokens.agent, 'POST', '/v1/requests', body)))
      expect(new Set(responses.map((r) => r.body.id)).size).toBe(1)
      expect(responses.filter((r) => r.status === 201)).toHaveLength(1)
    })

    it('never answers a 5xx for odd paths, ids and query strings', async () => {
      await fc.assert(
        fc.asyncProperty(fc.string(), fc.string(), async (id, query) => {
          const path = `/v1/requests/${encodeURIComponent(id)}/wait?timeout=${encodeURIComponent(query)}`
          const response = await call(gw.url, gw.tokens.dana, 'GET', path)
          expect(response.status, `${path} → ${JSON.stringify(response.body).slice(0, 300)}`).toBeLessThan(500)
          const listing = await call(gw.url, gw.tokens.dana, 'GET', `/v1/requests?status=${encodeURIComponent(id)}&cursor=${encodeURIComponent(query)}`)
          expect(listing.status).toBeLessThan(500)
        }),
        { numRuns: 100 },
      )
    })
  })
}
