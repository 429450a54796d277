import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { call, type GatewayProcess, runCli, startGatewayProcess } from './support/gateway-process.js'
import { postgresForTests } from './support/postgres.js'

const postgres = await postgresForTests()

const POLICY = `version: 1
defaults: { effect: deny }
idp_groups: [reviewers]
rules:
  - name: tags-are-free
    match: { action: "cloud.tags.*" }
    effect: allow
  - name: jobs-need-a-reviewer
    match: { action: "job.run" }
    effect: review
    review: { approvers: ["group:reviewers"], timeout: 10m }
`

/** What a call came back with; a fetch that failed outright (the gateway gone) is status 0. */
interface Outcome {
  status: number
  code?: string
}

describe.skipIf(postgres.skip)('a PostgreSQL gateway whose database connections are terminated', () => {
  const dir = mkdtempSync(join(tmpdir(), 'countersign-pg-restart-'))
  const schema = `cs_restart_${randomBytes(6).toString('hex')}`
  // Only the backends carrying this name are terminated: the server is shared with other test runs.
  const applicationName = `countersign_restart_${randomBytes(6).toString('hex')}`
  const databaseUrl = `${postgres.url}?application_name=${applicationName}`
  let a: GatewayProcess
  let b: GatewayProcess
  let admin: pg.Client
  let agent = ''

  const serveArgs = (): string[] => [
    '--port', '0', '--policy', join(dir, 'policy.yaml'), '--data-dir', join(dir, 'data'),
    '--database', databaseUrl, '--database-schema', schema,
  ]

  /** Terminates every backend the gateways hold, as a failover or a cluster restart would; returns how many. */
  const terminateGatewayBackends = async (): Promise<number> => {
    const { rows } = await admin.query<{ terminated: boolean }>(
      'select pg_terminate_backend(pid) as terminated from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()',
      [applicationName],
    )
    return rows.filter((row) => row.terminated).length
  }

  const outcome = async (request: Promise<{ status: number; body: { error?: { code?: string } } }>): Promise<Outcome> => {
    try {
      const response = await request
      return { status: response.status, ...(response.body?.error?.code !== undefined ? { code: response.body.error.code } : {}) }
    } catch {
      return { status: 0 }
    }
  }

  /** Retries a call through 503s, as a client that fails closed and tries again does. */
  const untilAnswered = async <T extends { status: number }>(attempt: () => Promise<T>): Promise<T> => {
    for (;;) {
      const response = await attempt()
      if (response.status !== 503) return response
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  beforeAll(async () => {
    writeFileSync(join(dir, 'policy.yaml'), POLICY)
    admin = new pg.Client({ connectionString: postgres.url })
    await admin.connect()
    a = await startGatewayProcess(serveArgs())
    // A second replica on the same database and keys, to see the change feed carry news across.
    b = await startGatewayProcess(serveArgs())
    agent = (await call(a.url, a.adminToken, 'POST', '/v1/keys', { kind: 'agent', id: 'bot' })).body.token
  })

  afterAll(async () => {
    await a?.stop()
    await b?.stop()
    await admin?.end()
    await postgres.dropSchema(schema)
    rmSync(dir, { recursive: true, force: true })
  })

  it('keeps running under load, answers the calls it lost with 503 store_unavailable and everything else as usual', async () => {
    const pending: string[] = []
    const operations: Array<() => Promise<Outcome>> = []
    for (let i = 0; i < 300; i++) {
      const kind = i % 4
      if (kind === 0) operations.push(() => outcome(call(a.url, agent, 'POST', '/v1/requests', { action: 'cloud.tags.set', resource: `vm-${i}`, environment: 'prod', params: { i } })))
      if (kind === 1) {
        operations.push(async () => {
          const created = await outcome(call(a.url, agent, 'POST', '/v1/requests', { action: 'job.run', resource: `job-${i}`, environment: 'prod', params: { i } }).then((response) => {
            if (response.status === 201) pending.push(response.body.id as string)
            return response
          }))
          return created
        })
      }
      if (kind === 2) operations.push(() => outcome(call(a.url, agent, 'GET', '/v1/requests?limit=20')))
      if (kind === 3) {
        operations.push(() => {
          const id = pending.shift()
          return id === undefined
            ? outcome(call(a.url, agent, 'GET', '/readyz'))
            : outcome(call(a.url, agent, 'POST', `/v1/requests/${id}/cancel`, { reason: 'not needed' }))
        })
      }
    }

    let loadDone = false
    let terminated = 0
    const terminator = (async () => {
      while (!loadDone) {
        terminated += await terminateGatewayBackends()
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    })()
    const outcomes: Outcome[] = []
    const worker = async (): Promise<void> => {
      for (let next = operations.shift(); next !== undefined; next = operations.shift()) outcomes.push(await next())
    }
    await Promise.all(Array.from({ length: 8 }, worker))
    loadDone = true
    await terminator

    expect(terminated).toBeGreaterThan(0)
    expect(outcomes).toHaveLength(300)
    const unexpected = outcomes.filter((o) => !(o.status >= 200 && o.status < 300) && !(o.status === 503 && o.code === 'store_unavailable'))
    expect(unexpected).toEqual([])
    expect(outcomes.filter((o) => o.status >= 200 && o.status < 300).length).toBeGreaterThan(0)

    // It recovers by itself: the next calls succeed without a restart.
    const after = await untilAnswered(() => call(a.url, agent, 'POST', '/v1/requests', { action: 'cloud.tags.set', resource: 'vm-after', environment: 'prod', params: {} }))
    expect(after.status).toBe(201)
    expect(after.body.status).toBe('approved')
    expect((await call(a.url, agent, 'GET', `/v1/requests/${after.body.id}`)).status).toBe(200)
    expect(a.output()).not.toMatch(/unhandled|uncaught/i)

    // Nothing half-written: the audit chain is whole.
    const verify = await runCli(['audit', 'verify', '--database', postgres.url, '--database-schema', schema, '--data-dir', join(dir, 'data')])
    expect(verify.stdout + verify.stderr).toMatch(/^audit log intact/)
    expect(verify.code).toBe(0)
  })

  it('wakes a waiter on one replica when the change lands through the other while the change feed reconnects', async () => {
    const created = await untilAnswered(() => call(a.url, agent, 'POST', '/v1/requests', { action: 'job.run', resource: 'job-wait', environment: 'prod', params: {} }))
    expect(created.body.status).toBe('pending')
    const waiting = untilAnswered(() => call(b.url, agent, 'GET', `/v1/requests/${created.body.id}/wait?timeout=25`))
    await new Promise((resolve) => setTimeout(resolve, 300))
    // Both replicas lose every connection, their LISTEN connections included; the cancel lands before they listen again.
    expect(await terminateGatewayBackends()).toBeGreaterThanOrEqual(2)
    const cancelled = await untilAnswered(() => call(a.url, agent, 'POST', `/v1/requests/${created.body.id}/cancel`, { reason: 'changed my mind' }))
    expect(cancelled.status).toBe(200)
    const waited = await waiting
    expect(waited.status).toBe(200)
    // A wait that timed out would answer with the state it read before waiting: pending.
    expect(waited.body.status).toBe('cancelled')
  })
})
