import { existsSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Countersign } from '@countersign/sdk'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { call, freePort, type GatewayProcess, REPO_ROOT, runCli, spawnCli, startGatewayProcess, castVote } from './support/gateway-process.js'
import { postgresForTests } from './support/postgres.js'

const postgres = await postgresForTests()

const BACKENDS = [
  { name: 'sqlite', skip: false },
  { name: 'postgres', skip: postgres.skip },
] as const

const EXPORT = {
  action: 'db.export',
  resource: 'pg://prod/customers',
  environment: 'prod',
  reason: 'weekly churn report',
}

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip)(`the gateway end to end on ${backend.name}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'countersign-e2e-'))
    const dataDir = join(dir, 'data')
    const configFile = join(dir, 'countersign.yaml')
    const policyFile = join(dir, 'policy.yaml')
    let databaseUrl: string | undefined
    let schema: string | undefined
    let port = 0
    let gateway: GatewayProcess
    const keys: Record<'admin' | 'agent' | 'dana' | 'omar' | 'priya' | 'lena' | 'sam' | 'pat', string> = {
      admin: '', agent: '', dana: '', omar: '', priya: '', lena: '', sam: '', pat: '',
    }

    const serveArgs = (): string[] => [
      '--config', configFile, '--port', String(port), '--policy', policyFile,
      ...(databaseUrl ? ['--database', databaseUrl, '--database-schema', schema ?? ''] : ['--data-dir', dataDir]),
    ]

    beforeAll(async () => {
      copyFileSync(join(REPO_ROOT, 'examples/policy.yaml'), policyFile)
      // Short grants so expiry can be seen; everything else is the default.
      writeFileSync(configFile, `data_dir: ${dataDir}\ngrants: { ttl: 4s }\n`)
      if (backend.name === 'postgres') {
        schema = `cs_e2e_${randomBytes(6).toString('hex')}`
        databaseUrl = postgres.url
      }
      port = await freePort()
      gateway = await startGatewayProcess(serveArgs())
      expect(gateway.adminToken).toMatch(/^cs_/)
      keys.admin = gateway.adminToken ?? ''
      const create = async (kind: string, id: string, extra: Record<string, unknown> = {}): Promise<string> => {
        const response = await call(gateway.url, keys.admin, 'POST', '/v1/keys', { kind, id, ...extra })
        expect(response.status).toBe(201)
        return response.body.token as string
      }
      keys.agent = await create('agent', 'etl-bot', { on_behalf_of: 'priya@example.com' })
      keys.dana = await create('human', 'dana@example.com', { email: 'dana@example.com', groups: ['data-owners'] })
      keys.omar = await create('human', 'omar@example.com', { email: 'omar@example.com', groups: ['data-owners'] })
      keys.priya = await create('human', 'priya@example.com', { email: 'priya@example.com', groups: ['data-owners'] })
      keys.lena = await create('human', 'lena@example.com', { email: 'lena@example.com', groups: ['data-owners'] })
      keys.sam = await create('human', 'sam@example.com', { email: 'sam@example.com', groups: ['sre'] })
      keys.pat = await create('human', 'pat@example.com', { email: 'pat@example.com', groups: ['platform'] })
    })

    afterAll(async () => {
      await gateway?.stop()
      if (schema) await postgres.dropSchema(schema)
      rmSync(dir, { recursive: true, force: true })
    })

    const submit = (params: Record<string, unknown>, token = keys.agent) =>
      call(gateway.url, token, 'POST', '/v1/requests', { ...EXPORT, params })
    const vote = (id: string, token: string, body: Record<string, unknown>) =>
      castVote(gateway.url, token, id, body)
    const get = async (id: string, token = keys.dana) => (await call(gateway.url, token, 'GET', `/v1/requests/${id}`)).body

    let firstId = ''

    it('holds a prod export for review by two data owners', async () => {
      const response = await submit({ table: 'customers', filter: { email: 'someone@example.org' } })
      expect(response.status).toBe(201)
      expect(response.body.status).toBe('pending')
      expect(response.body.review.requirements).toEqual([
        expect.objectContaining({ rule: 'prod-export-needs-two-owners', quorum: 2, approvals: [] }),
      ])
      expect(response.body.on_behalf_of).toEqual({ id: 'priya@example.com', verified: false })
      firstId = response.body.id
      // Reviewers see redacted params; the requester sees the real ones.
      expect((await get(firstId)).params.filter.email).toBe('[redacted:params.filter.email]')
      expect((await get(firstId, keys.agent)).params.filter.email).toBe('someone@example.org')
    })

    it('refuses the agent, the human it acts for and an outsider, and counts none of them', async () => {
      const agent = await vote(firstId, keys.agent, { decision: 'approve', reason: 'ok' })
      expect([agent.status, agent.body.error.code]).toEqual([403, 'non_human_reviewer'])
      const self = await vote(firstId, keys.priya, { decision: 'approve', reason: 'ok' })
      expect([self.status, self.body.error.code]).toEqual([403, 'self_approval'])
      const outsider = await vote(firstId, keys.sam, { decision: 'approve', reason: 'ok' })
      expect([outsider.status, outsider.body.error.code]).toEqual([403, 'not_an_approver'])
      const after = await get(firstId)
      expect(after.status).toBe('pending')
      expect(after.votes).toEqual([])
      expect(after.review.requirements[0].approvals).toEqual([])
    })

    it('counts one owner once and refuses a second vote from the same owner', async () => {
      const first = await vote(firstId, keys.dana, { decision: 'approve', reason: 'looked at the filter' })
      expect(first.status).toBe(200)
      expect(first.body.status).toBe('pending')
      expect(first.body.review.requirements[0].approvals).toEqual(['dana@example.com'])
      const again = await vote(firstId, keys.dana, { decision: 'approve', reason: 'again' })
      expect([again.status, again.body.error.code]).toEqual([409, 'already_voted'])
      expect((await get(firstId)).votes).toHaveLength(1)
    })

    let grantToken = ''
    let grantDigest = ''

    it('wakes the waiting agent within a second of the second approval', async () => {
      let resolvedAt = 0
      const waiting = call(gateway.url, keys.agent, 'GET', `/v1/requests/${firstId}/wait?timeout=30`).then((r) => {
        resolvedAt = performance.now()
        return r
      })
      await new Promise((resolve) => setTimeout(resolve, 200))
      const second = await vote(firstId, keys.omar, { decision: 'approve', reason: 'fine' })
      const votedAt = performance.now()
      expect(second.body.status).toBe('approved')
      const waited = await waiting
      expect(waited.body.status).toBe('approved')
      expect(resolvedAt - votedAt).toBeLessThan(1000)
      grantToken = waited.body.grant.token
      grantDigest = waited.body.digest
      expect(waited.body.grant.digest).toBe(grantDigest)
    })

    it('redeems a grant exactly once and only for its digest', async () => {
      const wrong = await call(gateway.url, keys.agent, 'POST', '/v1/grants/redeem', { token: grantToken, digest: 'f'.repeat(64) })
      expect([wrong.status, wrong.body.error.code]).toEqual([409, 'digest_mismatch'])
      const redeemed = await call(gateway.url, keys.agent, 'POST', '/v1/grants/redeem', { token: grantToken, digest: grantDigest })
      expect(redeemed.status).toBe(200)
      expect(redeemed.body.params.filter.email).toBe('someone@example.org')
      const again = await call(gateway.url, keys.agent, 'POST', '/v1/grants/redeem', { token: grantToken, digest: grantDigest })
      expect([again.status, again.body.error.code]).toEqual([409, 'grant_already_redeemed'])
      const twice = await Promise.all([1, 2].map(() => call(gateway.url, keys.agent, 'POST', '/v1/grants/redeem', { token: grantToken, digest: grantDigest })))
      expect(twice.map((r) => r.status)).toEqual([409, 409])
    })

    it('refuses a grant after it expired with 410', async () => {
      const tags = await call(gateway.url, keys.agent, 'POST', '/v1/requests', {
        action: 'cloud.tags.set', resource: 'arn:aws:ec2:eu-west-1:1:instance/i-1', environment: 'prod', params: { team: 'data' },
      })
      expect(tags.body.status).toBe('approved')
      await new Promise((resolve) => setTimeout(resolve, 4500))
      const late = await call(gateway.url, keys.agent, 'POST', '/v1/grants/redeem', { token: tags.body.grant.token, digest: tags.body.digest })
      expect([late.status, late.body.error.code]).toEqual([410, 'grant_expired'])
    })

    it('voids earlier votes when an owner edits the params, and binds the grant to the edited digest', async () => {
      const created = await submit({ table: 'orders', limit: 1000000 })
      const id = created.body.id
      const originalDigest = created.body.digest
      await vote(id, keys.dana, { decision: 'approve', reason: 'ok' })
      const edited = await vote(id, keys.omar, { decision: 'approve', reason: 'smaller export', params: { table: 'orders', limit: 1000 } })
      expect(edited.status).toBe(200)
      expect(edited.body.version).toBe(2)
      expect(edited.body.status).toBe('pending')
      expect(edited.body.digest).not.toBe(originalDigest)
      // The editor's approval never counts on their own edit: two other owners approve it.
      expect(edited.body.review.requirements[0].approvals).toEqual([])
      const again = await vote(id, keys.dana, { decision: 'approve', reason: 'the smaller one is fine' })
      expect(again.body.status).toBe('pending')
      expect(again.body.review.requirements[0].approvals).toEqual(['dana@example.com'])
      const second = await vote(id, keys.lena, { decision: 'approve', reason: 'fine by me' })
      expect(second.body.status).toBe('approved')
      const mine = await get(id, keys.agent)
      expect(mine.params).toEqual({ table: 'orders', limit: 1000 })
      expect(mine.grant.digest).toBe(edited.body.digest)
      const old = await call(gateway.url, keys.agent, 'POST', '/v1/grants/redeem', { token: mine.grant.token, digest: originalDigest })
      expect([old.status, old.body.error.code]).toEqual([409, 'digest_mismatch'])
      const redeemed = await call(gateway.url, keys.agent, 'POST', '/v1/grants/redeem', { token: mine.grant.token, digest: edited.body.digest })
      expect(redeemed.status).toBe(200)
      expect(redeemed.body.params).toEqual({ table: 'orders', limit: 1000 })
    })

    it('keeps a waiting client through a gateway restart and delivers the decision made after it', async () => {
      const created = await submit({ table: 'invoices' })
      const id = created.body.id
      const cs = new Countersign({ url: gateway.url, token: keys.agent })
      const waiting = cs.wait(id, { timeoutMs: 60_000 })
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(await gateway.stop()).toBe(0)
      gateway = await startGatewayProcess(serveArgs())
      expect(gateway.adminToken).toBeUndefined()
      await vote(id, keys.dana, { decision: 'approve', reason: 'ok' })
      await vote(id, keys.omar, { decision: 'approve', reason: 'ok' })
      const decided = await waiting
      expect(decided.status).toBe('approved')
      expect(decided.grant?.token).toBeTruthy()
    })

    it('runs a command under review only after approval, showing the live state', async () => {
      const run = spawnCli(
        ['run', '--action', 'terraform.apply', '--resource', 'tf://prod/network', '--env', 'prod', '--', 'sh', '-c', 'echo ok'],
        { COUNTERSIGN_URL: gateway.url, COUNTERSIGN_TOKEN: keys.agent },
      )
      let id: string | undefined
      for (let i = 0; i < 100 && id === undefined; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        id = /(req_[0-9a-f]+) pending/.exec(run.stderr())?.[1]
      }
      expect(id).toBeDefined()
      expect(run.stderr()).toMatch(/0\/1 approvals \(group:platform\)/)
      expect(run.stderr()).toMatch(/left/)
      const approved = await vote(id ?? '', keys.pat, { decision: 'approve' })
      expect(approved.body.status).toBe('approved')
      const result = await run.result
      expect(result.code).toBe(0)
      expect(result.stdout.trim()).toBe('ok')
      const final = await get(id ?? '')
      expect(final.result).toEqual({ outcome: 'succeeded', exit_code: 0, detail: null })
    })

    it('never runs a command the policy denies', async () => {
      const marker = join(dir, 'ran')
      const result = await runCli(
        ['run', '--action', 'db.export', '--resource', 'pg://prod/audit_log', '--env', 'prod', '--', 'sh', '-c', `touch ${marker}`],
        { COUNTERSIGN_URL: gateway.url, COUNTERSIGN_TOKEN: keys.agent },
      )
      expect(result.code).toBe(3)
      expect(result.stdout + result.stderr).toMatch(/denied/)
      expect(existsSync(marker)).toBe(false)
    })

    it('refuses to run anything when the gateway is unreachable', async () => {
      const marker = join(dir, 'ran-offline')
      const result = await runCli(
        ['run', '--action', 'cloud.tags.set', '--resource', 'r', '--env', 'prod', '--', 'sh', '-c', `touch ${marker}`],
        { COUNTERSIGN_URL: `http://127.0.0.1:${await freePort()}`, COUNTERSIGN_TOKEN: keys.agent },
      )
      expect(result.code).toBe(6)
      expect(existsSync(marker)).toBe(false)
    }, 60_000)

    it('answers every bad input with its 4xx code and changes nothing', async () => {
      const pending = (await submit({ table: 'bad-input-target' })).body
      const decided = (await call(gateway.url, keys.agent, 'POST', '/v1/requests', {
        action: 'cloud.tags.set', resource: 'r', environment: 'prod', params: { n: 1 },
      })).body
      const count = async () => (await call(gateway.url, keys.dana, 'GET', '/v1/requests?limit=200')).body.items.length
      const before = await count()
      const cases: Array<[string, () => ReturnType<typeof call>, number, string]> = [
        ['malformed JSON', () => call(gateway.url, keys.agent, 'POST', '/v1/requests', '{"action": ', { 'content-type': 'application/json' }), 400, 'invalid_request'],
        ['wrong types', () => call(gateway.url, keys.agent, 'POST', '/v1/requests', { ...EXPORT, action: 5, params: [] }), 400, 'invalid_request'],
        ['unknown fields', () => call(gateway.url, keys.agent, 'POST', '/v1/requests', { ...EXPORT, params: {}, requester: 'dana@example.com' }), 400, 'invalid_request'],
        ['an oversized body', () => call(gateway.url, keys.agent, 'POST', '/v1/requests', { ...EXPORT, params: { blob: 'x'.repeat(2 * 1024 * 1024) } }), 413, 'payload_too_large'],
        ['a missing token', () => call(gateway.url, undefined, 'POST', '/v1/requests', { ...EXPORT, params: {} }), 401, 'unauthenticated'],
        ['a bad token', () => call(gateway.url, 'cs_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'POST', '/v1/requests', { ...EXPORT, params: {} }), 401, 'unauthenticated'],
        ['an unknown request id', () => call(gateway.url, keys.dana, 'GET', '/v1/requests/req_doesnotexist'), 404, 'not_found'],
        ['a vote on a decided request', () => vote(decided.id, keys.dana, { decision: 'approve' }), 409, 'request_not_pending'],
        ['a cancel by someone else', () => call(gateway.url, keys.dana, 'POST', `/v1/requests/${pending.id}/cancel`, {}), 403, 'not_requester'],
        ['a result before redemption', () => call(gateway.url, keys.agent, 'POST', `/v1/requests/${decided.id}/result`, { outcome: 'succeeded' }), 409, 'invalid_transition'],
        ['a wrong content type', () => call(gateway.url, keys.agent, 'POST', '/v1/requests', 'action=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type'],
        ['a bad wait timeout', () => call(gateway.url, keys.agent, 'GET', `/v1/requests/${pending.id}/wait?timeout=abc`), 400, 'invalid_request'],
        ['a non-admin creating keys', () => call(gateway.url, keys.dana, 'POST', '/v1/keys', { kind: 'human', id: 'x@example.com' }), 403, 'forbidden'],
      ]
      for (const [name, send, status, code] of cases) {
        const response = await send()
        expect({ name, status: response.status, code: response.body?.error?.code }).toEqual({ name, status, code })
        expect(typeof response.body.error.message).toBe('string')
      }
      expect(await count()).toBe(before)
      expect((await get(pending.id)).status).toBe('pending')
      expect((await get(pending.id)).votes).toEqual([])
      expect((await get(decided.id, keys.agent)).grant.status).toBe('issued')
    })

    it('serves health, readiness, metrics, JWKS and the OpenAPI document', async () => {
      expect((await call(gateway.url, undefined, 'GET', '/healthz')).status).toBe(200)
      expect((await call(gateway.url, undefined, 'GET', '/readyz')).body.status).toBe('ready')
      const metrics = await call(gateway.url, undefined, 'GET', '/metrics')
      expect(metrics.body).toMatch(/countersign_requests_total\{effect="review"\}/)
      expect(metrics.body).toMatch(/countersign_pending_requests \d+/)
      expect((await call(gateway.url, undefined, 'GET', '/.well-known/jwks.json')).body.keys[0].alg).toBe('EdDSA')
      expect((await call(gateway.url, undefined, 'GET', '/openapi.json')).body.openapi).toBe('3.1.0')
      const key = await call(gateway.url, undefined, 'GET', '/audit/public-key')
      expect(key.body.pem).toMatch(/BEGIN PUBLIC KEY/)
      writeFileSync(join(dir, 'audit-public.pem'), key.body.pem)
    })

    it('leaves an audit log that verifies against the published key', async () => {
      expect(await gateway.stop()).toBe(0)
      // The key an auditor fetched while the gateway ran, not the one in the operator's data directory.
      const publicKey = ['--public-key', join(dir, 'audit-public.pem')]
      const args = databaseUrl
        ? ['audit', 'verify', '--database', databaseUrl, '--database-schema', schema ?? '', ...publicKey]
        : ['audit', 'verify', '--data-dir', dataDir, ...publicKey]
      const result = await runCli(args)
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(/audit log intact: \d+ entries, [1-9]\d* checkpoints?/)
      gateway = await startGatewayProcess(serveArgs())
      const checkpoint = await call(gateway.url, undefined, 'GET', '/audit/checkpoint')
      expect(checkpoint.body.size).toBeGreaterThan(0)
    })
  })
}
