import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Gateway, loadGatewayConfig, startGateway } from '../src/server/index.js'
import { call } from './support/gateway-process.js'
import { PEOPLE, startTestGateway, type TestGateway } from './support/test-gateway.js'

const POLICY = `version: 1
defaults: { effect: deny }
rules:
  - name: tags-are-free
    match: { action: "cloud.tags.*" }
    effect: allow
`

describe('refusing an address that keeps failing to sign in', () => {
  let gw: TestGateway
  let offsetMs = 0

  beforeAll(async () => {
    gw = await startTestGateway({ backend: 'sqlite', policy: POLICY, keys: PEOPLE, hooks: { now: () => Date.now() + offsetMs } })
  })

  afterAll(async () => {
    await gw?.close()
  })

  it('answers rate_limited with Retry-After after 30 failures in a minute, checks no more keys, and lets the address back after the window', async () => {
    const forged = 'cs_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'
    for (let i = 0; i < 30; i++) {
      expect((await call(gw.url, forged, 'GET', '/v1/requests')).status).toBe(401)
    }
    const limited = await fetch(`${gw.url}/v1/requests`, { headers: { authorization: `Bearer ${forged}` } })
    expect(limited.status).toBe(429)
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('rate_limited')
    // Refused before any key is looked at, so a good key from the same address waits too.
    expect((await call(gw.url, gw.tokens.agent, 'GET', '/v1/requests')).status).toBe(429)
    offsetMs = 61_000
    expect((await call(gw.url, gw.tokens.agent, 'GET', '/v1/requests')).status).toBe(200)
  })
})

describe('counting failed sign-ins behind a trusted proxy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'countersign-proxy-'))
  let gateway: Gateway
  let agent = ''

  beforeAll(async () => {
    writeFileSync(join(dir, 'policy.yaml'), POLICY)
    writeFileSync(join(dir, 'countersign.yaml'), 'trust_proxy: true\n')
    gateway = await startGateway(loadGatewayConfig({ config: join(dir, 'countersign.yaml'), dataDir: join(dir, 'data'), port: '0', policy: join(dir, 'policy.yaml') }, {}))
    agent = (await call(gateway.url, gateway.adminToken, 'POST', '/v1/keys', { kind: 'agent', id: 'bot' })).body.token
  })

  afterAll(async () => {
    await gateway?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('limits the client named by X-Forwarded-For, not every client of the proxy', async () => {
    const forged = 'cs_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'
    for (let i = 0; i < 30; i++) await call(gateway.url, forged, 'GET', '/v1/requests', undefined, { 'x-forwarded-for': '203.0.113.9' })
    expect((await call(gateway.url, forged, 'GET', '/v1/requests', undefined, { 'x-forwarded-for': '203.0.113.9' })).status).toBe(429)
    expect((await call(gateway.url, agent, 'GET', '/v1/requests', undefined, { 'x-forwarded-for': '203.0.113.10' })).status).toBe(200)
  })
})
