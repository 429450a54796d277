import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Gateway, loadGatewayConfig, startGateway } from '../src/server/index.js'
import { call, castVote } from './support/gateway-process.js'
import { postgresForTests } from './support/postgres.js'

const postgres = await postgresForTests()

const POLICY = `version: 1
defaults: { effect: deny }
idp_groups: [reviewers]
rules:
  - name: needs-a-reviewer
    match: { action: "job.run" }
    effect: review
    review: { approvers: ["group:reviewers"], timeout: 10m }
`

describe.skipIf(postgres.skip)('two gateway replicas on one PostgreSQL database', () => {
  const dir = mkdtempSync(join(tmpdir(), 'countersign-replicas-'))
  const schema = `cs_replicas_${randomBytes(6).toString('hex')}`
  let a: Gateway
  let b: Gateway
  let agent = ''
  let reviewer = ''

  beforeAll(async () => {
    const policy = join(dir, 'policy.yaml')
    writeFileSync(policy, POLICY)
    // Replicas share the signing keys (here through one data directory) and the database.
    const config = loadGatewayConfig({ dataDir: join(dir, 'data'), port: '0', policy, database: postgres.url, databaseSchema: schema }, {})
    a = await startGateway(config)
    b = await startGateway(config)
    agent = (await call(a.url, a.adminToken, 'POST', '/v1/keys', { kind: 'agent', id: 'bot' })).body.token
    reviewer = (await call(a.url, a.adminToken, 'POST', '/v1/keys', { kind: 'human', id: 'rita@example.com', groups: ['reviewers'] })).body.token
  })

  afterAll(async () => {
    await a?.stop()
    await b?.stop()
    await postgres.dropSchema(schema)
    rmSync(dir, { recursive: true, force: true })
  })

  it('wakes a client waiting on one replica when a reviewer approves through the other', async () => {
    const created = await call(a.url, agent, 'POST', '/v1/requests', { action: 'job.run', resource: 'r', environment: 'prod', params: { n: 1 } })
    expect(created.body.status).toBe('pending')
    let wokenAt = 0
    const waiting = call(b.url, agent, 'GET', `/v1/requests/${created.body.id}/wait?timeout=30`).then((response) => {
      wokenAt = performance.now()
      return response
    })
    await new Promise((resolve) => setTimeout(resolve, 200))
    const vote = await castVote(a.url, reviewer, created.body.id, { decision: 'approve' })
    const votedAt = performance.now()
    expect(vote.body.status).toBe('approved')
    const waited = await waiting
    expect(waited.body.status).toBe('approved')
    expect(wokenAt - votedAt).toBeLessThan(1000)
  })
})
