import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { call } from './support/gateway-process.js'
import { OWNERS_REVIEW_EXPORTS } from './support/policies.js'
import { BACKENDS, PEOPLE, startTestGateway, type TestGateway } from './support/test-gateway.js'

const POLICY = OWNERS_REVIEW_EXPORTS

/** Sends raw bytes as an application/json body. */
async function send(url: string, token: string | undefined, path: string, body: string | Uint8Array): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any -- error bodies are inspected freely
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token ?? ''}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : new Uint8Array(body),
  })
  return { status: response.status, body: await response.json() }
}

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip)(`one body, one meaning on ${backend.name}`, () => {
    let gw: TestGateway
    let pendingId = ''

    beforeAll(async () => {
      gw = await startTestGateway({ backend: backend.name, policy: POLICY, keys: PEOPLE })
      const created = await call(gw.url, gw.tokens.agent, 'POST', '/v1/requests', { action: 'db.export', resource: 'orders', environment: 'prod', params: {} })
      pendingId = created.body.id
    })

    afterAll(async () => {
      await gw?.close()
    })

    /** Sends `body`, expects a 400 invalid_request with `reason`, and checks that the audit log did not move. */
    async function expectRefused(path: string, body: string | Uint8Array, reason: string, message: string): Promise<void> {
      const head = await gw.auditHead()
      const response = await send(gw.url, gw.tokens.agent, path, body)
      expect(response.status).toBe(400)
      expect(response.body.error.code).toBe('invalid_request')
      expect(response.body.error.details.reason).toBe(reason)
      expect(response.body.error.message).toBe(message)
      expect(await gw.auditHead()).toBe(head)
    }

    it('refuses a body that names the action twice, and files nothing', async () => {
      await expectRefused(
        '/v1/requests',
        '{"action":"db.drop","action":"cloud.tags.set","resource":"r","environment":"prod"}',
        'duplicate_key',
        'The body has the key "action" twice at $ (position 20); I-JSON allows each key once per object; send it once.',
      )
      const listed = await call(gw.url, gw.tokens.agent, 'GET', '/v1/requests?mine=true')
      expect(listed.body.items.map((item: { id: string }) => item.id)).toEqual([pendingId])
    })

    it('refuses a duplicate key deep inside params, even when one of them is escaped', async () => {
      await expectRefused(
        '/v1/requests',
        '{"action":"cloud.tags.set","resource":"r","environment":"prod","params":{"tags":[{"env":"dev","\\u0065nv":"prod"}]}}',
        'duplicate_key',
        'The body has the key "env" twice at $.params.tags[0] (position 94); I-JSON allows each key once per object; send it once.',
      )
    })

    it('refuses a vote that says both deny and approve, and counts no vote', async () => {
      const head = await gw.auditHead()
      const response = await send(gw.url, gw.tokens.dana, `/v1/requests/${pendingId}/votes`, '{"decision":"deny","decision":"approve"}')
      expect([response.status, response.body.error.code, response.body.error.details.reason]).toEqual([400, 'invalid_request', 'duplicate_key'])
      const view = await call(gw.url, gw.tokens.dana, 'GET', `/v1/requests/${pendingId}`)
      expect([view.body.status, view.body.votes]).toEqual(['pending', []])
      expect(await gw.auditHead()).toBe(head)
    })

    it.each([['9007199254740993.0'], ['9.007199254740993e15'], ['90071992547409930e-1'], ['9007199254740993']])(
      'refuses the amount %s instead of rounding it to 9007199254740992',
      async (amount) => {
        await expectRefused(
          '/v1/requests',
          `{"action":"cloud.tags.set","resource":"r","environment":"prod","params":{"amount":${amount}}}`,
          'inexact_number',
          `The body has the number ${amount}, which a double cannot hold exactly (it would be read as 9007199254740992) at $.params.amount (position 82); send it as a string, or with at most the precision of a double.`,
        )
      },
    )

    it('refuses invalid UTF-8 rather than reading two byte strings as one resource', async () => {
      for (const bad of [0xff, 0xfe]) {
        const body = Buffer.concat([
          Buffer.from('{"action":"cloud.tags.set","resource":"caf'),
          Uint8Array.of(bad),
          Buffer.from('","environment":"prod"}'),
        ])
        await expectRefused(
          '/v1/requests',
          body,
          'invalid_utf8',
          `The body is not valid UTF-8: the byte at offset 42 (0x${bad.toString(16)}) is not part of a well-formed character; send the body as UTF-8 text.`,
        )
      }
      const listed = await call(gw.url, gw.tokens.agent, 'GET', '/v1/requests?mine=true')
      expect(listed.body.items).toHaveLength(1)
    })

    it('still takes the same body written without duplicates, with exact numbers and in UTF-8', async () => {
      const body = Buffer.from('{"action":"cloud.tags.set","resource":"café","environment":"prod","params":{"amount":9007199254740991,"ratio":0.1,"big":1.5e300}}')
      const response = await send(gw.url, gw.tokens.agent, '/v1/requests', body)
      expect([response.status, response.body.status, response.body.resource]).toEqual([201, 'approved', 'café'])
      expect(response.body.params).toEqual({ amount: 9007199254740991, ratio: 0.1, big: 1.5e300 })
    })
  })
}
