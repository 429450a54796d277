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
  describe.skipIf(backend.skip)(`grant expiry on ${backend.name}`, () => {
    let gw: TestGateway
    // A clock the test moves, so expiry needs no sleeping.
    let offsetMs = 0

    beforeAll(async () => {
      gw = await startTestGateway({ backend: backend.name, policy: POLICY, keys: PEOPLE, hooks: { now: () => Date.now() + offsetMs } })
    })

    afterAll(async () => {
      await gw?.close()
    })

    it('refuses an expired grant with grant_expired, audits the refusal and leaves the grant unredeemed', async () => {
      const created = await call(gw.url, gw.tokens.agent, 'POST', '/v1/requests', {
        action: 'cloud.tags.set', resource: 'arn:aws:ec2:eu-west-1:1:instance/i-9', environment: 'prod', params: { team: 'data' },
      })
      expect(created.body.status).toBe('approved')
      const head = await gw.auditHead()
      offsetMs = 6 * 60_000
      const late = await call(gw.url, gw.tokens.agent, 'POST', '/v1/grants/redeem', { token: created.body.grant.token, digest: created.body.digest })
      expect([late.status, late.body.error.code]).toEqual([410, 'grant_expired'])
      const entries = await gw.auditSince(head)
      expect(entries.filter((e) => e.requestId === created.body.id).map((e) => [e.type, e.data.code])).toContainEqual(['grant.refused', 'grant_expired'])
      expect(entries.some((e) => e.type === 'grant.redeemed')).toBe(false)
    })
  })
}
