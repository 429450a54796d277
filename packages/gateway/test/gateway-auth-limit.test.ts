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

  const forged = 'cs_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'
  /** Fails 30 times, which throttles this address for the rest of the minute. */
  const throttle = async (): Promise<void> => {
    for (let i = 0; i < 30; i++) expect((await call(gw.url, forged, 'GET', '/v1/requests')).status).toBe(401)
  }

  it('throttles the failures of an address that keeps failing, with rate_limited and Retry-After, until the window passes', async () => {
    offsetMs = 0
    await throttle()
    const limited = await fetch(`${gw.url}/v1/requests`, { headers: { authorization: `Bearer ${forged}` } })
    expect(limited.status).toBe(429)
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
    const body = (await limited.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('rate_limited')
    expect(body.error.message).toMatch(/^Too many failed sign-ins from this address; try again in \d+ s\. A valid key is still accepted\.$/)
    offsetMs = 61_000
    expect((await call(gw.url, forged, 'GET', '/v1/requests')).status).toBe(401)
  })

  it('still accepts a valid key from a throttled address, one it has used before and one it never has', async () => {
    offsetMs = 200_000
    // Created before the throttle, used for the first time after it: its secret has to be checked.
    const { token: fresh } = await gw.createKey({ kind: 'agent', id: 'nightly-bot' })
    expect((await call(gw.url, gw.tokens.agent, 'GET', '/v1/requests')).status).toBe(200)
    await throttle()
    expect((await call(gw.url, forged, 'GET', '/v1/requests')).status).toBe(429)
    expect((await call(gw.url, gw.tokens.agent, 'GET', '/v1/requests')).status).toBe(200)
    expect((await call(gw.url, fresh, 'GET', '/v1/requests')).status).toBe(200)
    const submitted = await call(gw.url, fresh, 'POST', '/v1/requests', { action: 'cloud.tags.set', resource: 'vm-1', environment: 'dev', params: {} })
    expect(submitted.status).toBe(201)
    expect((await call(gw.url, forged, 'GET', '/v1/requests')).status).toBe(429)
  })

  it('bounds the guesses a throttled address has checked: after three wrong secrets for a key, even its right secret is refused unchecked', async () => {
    offsetMs = 400_000
    const { token: target } = await gw.createKey({ kind: 'agent', id: 'target-bot' })
    const wrong = (i: number): string => `${target.slice(0, 'cs_'.length + 12 + 1)}${String(i).padStart(43, 'x')}`
    await throttle()
    for (let i = 0; i < 3; i++) expect((await call(gw.url, wrong(i), 'GET', '/v1/requests')).status).toBe(429)
    const refused = await call(gw.url, target, 'GET', '/v1/requests')
    expect(refused.status).toBe(429)
    expect(refused.body.error.code).toBe('rate_limited')
    // Other keys are unaffected, and the window lets the targeted key back.
    expect((await call(gw.url, gw.tokens.otherAgent, 'GET', '/v1/requests')).status).toBe(200)
    offsetMs = 461_000
    expect((await call(gw.url, target, 'GET', '/v1/requests')).status).toBe(200)
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
