import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { call, castVote } from './support/gateway-process.js'
import { BACKENDS, PEOPLE, startTestGateway, type TestGateway } from './support/test-gateway.js'

// Short real timeouts instead of a fake clock: the scheduler under test is the gateway's own.
const POLICY = `version: 1
defaults:
  effect: deny
groups:
  owners: [dana@example.com, omar@example.com]
  security: [sofia@example.com]
rules:
  - name: expires-quickly
    match: { action: job.expire }
    effect: review
    review: { approvers: ["group:owners"], timeout: 2s, on_timeout: expire }
  - name: denied-quickly
    match: { action: job.deny }
    effect: review
    review: { approvers: ["group:owners"], timeout: 2s, on_timeout: deny }
  - name: escalates-quickly
    match: { action: job.escalate }
    effect: review
    review: { approvers: ["group:owners"], timeout: 1m, escalate: { after: 1s, to: ["group:security"] } }
`

const JOB = { resource: 'batch://nightly', environment: 'prod' }

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip)(`review deadlines on ${backend.name}`, () => {
    let gw: TestGateway
    const token = (name: keyof typeof PEOPLE): string => gw.tokens[name] ?? ''

    beforeAll(async () => {
      gw = await startTestGateway({ backend: backend.name, policy: POLICY, keys: PEOPLE })
    })

    afterAll(async () => {
      await gw?.close()
    })

    const submit = (action: string, params: Record<string, unknown>) =>
      call(gw.url, token('agent'), 'POST', '/v1/requests', { ...JOB, action, params })
    const get = async (id: string) => (await call(gw.url, token('dana'), 'GET', `/v1/requests/${id}`)).body
    const wait = (id: string, seconds: number) => call(gw.url, token('agent'), 'GET', `/v1/requests/${id}/wait?timeout=${seconds}`)
    const auditTypesOf = async (id: string): Promise<string[]> =>
      (await gw.auditSince()).filter((entry) => entry.requestId === id).map((entry) => entry.type)

    it('expires an unreviewed request at its deadline, wakes the waiting client, and audits it once across a restart', async () => {
      const expiring = await submit('job.expire', { run: 'while-up' })
      const denying = await submit('job.deny', { run: 'while-up' })
      expect([expiring.body.status, denying.body.status]).toEqual(['pending', 'pending'])
      const started = performance.now()

      const [expired, denied] = await Promise.all([wait(expiring.body.id, 10), wait(denying.body.id, 10)])
      expect([expired.status, expired.body.status]).toEqual([200, 'expired'])
      expect([denied.status, denied.body.status]).toEqual([200, 'denied'])
      expect(performance.now() - started).toBeLessThan(5000)
      expect([expired.body.votes, expired.body.grant, denied.body.votes, denied.body.grant]).toEqual([[], null, [], null])

      // A request whose deadline passes while the gateway is down is expired by the next start.
      const overdue = await submit('job.expire', { run: 'while-down' })
      await gw.restart(2100)
      expect((await wait(overdue.body.id, 5)).body.status).toBe('expired')

      expect(await auditTypesOf(expiring.body.id)).toEqual(['request.created', 'request.expired'])
      expect(await auditTypesOf(denying.body.id)).toEqual(['request.created', 'request.denied'])
      expect(await auditTypesOf(overdue.body.id)).toEqual(['request.created', 'request.expired'])
      const expiry = (await gw.auditSince()).find((entry) => entry.requestId === denying.body.id && entry.type === 'request.denied')
      expect(expiry?.data).toMatchObject({ cause: 'timeout' })
    })

    it('lets an escalation approver vote only after the request escalates', async () => {
      const created = await submit('job.escalate', { run: 'escalation' })
      const id = created.body.id
      expect(created.body.review.escalated).toBe(false)

      const early = await castVote(gw.url, token('sofia'), id, { decision: 'approve', reason: 'on call' })
      expect([early.status, early.body.error.code]).toEqual([403, 'not_an_approver'])
      const before = await get(id)
      expect([before.status, before.votes, before.review.escalated]).toEqual(['pending', [], false])

      // The long-poll answers at the next change of the request, which is the escalation.
      const escalated = await wait(id, 5)
      expect([escalated.body.status, escalated.body.review.escalated]).toEqual(['pending', true])

      const late = await castVote(gw.url, token('sofia'), id, { decision: 'approve', reason: 'on call' })
      expect(late.status).toBe(200)
      expect(late.body.status).toBe('approved')
      expect(late.body.votes).toEqual([expect.objectContaining({ voter_id: 'sofia@example.com', decision: 'approve' })])
      expect(await auditTypesOf(id)).toEqual([
        'request.created', 'vote.refused', 'request.escalated', 'vote.cast', 'request.approved', 'grant.issued',
      ])
    })
  })
}
