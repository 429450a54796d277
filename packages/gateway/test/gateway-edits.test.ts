import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { call, castVote } from './support/gateway-process.js'
import { BACKENDS, startTestGateway, type TestGateway } from './support/test-gateway.js'

const POLICY = `version: 1
defaults: { effect: deny }
groups:
  ops: [olga@example.com, otto@example.com]
  sre: [sara@example.com]
rules:
  - name: deploys-need-ops
    match: { action: "deploy.*" }
    effect: review
    review: { approvers: ["group:ops"], allow_edit: true }
  - name: never-deploy-latest
    match: { action: "deploy.*" }
    when: 'has(request.params.image) && request.params.image.endsWith(":latest")'
    effect: deny
  - name: big-deploys-need-sre
    match: { action: "deploy.*" }
    when: 'has(request.params.replicas) && request.params.replicas > 10'
    effect: review
    review: { approvers: ["group:sre"], require_reason: true, allow_edit: true }
  - name: huge-deploys-are-not-edited
    match: { action: "deploy.*" }
    when: 'has(request.params.replicas) && request.params.replicas > 100'
    effect: review
    review: { approvers: ["group:sre"] }
`

const KEYS = {
  agent: { kind: 'agent', id: 'deploy-bot' },
  olga: { kind: 'human', id: 'olga@example.com', email: 'olga@example.com' },
  otto: { kind: 'human', id: 'otto@example.com', email: 'otto@example.com' },
  sara: { kind: 'human', id: 'sara@example.com', email: 'sara@example.com' },
  eve: { kind: 'human', id: 'eve@example.com', email: 'eve@example.com' },
} as const

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip)(`edits judged by the policy on ${backend.name}`, () => {
    let gw: TestGateway

    beforeAll(async () => {
      gw = await startTestGateway({ backend: backend.name, policy: POLICY, keys: KEYS })
    })

    afterAll(async () => {
      await gw?.close()
    })

    const submit = (params: Record<string, unknown>) =>
      call(gw.url, gw.tokens.agent, 'POST', '/v1/requests', { action: 'deploy.web', resource: 'k8s://prod/web', environment: 'prod', params })
    const vote = (id: string, who: keyof typeof KEYS, body: Record<string, unknown>) =>
      castVote(gw.url, gw.tokens[who], id, body)
    const get = async (id: string) => (await call(gw.url, gw.tokens.olga, 'GET', `/v1/requests/${id}`)).body

    it('refuses an edit into an action the policy denies, with edit_denied_by_policy, and changes nothing', async () => {
      const created = await submit({ image: 'web:1.2.3' })
      const id = created.body.id
      const head = await gw.auditHead()
      const edit = await vote(id, 'olga', { decision: 'approve', params: { image: 'web:latest' } })
      expect([edit.status, edit.body.error.code]).toEqual([403, 'edit_denied_by_policy'])
      expect(edit.body.error.message).toContain('never-deploy-latest')
      const after = await get(id)
      expect([after.status, after.version, after.votes, after.digest]).toEqual(['pending', 1, [], created.body.digest])
      expect((await gw.auditSince(head)).map((entry) => entry.type)).toEqual(['vote.refused'])
    })

    it('adds the requirements the edited params call for, so an edit cannot skip a reviewer', async () => {
      const created = await submit({ image: 'web:1.2.3', replicas: 3 })
      const id = created.body.id
      expect(created.body.review.requirements.map((r: { rule: string }) => r.rule)).toEqual(['deploys-need-ops'])
      const edited = await vote(id, 'olga', { decision: 'approve', reason: 'scale for the launch', params: { image: 'web:1.2.3', replicas: 50 } })
      expect(edited.status, JSON.stringify(edited.body)).toBe(200)
      expect(edited.body.status).toBe('pending')
      expect(edited.body.review.requirements.map((r: { rule: string }) => r.rule)).toEqual(['deploys-need-ops', 'big-deploys-need-sre'])
      expect(edited.body.review.require_reason).toBe(true)
      const withoutReason = await vote(id, 'sara', { decision: 'approve' })
      expect([withoutReason.status, withoutReason.body.error.code]).toEqual([400, 'reason_required'])
      const sre = await vote(id, 'sara', { decision: 'approve', reason: 'capacity is there' })
      expect(sre.body.status).toBe('pending')
      const ops = await vote(id, 'otto', { decision: 'approve', reason: 'ops agrees' })
      expect(ops.body.status).toBe('approved')
      expect(ops.body.params).toEqual({ image: 'web:1.2.3', replicas: 50 })
    })

    it('asks the editor for what the stricter review needs before counting the edit', async () => {
      const created = await submit({ image: 'web:2.0.0', replicas: 2 })
      const id = created.body.id
      const edit = await vote(id, 'otto', { decision: 'approve', params: { image: 'web:2.0.0', replicas: 40 } })
      expect([edit.status, edit.body.error.code]).toEqual([400, 'reason_required'])
      expect((await get(id)).version).toBe(1)
    })

    it('refuses an edit into params whose rules forbid editing, with edit_not_allowed', async () => {
      const created = await submit({ image: 'web:4.0.0', replicas: 5 })
      const edit = await vote(created.body.id, 'olga', { decision: 'approve', reason: 'go big', params: { image: 'web:4.0.0', replicas: 500 } })
      expect([edit.status, edit.body.error.code]).toEqual([403, 'edit_not_allowed'])
      expect((await get(created.body.id)).version).toBe(1)
    })

    it('tells someone who may not review nothing about how the policy would judge their edit', async () => {
      const created = await submit({ image: 'web:3.0.0' })
      const edit = await vote(created.body.id, 'eve', { decision: 'approve', params: { image: 'web:latest' } })
      expect([edit.status, edit.body.error.code]).toEqual([403, 'not_an_approver'])
    })
  })
}
