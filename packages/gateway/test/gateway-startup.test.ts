import { generateKeyPairSync } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { LocalError } from '../src/core/index.js'
import { GrantSigner } from '../src/grants/index.js'
import { type GatewayHooks, loadGatewayConfig, startGateway } from '../src/server/index.js'
import { call, freePort, runCli, startGatewayProcess } from './support/gateway-process.js'
import { BACKENDS, PEOPLE, startTestGateway, type TestGateway } from './support/test-gateway.js'

describe('refusing to start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'countersign-startup-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('refuses a policy with an unknown key and invalid CEL, naming file, line and column of both', async () => {
    const policy = join(dir, 'bad.yaml')
    writeFileSync(policy, [
      'version: 1',
      'rules:',
      '  - name: typo',
      '    match: { action: db.export }',
      '    effect: allow',
      '    aprovers: ["group:owners"]',
      '  - name: broken-condition',
      '    match: { action: db.query }',
      "    when: 'request.action == '",
      '    effect: allow',
      '',
    ].join('\n'))
    const result = await runCli(['serve', '--policy', policy, '--data-dir', join(dir, 'data-policy'), '--port', '0'])
    expect(result.code).toBe(1)
    const lines = result.stderr.split('\n')
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${escape(policy)}:6:5: unknown key "aprovers"`)))
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${escape(policy)}:9:30: invalid CEL in rules\\[1\\]\\.when`)))
    expect(result.stderr).not.toMatch(/listening/)
    expect(result.stdout).not.toMatch(/cs_/)
  })

  it('refuses a config file with an unknown key, naming file, line and column', async () => {
    const config = join(dir, 'countersign.yaml')
    writeFileSync(config, `data_dir: ${join(dir, 'data-config')}\nportt: 9000\n`)
    const result = await runCli(['serve', '--config', config, '--port', '0'])
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(new RegExp(`^${escape(config)}:2:1: unknown key "portt"`, 'm'))
    expect(existsSync(join(dir, 'data-config'))).toBe(false)
  })

  it('refuses a port that is not a number with a message saying what a port must be', async () => {
    const result = await runCli(['serve', '--port', 'abc', '--data-dir', join(dir, 'data-port')])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('Invalid port "abc": give a whole number from 0 to 65535.')
    expect(existsSync(join(dir, 'data-port'))).toBe(false)
  })
})

describe('startGateway refusing a bad configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'countersign-config-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const policy = join(dir, 'policy.yaml')
  writeFileSync(policy, 'version: 1\nrules: []\n')
  const configFor = (name: string) => loadGatewayConfig({ dataDir: join(dir, name), port: '0', policy }, {})

  async function refusal(start: Promise<unknown>): Promise<LocalError> {
    const error = await start.then(() => undefined, (caught: unknown) => caught)
    expect(error).toBeInstanceOf(LocalError)
    return error as LocalError
  }

  it('refuses every bad field with config_invalid, naming each, before it creates anything', async () => {
    const config = { ...configFor('bad-fields'), checkpointEvery: 0, grantTtlMs: -5, port: 70000 }
    const error = await refusal(startGateway(config))
    expect(error.code).toBe('config_invalid')
    expect(error.message).toBe(
      'Invalid gateway configuration: port: Too big: expected number to be <=65535; grantTtlMs: at least 1000 ms; checkpointEvery: Too small: expected number to be >=1.',
    )
    expect(existsSync(config.dataDir)).toBe(false)
  })

  it('refuses an OIDC issuer that is not a URL with config_invalid rather than a TypeError', async () => {
    const config = { ...configFor('bad-oidc'), oidc: [{ issuer: '', audience: 'countersign' }] }
    const error = await refusal(startGateway(config))
    expect([error.code, error.details['issues']]).toEqual(['config_invalid', [{ path: 'oidc.0.issuer', message: 'Invalid URL' }]])
  })

  it('refuses a grant signing key that is not Ed25519 with config_invalid, and serves nothing', async () => {
    const config = configFor('rsa-key')
    mkdirSync(config.dataDir, { recursive: true })
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const file = join(config.dataDir, 'grant-signing-key.pem')
    writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }))
    const error = await refusal(startGateway(config))
    expect([error.code, error.message]).toEqual([
      'config_invalid',
      `The grant signing key ${file} is a rsa key; it must be an Ed25519 key (openssl genpkey -algorithm ed25519).`,
    ])
  })

  it('refuses a grant signing key file that holds no key with config_invalid naming the file', async () => {
    const config = configFor('garbage-key')
    mkdirSync(config.dataDir, { recursive: true })
    const file = join(config.dataDir, 'grant-signing-key.pem')
    writeFileSync(file, 'not a key\n')
    const error = await refusal(startGateway(config))
    expect(error.code).toBe('config_invalid')
    expect(error.message).toMatch(new RegExp(`^The grant signing key ${escape(file)} is not a PEM private key \\(`))
  })
})

