import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { call } from './support/gateway-process.js'
import { BACKENDS, PEOPLE, startTestGateway, type TestGateway } from './support/test-gateway.js'

const POLICY = `version: 1
defaults: { effect: deny }
groups:
  owners: [dana@example.com, omar@example.com]
rules:
  - name: tags-are-free
    match: { action: "cloud.tags.*" }
    effect: allow
  - name: exports-need-an-owner
    match: { action: db.export }
    effect: review
    review: { approvers: ["group:owners"], allow_edit: true }
`

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
        const vote = await call(gw.url, gw.tokens.dana, 'POST', `/v1/requests/${requestId}/votes`, { decision: 'deny', reason: bad })
        expect(vote.status, JSON.stringify(vote.body)).toBeLessThan(500)
      }
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
