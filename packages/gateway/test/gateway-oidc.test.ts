import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestIssuer, type TestIssuer } from '../src/identity/test-issuer.js'
import { type Gateway, loadGatewayConfig, startGateway } from '../src/server/index.js'
import { call, REPO_ROOT, castVote } from './support/gateway-process.js'

describe('a gateway that trusts an OIDC provider', () => {
  const dir = mkdtempSync(join(tmpdir(), 'countersign-oidc-'))
  let issuer: TestIssuer
  let gateway: Gateway
  let agentKey = ''

  beforeAll(async () => {
    issuer = await startTestIssuer()
    const configFile = join(dir, 'countersign.yaml')
    writeFileSync(configFile, `auth:\n  oidc:\n    - issuer: ${issuer.issuer}\n      audience: countersign\n      groups_claim: groups\n`)
    gateway = await startGateway(
      loadGatewayConfig({ config: configFile, dataDir: join(dir, 'data'), port: '0', policy: join(REPO_ROOT, 'examples/policy.yaml') }, {}),
    )
    const created = await call(gateway.url, gateway.adminToken, 'POST', '/v1/keys', { kind: 'agent', id: 'etl-bot' })
    agentKey = created.body.token
  })

  afterAll(async () => {
    await gateway?.stop()
    await issuer?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const tokenFor = (email: string, groups: string[], extra: Record<string, unknown> = {}) =>
    issuer.sign({ sub: `sub-${email}`, email, email_verified: true, groups, aud: 'countersign', ...extra })

  it('lets SSO users review with the groups their identity provider asserts', async () => {
    const created = await call(gateway.url, agentKey, 'POST', '/v1/requests', {
      action: 'db.export', resource: 'pg://prod/customers', environment: 'prod', params: { table: 'oidc' }, reason: 'report',
    })
    expect(created.body.status).toBe('pending')
    const dana = await tokenFor('dana@example.com', ['data-owners'])
    const omar = await tokenFor('omar@example.com', ['data-owners'])
    const first = await castVote(gateway.url, dana, created.body.id, { decision: 'approve', reason: 'ok' })
    expect(first.body.review.requirements[0].approvals).toEqual(['dana@example.com'])
    const second = await castVote(gateway.url, omar, created.body.id, { decision: 'approve', reason: 'ok' })
    expect(second.body.status).toBe('approved')
  })

  it('counts a person once whether they vote with an API key or through SSO', async () => {
    const danaKey = (await call(gateway.url, gateway.adminToken, 'POST', '/v1/keys', {
      kind: 'human', id: 'dana@example.com', email: 'dana@example.com', groups: ['data-owners'],
    })).body.token
    const created = await call(gateway.url, agentKey, 'POST', '/v1/requests', {
      action: 'db.export', resource: 'pg://prod/customers', environment: 'prod', params: { table: 'two-channels' }, reason: 'report',
    })
    const id = created.body.id
    const viaKey = await castVote(gateway.url, danaKey, id, { decision: 'approve', reason: 'ok' }, { 'x-countersign-via': 'cli' })
    expect(viaKey.body.review.requirements[0].approvals).toEqual(['dana@example.com'])
    const sso = await tokenFor('DANA@example.com', ['data-owners'])
    const viaSso = await castVote(gateway.url, sso, id, { decision: 'approve', reason: 'again' }, { 'x-countersign-via': 'sdk' })
    expect([viaSso.status, viaSso.body.error.code]).toEqual([409, 'already_voted'])
    const after = await call(gateway.url, agentKey, 'GET', `/v1/requests/${id}`)
    expect(after.body.status).toBe('pending')
    expect(after.body.votes).toHaveLength(1)
  })

  it('refuses tokens for another audience, expired tokens and tokens signed by someone else, and counts nothing', async () => {
    const created = await call(gateway.url, agentKey, 'POST', '/v1/requests', {
      action: 'db.export', resource: 'pg://prod/customers', environment: 'prod', params: { table: 'oidc-refusals' }, reason: 'report',
    })
    const id = created.body.id
    const now = Math.floor(Date.now() / 1000)
    const bad = [
      await issuer.sign({ sub: 's', email: 'dana@example.com', groups: ['data-owners'], aud: 'someone-else' }),
      await issuer.sign({ sub: 's', email: 'dana@example.com', groups: ['data-owners'], aud: 'countersign', iat: now - 7200, exp: now - 3600 }),
      `${(await tokenFor('dana@example.com', ['data-owners'])).slice(0, -4)}AAAA`,
    ]
    for (const token of bad) {
      const response = await castVote(gateway.url, token, id, { decision: 'approve', reason: 'ok' })
      expect([response.status, response.body.error.code]).toEqual([401, 'unauthenticated'])
    }
    const after = await call(gateway.url, agentKey, 'GET', `/v1/requests/${id}`)
    expect(after.body.votes).toEqual([])
  })
})