describe('GrantSigner refusing a bad key', () => {
  it('refuses a configured PEM that is not a private key, with config_invalid', () => {
    expect(() => GrantSigner.load({ pem: 'nope', audience: 'countersign', issuer: 'http://127.0.0.1' })).toThrow(
      expect.objectContaining({ name: 'LocalError', code: 'config_invalid', details: { source: 'The configured grant signing key' } }),
    )
  })
})

describe('countersign init', () => {
  const dir = mkdtempSync(join(tmpdir(), 'countersign-init-'))
  const target = join(dir, 'setup')
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('serves with no configuration at all: SQLite and the example policy in ./.countersign, an admin key shown once', async () => {
    const cwd = join(dir, 'zero-config')
    mkdirSync(cwd)
    // Only the port is set, so the test cannot collide with anything on 8080.
    const env = { COUNTERSIGN_PORT: String(await freePort()) }
    const first = await startGatewayProcess([], env, cwd)
    try {
      expect(first.url).toBe(`http://127.0.0.1:${env.COUNTERSIGN_PORT}`)
      expect(first.adminToken).toMatch(/^cs_/)
      expect(readFileSync(join(cwd, '.countersign/policy.yaml'), 'utf8')).toContain('prod-export-needs-two-owners')
      expect(existsSync(join(cwd, '.countersign/countersign.db'))).toBe(true)
      expect(statSync(join(cwd, '.countersign/grant-signing-key.pem')).mode & 0o777).toBe(0o600)
      const keys = await call(first.url, first.adminToken, 'GET', '/v1/keys')
      expect(keys.status).toBe(200)
    } finally {
      expect(await first.stop()).toBe(0)
    }
    const second = await startGatewayProcess([], env, cwd)
    try {
      expect(second.adminToken).toBeUndefined()
    } finally {
      expect(await second.stop()).toBe(0)
    }
  })

  it('writes a config and a policy that check and serve as they are', async () => {
    const init = await runCli(['init', '--dir', target])
    expect(init.code).toBe(0)
    expect(init.stdout).toContain(`wrote ${join(target, 'countersign.yaml')}`)
    expect(init.stdout).toContain(`wrote ${join(target, 'policy.yaml')}`)

    const check = await runCli(['policy', 'check', join(target, 'policy.yaml')])
    expect(check.code).toBe(0)

    // The written config listens on 8080; a free port keeps the test from colliding with anything running there.
    const gateway = await startGatewayProcess(['--config', join(target, 'countersign.yaml'), '--port', String(await freePort())])
    try {
      expect(gateway.adminToken).toMatch(/^cs_/)
      expect(gateway.output()).toContain(`policy ${join(target, 'policy.yaml')}`)
      expect((await call(gateway.url, undefined, 'GET', '/readyz')).body).toEqual({ status: 'ready', store: 'sqlite' })
      // data_dir in the written config is relative to the config file.
      expect(existsSync(join(target, '.countersign'))).toBe(true)
    } finally {
      expect(await gateway.stop()).toBe(0)
    }
  })

  it('refuses to overwrite existing files without --force and leaves them as they were', async () => {
    const policy = join(target, 'policy.yaml')
    const config = join(target, 'countersign.yaml')
    writeFileSync(policy, `${readFileSync(policy, 'utf8')}# edited by the operator\n`)
    const before = [readFileSync(config, 'utf8'), readFileSync(policy, 'utf8'), statSync(config).mtimeMs, statSync(policy).mtimeMs]

    const again = await runCli(['init', '--dir', target])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/already exist; pass --force to overwrite/)
    expect([readFileSync(config, 'utf8'), readFileSync(policy, 'utf8'), statSync(config).mtimeMs, statSync(policy).mtimeMs]).toEqual(before)
  })
})

