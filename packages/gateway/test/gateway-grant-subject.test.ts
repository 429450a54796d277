import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { call } from './support/gateway-process.js'
import { BACKENDS, PEOPLE, startTestGateway, type TestGateway } from './support/test-gateway.js'

const POLICY = `version: 1
defaults: { effect: deny }
rules:
  - name: tags-are-free
    match: { action: "cloud.tags.*" }
    effect: allow
`

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip)(`grant redemption by its subject on ${backend.name}`, () => {
    let gw: TestGateway

    beforeAll(async () => {
      gw = await startTestGateway({ backend: backend.name, policy: POLICY, keys: PEOPLE })
    })

    afterAll(async () => {
      await gw?.close()
    })

    it('refuses a stolen grant token as not_found for a human and another agent, audits both, and leaves it for its subject', async () => {
      const created = await call(gw.url, gw.tokens.agent, 'POST', '/v1/requests', {
        action: 'cloud.tags.set', resource: 'arn:aws:ec2:eu-west-1:1:instance/i-9', environment: 'prod', params: { team: 'data' },
      })
      expect(created.body.status).toBe('approved')
      const stolen = { token: created.body.grant.token, digest: created.body.digest }
      const head = await gw.auditHead()

      for (const thief of ['dana', 'otherAgent']) {
        const attempt = await call(gw.url, gw.tokens[thief], 'POST', '/v1/grants/redeem', stolen)
        expect(attempt.status).toBe(404)
        expect(attempt.body.error).toEqual({
          code: 'not_found',
          message: 'No grant that you may redeem; a grant is redeemed by the principal it was issued to.',
          details: {},
        })
      }
      const refusals = (await gw.auditSince(head)).map((e) => [e.type, e.requestId, e.actor.id, e.data.code])
      expect(refusals).toEqual([
        ['grant.refused', created.body.id, 'dana@example.com', 'not_found'],
        ['grant.refused', created.body.id, 'report-bot', 'not_found'],
      ])
      const afterTheft = await call(gw.url, gw.tokens.agent, 'GET', `/v1/requests/${created.body.id}`)
      expect(afterTheft.body.grant.status).toBe('issued')

      const redeemed = await call(gw.url, gw.tokens.agent, 'POST', '/v1/grants/redeem', stolen)
      expect([redeemed.status, redeemed.body.request_id, redeemed.body.params]).toEqual([200, created.body.id, { team: 'data' }])
    })
  })
}
