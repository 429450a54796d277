import { Countersign, CountersignError } from '@countersign/sdk'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { call, runCli } from './support/gateway-process.js'
import { BACKENDS, startTestGateway, type TestGateway } from './support/test-gateway.js'

/*
 * A vote names the digest of the version its voter saw, and counts only on
 * that version. Checked over HTTP, through the SDK and the CLI, and under a
 * race between an approval and another reviewer's edit.
 */

const POLICY = `version: 1
defaults: { effect: deny }
groups:
  owners: [dana@example.com, omar@example.com]
rules:
  - name: exports-need-an-owner
    match: { action: db.export }
    effect: review
    review: { approvers: ["group:owners"], quorum: 1, allow_edit: true }
`

const KEYS = {
  agent: { kind: 'agent', id: 'etl-bot' },
  dana: { kind: 'human', id: 'dana@example.com', email: 'dana@example.com', groups: ['owners'] },
  omar: { kind: 'human', id: 'omar@example.com', email: 'omar@example.com', groups: ['owners'] },
} as const

const EXPORT = { action: 'db.export', resource: 'pg://prod/customers', environment: 'prod' }
const RACE_ROUNDS = 30

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip)(`votes name their digest on ${backend.name}`, () => {
    let gw: TestGateway

    beforeAll(async () => {
      gw = await startTestGateway({ backend: backend.name, policy: POLICY, keys: KEYS })
    })

    afterAll(async () => {
      await gw?.close()
    })

    let next = 0
    const submit = async () => {
      next += 1
      const created = await call(gw.url, gw.tokens.agent, 'POST', '/v1/requests', { ...EXPORT, params: { table: 'customers', round: next } })
      expect(created.status, JSON.stringify(created.body)).toBe(201)
      return created.body as { id: string; digest: string }
    }
    const vote = (id: string, who: 'dana' | 'omar', body: Record<string, unknown>) =>
      call(gw.url, gw.tokens[who], 'POST', `/v1/requests/${id}/votes`, body)
    const get = async (id: string) => (await call(gw.url, gw.tokens.agent, 'GET', `/v1/requests/${id}`)).body

    it('refuses a vote without a digest with invalid_request naming the field, and counts nothing', async () => {
      const request = await submit()
      const refused = await vote(request.id, 'dana', { decision: 'approve' })
      expect([refused.status, refused.body.error.code]).toEqual([400, 'invalid_request'])
      expect(refused.body.error.message).toContain('digest')
      expect((await get(request.id)).votes).toEqual([])
    })

    it('refuses a vote naming a version that was edited since with version_mismatch, and counts nothing', async () => {
      const request = await submit()
      const edit = await vote(request.id, 'omar', { decision: 'approve', digest: request.digest, params: { table: 'customers', limit: 10 } })
      expect([edit.status, edit.body.version]).toEqual([200, 2])
      const head = await gw.auditHead()
      const stale = await vote(request.id, 'dana', { decision: 'approve', digest: request.digest, reason: 'the full export' })
      expect([stale.status, stale.body.error.code]).toEqual([409, 'version_mismatch'])
      expect(stale.body.error.message).toBe(
        `The vote names version 1, but the request is now at version 2 (digest ${edit.body.digest}); read it again and vote on what it says now.`,
      )
      expect(stale.body.error.details).toEqual({ digest: request.digest, current_version: 2, current_digest: edit.body.digest })
      const after = await get(request.id)
      expect([after.status, after.grant, after.votes.map((v: { voter_id: string }) => v.voter_id)]).toEqual(['pending', null, ['omar@example.com']])
      expect((await gw.auditSince(head)).map((entry) => [entry.type, entry.data.code])).toEqual([['vote.refused', 'version_mismatch']])
    })

    it('refuses a vote naming a digest of no version of the request with version_mismatch', async () => {
      const request = await submit()
      const unknown = await vote(request.id, 'dana', { decision: 'deny', digest: 'f'.repeat(64), reason: 'no' })
      expect([unknown.status, unknown.body.error.code]).toEqual([409, 'version_mismatch'])
      expect(unknown.body.error.message).toMatch(/^The digest names no version of this request, but the request is now at version 1/)
      expect((await get(request.id)).status).toBe('pending')
    })

    it(`never counts an approval on a version it did not name while an edit races it (${RACE_ROUNDS} rounds)`, async () => {
      const outcomes = { countedOnItsVersion: 0, versionMismatch: 0 }
      for (let round = 0; round < RACE_ROUNDS; round++) {
        const request = await submit()
        const approve = () => vote(request.id, 'dana', { decision: 'approve', digest: request.digest, reason: 'as submitted' })
        const editIt = () => vote(request.id, 'omar', { decision: 'approve', digest: request.digest, reason: 'smaller', params: { table: 'customers', limit: round } })
        // Which call leaves first alternates, so both orders of arrival are raced.
        const [approval, edit] = round % 2 === 0
          ? await Promise.all([approve(), editIt()])
          : await Promise.all([editIt(), approve()]).then(([e, a]) => [a, e] as const)
        const after = await get(request.id)
        const danaVotes = after.votes.filter((v: { voter_id: string }) => v.voter_id === 'dana@example.com')
        if (approval.status === 200) {
          // Counted: on version 1, whose digest it named, and the edit came too late.
          expect(danaVotes.map((v: { version: number }) => v.version)).toEqual([1])
          expect([after.status, after.version, after.grant.digest]).toEqual(['approved', 1, request.digest])
          expect([edit.status, edit.body.error.code]).toEqual([409, 'request_not_pending'])
          outcomes.countedOnItsVersion += 1
        } else {
          // Refused: the edit landed first, and the approval counts nothing anywhere.
          expect([approval.status, approval.body.error.code]).toEqual([409, 'version_mismatch'])
          expect(danaVotes).toEqual([])
          expect([edit.status, after.status, after.version, after.grant]).toEqual([200, 'pending', 2, null])
          outcomes.versionMismatch += 1
        }
      }
      expect(outcomes.countedOnItsVersion + outcomes.versionMismatch).toBe(RACE_ROUNDS)
      console.info(`${backend.name}: approval vs edit race over ${RACE_ROUNDS} rounds:`, outcomes)
    })

    it('sends the digest from the SDK, and reports a stale one as version_mismatch', async () => {
      const cs = new Countersign({ url: gw.url, token: gw.tokens.dana ?? '' })
      const request = await submit()
      await expect(cs.vote(request.id, { decision: 'approve' } as Parameters<Countersign['vote']>[1])).rejects.toThrow(
        new TypeError("digest must be the digest of the version you read (the request's `digest`, 64 lowercase hex digits)"),
      )
      const read = await cs.get(request.id)
      await vote(request.id, 'omar', { decision: 'approve', digest: read.digest, params: { table: 'customers', limit: 5 } })
      const stale = await cs.vote(request.id, { decision: 'approve', digest: read.digest }).catch((error: unknown) => error)
      expect(stale).toBeInstanceOf(CountersignError)
      expect((stale as CountersignError).code).toBe('version_mismatch')
      const current = await cs.get(request.id)
      const counted = await cs.vote(request.id, { decision: 'approve', digest: current.digest, reason: 'the smaller one' })
      expect([counted.status, counted.version]).toEqual(['approved', 2])
    })

    it('has the CLI approve the version it read, say which, and pin one with --digest', async () => {
      const env = { COUNTERSIGN_URL: gw.url, COUNTERSIGN_TOKEN: gw.tokens.dana ?? '' }
      const first = await submit()
      const approved = await runCli(['approve', first.id, '--reason', 'ok', '--json'], env)
      expect(approved.code, approved.stderr).toBe(0)
      expect(approved.stderr).toContain(`voting on version 1 of ${first.id} (digest ${first.digest})`)
      expect(JSON.parse(approved.stdout)).toMatchObject({ id: first.id, status: 'approved' })

      const second = await submit()
      await vote(second.id, 'omar', { decision: 'approve', digest: second.digest, params: { table: 'customers', limit: 1 } })
      const pinned = await runCli(['deny', second.id, '--reason', 'no', '--digest', second.digest], env)
      expect(pinned.code).toBe(1)
      expect(pinned.stderr).toContain('(version_mismatch)')
      expect((await get(second.id)).votes.map((v: { voter_id: string }) => v.voter_id)).toEqual(['omar@example.com'])

      const malformed = await runCli(['approve', second.id, '--digest', 'abc'], env)
      expect(malformed.code).toBe(2)
      expect(malformed.stderr).toContain('--digest must be 64 lowercase hex digits')
    })
  })
}
