import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { call, type GatewayProcess, startGatewayProcess } from './support/gateway-process.js'

const policyAllowing = (effect: 'allow' | 'deny'): string => `version: 1
defaults: { effect: deny }
rules:
  - name: tags
    match: { action: "cloud.tags.*" }
    effect: ${effect}
`

describe('a policy reload whose audit entry cannot be written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'countersign-reload-audit-'))
  const dataDir = join(dir, 'data')
  const policyFile = join(dir, 'policy.yaml')
  let gateway: GatewayProcess
  let agent = ''

  beforeAll(async () => {
    writeFileSync(policyFile, policyAllowing('allow'))
    gateway = await startGatewayProcess(['--port', '0', '--data-dir', dataDir, '--policy', policyFile])
    agent = (await call(gateway.url, gateway.adminToken, 'POST', '/v1/keys', { kind: 'agent', id: 'bot' })).body.token
  })

  afterAll(async () => {
    await gateway?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('is logged, and the gateway keeps running and deciding by the reloaded policy', async () => {
    // The database itself refuses the entry: a real failed write, as a full disk or a broken store would give.
    const database = new DatabaseSync(join(dataDir, 'countersign.db'))
    database.exec(`create trigger refuse_reload_audit before insert on audit_entries when new.type = 'policy.reloaded'
      begin select raise(abort, 'audit entries refused by the test'); end`)
    database.close()

    writeFileSync(policyFile, policyAllowing('deny'))
    await vi.waitFor(() => expect(gateway.output()).toMatch(/policy reloaded/), { timeout: 5000, interval: 20 })
    await vi.waitFor(
      () => expect(gateway.output()).toMatch(/countersign: auditing a policy reload failed; the reload stands: .*audit entries refused by the test/),
      { timeout: 5000, interval: 20 },
    )

    expect((await call(gateway.url, undefined, 'GET', '/healthz')).status).toBe(200)
    const decided = await call(gateway.url, agent, 'POST', '/v1/requests', { action: 'cloud.tags.set', resource: 'vm-1', environment: 'prod', params: {} })
    expect(decided.status).toBe(201)
    expect(decided.body.status).toBe('denied')
    expect(await gateway.stop()).toBe(0)
  })
})