const TAGS_ALLOWED = `version: 1
defaults:
  effect: deny
rules:
  - name: tags-are-free
    match: { action: "cloud.tags.*" }
    effect: allow
`

const TAGS_DENIED = `version: 1
defaults:
  effect: deny
rules:
  - name: tags-frozen
    match: { action: "cloud.tags.*" }
    effect: deny
`

type PolicyEvent = Parameters<NonNullable<GatewayHooks['onPolicy']>>[0]

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip)(`policy hot reload on ${backend.name}`, () => {
    let gw: TestGateway
    const events: PolicyEvent[] = []
    let firstSha = ''

    beforeAll(async () => {
      gw = await startTestGateway({
        backend: backend.name,
        policy: TAGS_ALLOWED,
        keys: { agent: PEOPLE.agent },
        hooks: { onPolicy: (event) => events.push(event) },
      })
      firstSha = (await tag('start')).body.decision.policy_sha256
    })

    afterAll(async () => {
      await gw?.close()
    })

    const tag = (team: string) =>
      call(gw.url, gw.tokens.agent, 'POST', '/v1/requests', {
        action: 'cloud.tags.set', resource: 'arn:aws:ec2:eu-west-1:1:instance/i-1', environment: 'prod', params: { team },
      })
    /** Waits for the watcher to report on the file just written, and for the audit entry that records it. */
    const reloadOutcome = async (count: number, auditType: string, afterSeq: number) => {
      await vi.waitFor(() => expect(events).toHaveLength(count), { timeout: 5000, interval: 20 })
      return vi.waitFor(async () => {
        const entry = (await gw.auditSince(afterSeq)).find((candidate) => candidate.type === auditType)
        expect(entry).toBeDefined()
        return entry
      }, { timeout: 5000, interval: 20 })
    }

    it('keeps deciding by the last good policy when an invalid one is written over it, and audits the failure', async () => {
      const head = await gw.auditHead()
      writeFileSync(gw.policyFile, `${TAGS_DENIED}    aprovers: [nobody]\n`)

      const entry = await reloadOutcome(1, 'policy.reload_failed', head)
      expect(events[0]).toMatchObject({ ok: false, error: { code: 'policy_invalid' } })
      expect(entry?.data).toMatchObject({ file: gw.policyFile, kept_sha256: firstSha })
      expect(entry?.data.message).toMatch(/unknown key "aprovers"/)

      const decided = await tag('after-bad-reload')
      expect(decided.status).toBe(201)
      expect(decided.body.status).toBe('approved')
      expect(decided.body.decision.policy_sha256).toBe(firstSha)
      expect(decided.body.decision.matched_rules).toEqual([{ name: 'tags-are-free', effect: 'allow' }])
      expect((await gw.auditSince(head)).map((candidate) => candidate.type).filter((type) => type.startsWith('policy.'))).toEqual([
        'policy.reload_failed',
      ])
    })

    it('decides by a valid policy as soon as it is written over the file', async () => {
      const head = await gw.auditHead()
      writeFileSync(gw.policyFile, TAGS_DENIED)

      const entry = await reloadOutcome(2, 'policy.reloaded', head)
      expect(events[1]).toMatchObject({ ok: true })
      const newSha = events[1]?.ok ? events[1].sha256 : ''
      expect(newSha).not.toBe(firstSha)
      expect(entry?.data).toMatchObject({ file: gw.policyFile, sha256: newSha })

      const decided = await tag('after-good-reload')
      expect(decided.body.status).toBe('denied')
      expect(decided.body.decision.policy_sha256).toBe(newSha)
      expect(decided.body.decision.matched_rules).toEqual([{ name: 'tags-frozen', effect: 'deny' }])
      expect(decided.body.grant).toBeNull()
    })
  })
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
