import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { call, CLI, type CliResult, freePort, type GatewayProcess, runCli, spawnCli, startGatewayProcess } from './support/gateway-process.js'

/**
 * The documented exit codes (docs/cli.md), checked for every client command against a real
 * gateway process, each case a real `countersign` process. Cases that share the gateway run
 * concurrently; each works on requests of its own (unique params), so none waits on another.
 */

const POLICY = `version: 1
defaults:
  effect: deny
  review: { timeout: 15m, on_timeout: expire }
groups:
  reviewers: [rita@example.com, ron@example.com]
rules:
  - name: tags-are-free
    match: { action: "tags.*" }
    effect: allow
  - name: no-drops
    match: { action: db.drop }
    effect: deny
  - name: deploys-need-a-reviewer
    match: { action: "deploy.*" }
    effect: review
    review: { approvers: ["group:reviewers"] }
  - name: flash-reviews-expire
    match: { action: "flash.*" }
    effect: review
    review: { approvers: ["group:reviewers"], timeout: 2s }
`

const POLICY_TESTS = `- name: tags are free
  request: { action: tags.set, resource: i-1, environment: dev }
  principal: { id: bot, kind: agent }
  expect: { effect: allow }
`

const FAILING_POLICY_TESTS = `- name: drops are wrongly expected to pass
  request: { action: db.drop, resource: t, environment: dev }
  principal: { id: bot, kind: agent }
  expect: { effect: allow }
`

const EXIT = { ok: 0, failure: 1, usage: 2, denied: 3, expired: 4, cancelled: 5, unavailable: 6, refused: 7, pending: 8 } as const

const dir = mkdtempSync(join(tmpdir(), 'countersign-cli-exit-'))
const dataDir = join(dir, 'data')
const policyFile = join(dir, 'policy.yaml')
const tokens = { admin: '', agent: '', rita: '', ron: '' }
let gateway: GatewayProcess
let closedUrl = ''
let forgingProxyUrl = ''
let forgingProxy: Server | undefined

/**
 * A faulty gateway: passes everything through to the real one, but answers a grant redemption
 * with another digest, as a compromised or buggy gateway might. `run` must not run anything.
 */
async function startForgingProxy(target: string): Promise<string> {
  forgingProxy = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const headers = Object.fromEntries(Object.entries(request.headers).filter(([name]) => !['host', 'content-length', 'connection'].includes(name))) as Record<string, string>
      fetch(`${target}${request.url ?? '/'}`, { method: request.method ?? 'GET', headers, ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}) })
        .then(async (answer) => {
          let text = await answer.text()
          if (request.url === '/v1/grants/redeem' && answer.ok) text = JSON.stringify({ ...(JSON.parse(text) as object), digest: 'f'.repeat(64) })
          response.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' }).end(text)
        })
        .catch(() => response.writeHead(502).end())
    })
  })
  const proxy = forgingProxy
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const address = proxy.address()
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
}
let counter = 0

/** Params no other case uses, so a request never attaches to another case's pending one. */
const unique = (): string => JSON.stringify({ case: `${process.pid}-${(counter += 1)}` })

const env = (token: string, url = gateway.url): NodeJS.ProcessEnv => ({ COUNTERSIGN_URL: url, COUNTERSIGN_TOKEN: token })
const cli = (args: string[], token = tokens.agent, url?: string): Promise<CliResult> => runCli(args, env(token, url), dir)
const deploy = (params = unique()): string[] => ['--action', 'deploy.app', '--resource', 'svc://shop', '--env', 'prod', '--params', params]

/** Creates a request pending review and returns its id. */
async function pending(action = 'deploy.app'): Promise<string> {
  const result = await cli(['request', '--action', action, '--resource', 'svc://shop', '--env', 'prod', '--params', unique(), '--json'])
  expect(result.code).toBe(EXIT.pending)
  return (JSON.parse(result.stdout) as { id: string }).id
}

/** Starts a waiting CLI process and resolves with it once its live line names the pending request. */
async function waiting(args: string[], token = tokens.agent): Promise<{ id: string; spawned: ReturnType<typeof spawnCli> }> {
  const spawned = spawnCli(args, env(token), dir)
  for (let i = 0; i < 300; i += 1) {
    const id = /(req_\w+) pending/.exec(spawned.stderr())?.[1]
    if (id !== undefined) return { id, spawned }
    const exited = await Promise.race([spawned.result, new Promise<undefined>((resolve) => setTimeout(resolve, 50))])
    if (exited !== undefined) throw new Error(`exited early with ${exited.code}: ${exited.stdout}${exited.stderr}`)
  }
  throw new Error(`no pending request announced: ${spawned.stderr()}`)
}

const get = async (id: string): Promise<{ status: string; votes: Array<{ via: string }>; result: unknown }> =>
  (await call(gateway.url, tokens.rita, 'GET', `/v1/requests/${id}`)).body
const myRequests = async (): Promise<string[]> =>
  ((await call(gateway.url, tokens.agent, 'GET', '/v1/requests?limit=200')).body.items as Array<{ id: string }>).map((r) => r.id)

interface Case {
  command: string
  when: string
  expected: number
  /** Runs the case and returns the process that must exit with `expected`. */
  act: () => Promise<CliResult>
  /** A file the command would create if it ran; it must not exist afterwards. */
  neverRuns?: string
}

/** A command that leaves a marker file behind if it runs. */
const touch = (name: string): string[] => ['sh', '-c', `touch ${join(dir, name)}`]

const approve = (id: string, token = tokens.rita) => cli(['approve', id, '--reason', 'looks right'], token)
const deny = (id: string, token = tokens.rita) => cli(['deny', id, '--reason', 'not today'], token)

const CASES: Case[] = [
  // request
  { command: 'request', when: 'the policy allows it', expected: EXIT.ok,
    act: () => cli(['request', '--action', 'tags.set', '--resource', 'i-1', '--env', 'dev', '--params', unique()]) },
  { command: 'request', when: 'the policy denies it, without --wait', expected: EXIT.denied,
    act: () => cli(['request', '--action', 'db.drop', '--resource', 'pg://prod/x', '--env', 'prod']) },
  { command: 'request', when: 'it is pending review, without --wait', expected: EXIT.pending,
    act: () => cli(['request', ...deploy()]) },
  { command: 'request', when: 'a reviewer approves it during --wait', expected: EXIT.ok,
    act: async () => {
      const { id, spawned } = await waiting(['request', ...deploy(), '--wait'])
      expect((await approve(id)).code).toBe(EXIT.ok)
      return spawned.result
    } },
  { command: 'request', when: 'a reviewer denies it during --wait', expected: EXIT.denied,
    act: async () => {
      const { id, spawned } = await waiting(['request', ...deploy(), '--wait'])
      expect((await deny(id)).code).toBe(EXIT.ok)
      return spawned.result
    } },
  { command: 'request', when: 'nobody decides before the review deadline (expired)', expected: EXIT.expired,
    act: () => cli(['request', '--action', 'flash.deploy', '--resource', 'svc://shop', '--env', 'prod', '--params', unique(), '--wait']) },
  { command: 'request', when: '--timeout runs out while pending', expected: EXIT.expired,
    act: () => cli(['request', ...deploy(), '--wait', '--timeout', '1']) },
  { command: 'request', when: 'the gateway is unreachable', expected: EXIT.unavailable,
    act: () => cli(['request', ...deploy()], tokens.agent, closedUrl) },
  { command: 'request', when: 'an option is unknown', expected: EXIT.usage,
    act: () => cli(['request', ...deploy(), '--bogus']) },
  { command: 'request', when: 'a required flag is missing', expected: EXIT.usage,
    act: () => cli(['request', '--resource', 'r', '--env', 'dev']) },
  { command: 'request', when: '--params is not JSON', expected: EXIT.usage,
    act: () => cli(['request', ...deploy('{table:')]) },
  { command: 'request', when: 'there is no token', expected: EXIT.usage,
    act: () => runCli(['request', ...deploy()], { COUNTERSIGN_URL: gateway.url, COUNTERSIGN_TOKEN: '' }, dir) },
  { command: 'request', when: 'the URL has no scheme', expected: EXIT.usage,
    act: () => cli(['request', ...deploy()], tokens.agent, gateway.url.replace('http://', '')) },
  { command: 'request', when: 'the gateway refuses the token', expected: EXIT.failure,
    act: () => cli(['request', ...deploy()], 'cs_not_a_real_key') },

  // run
  { command: 'run', when: 'the policy allows it (the command\'s own exit code)', expected: EXIT.ok,
    act: () => cli(['run', '--action', 'tags.set', '--resource', 'i-1', '--env', 'dev', '--', 'sh', '-c', 'exit 0']) },
  { command: 'run', when: 'the approved command itself fails (its own exit code)', expected: 42,
    act: () => cli(['run', '--action', 'tags.set', '--resource', 'i-2', '--env', 'dev', '--', 'sh', '-c', 'exit 42']) },
  { command: 'run', when: 'the policy denies it', expected: EXIT.denied,
    act: () => cli(['run', '--action', 'db.drop', '--resource', 'pg://prod/x', '--env', 'prod', '--', ...touch('ran-denied')]),
    neverRuns: 'ran-denied' },
  { command: 'run', when: 'a reviewer denies it', expected: EXIT.denied,
    act: async () => {
      const { id, spawned } = await waiting(['run', '--action', 'deploy.app', '--resource', 'svc://a', '--env', 'prod', '--', ...touch('ran-reviewer-denied')])
      await deny(id)
      return spawned.result
    },
    neverRuns: 'ran-reviewer-denied' },
  { command: 'run', when: 'a reviewer approves it', expected: EXIT.ok,
    act: async () => {
      const { id, spawned } = await waiting(['run', '--action', 'deploy.app', '--resource', 'svc://b', '--env', 'prod', '--', 'sh', '-c', 'echo deployed'])
      await approve(id)
      const result = await spawned.result
      expect(result.stdout.trim()).toBe('deployed')
      expect((await get(id)).result).toEqual({ outcome: 'succeeded', exit_code: 0, detail: null })
      return result
    } },
  { command: 'run', when: 'nobody decides before the review deadline (expired)', expected: EXIT.expired,
    act: () => cli(['run', '--action', 'flash.deploy', '--resource', 'svc://c', '--env', 'prod', '--', ...touch('ran-expired')]),
    neverRuns: 'ran-expired' },
  { command: 'run', when: '--timeout runs out while pending', expected: EXIT.expired,
    act: () => cli(['run', '--action', 'deploy.app', '--resource', 'svc://timeout', '--env', 'prod', '--timeout', '1', '--', 'true']) },
  { command: 'run', when: 'the requester cancels it while it waits', expected: EXIT.cancelled,
    act: async () => {
      const { id, spawned } = await waiting(['run', '--action', 'deploy.app', '--resource', 'svc://d', '--env', 'prod', '--', ...touch('ran-cancelled')])
      expect((await cli(['cancel', id])).code).toBe(EXIT.ok)
      return spawned.result
    },
    neverRuns: 'ran-cancelled' },
  { command: 'run', when: 'a bound file changes after approval (binding refused)', expected: EXIT.refused,
    act: async () => {
      const plan = join(dir, 'plan.tfplan')
      writeFileSync(plan, 'plan v1')
      const { id, spawned } = await waiting(['run', '--action', 'deploy.app', '--resource', 'svc://e', '--env', 'prod', '--bind-file', plan, '--', ...touch('ran-changed-plan')])
      writeFileSync(plan, 'plan v2, not what was approved')
      await approve(id)
      const result = await spawned.result
      expect(result.stderr).toContain('changed after it was approved')
      return result
    },
    neverRuns: 'ran-changed-plan' },
  { command: 'run', when: 'the grant redeems for another digest than the approved one (grant refused)', expected: EXIT.refused,
    act: async () => {
      const result = await cli(['run', '--action', 'tags.set', '--resource', 'i-6', '--env', 'dev', '--', ...touch('ran-forged-redemption')], tokens.agent, forgingProxyUrl)
      expect(result.stderr).toContain('binds a different action')
      return result
    },
    neverRuns: 'ran-forged-redemption' },
  { command: 'run', when: 'the gateway is unreachable', expected: EXIT.unavailable,
    act: () => cli(['run', '--action', 'tags.set', '--resource', 'i-3', '--env', 'dev', '--', ...touch('ran-offline')], tokens.agent, closedUrl),
    neverRuns: 'ran-offline' },
  { command: 'run', when: 'the command does not come after --', expected: EXIT.usage,
    act: () => cli(['run', '--action', 'tags.set', '--resource', 'i-4', '--env', 'dev', ...touch('ran-no-dashdash')]),
    neverRuns: 'ran-no-dashdash' },
  { command: 'run', when: 'there is no command at all', expected: EXIT.usage,
    act: () => cli(['run', '--action', 'tags.set', '--resource', 'i-5', '--env', 'dev', '--']) },

  // wait
  { command: 'wait', when: 'the request is approved', expected: EXIT.ok,
    act: async () => {
      const id = await pending()
      await approve(id)
      return cli(['wait', id])
    } },
  { command: 'wait', when: 'the request is denied by a reviewer', expected: EXIT.denied,
    act: async () => {
      const id = await pending()
      await deny(id)
      return cli(['wait', id])
    } },
  { command: 'wait', when: 'the request is cancelled', expected: EXIT.cancelled,
    act: async () => {
      const id = await pending()
      await cli(['cancel', id])
      return cli(['wait', id])
    } },
  { command: 'wait', when: 'the request expires', expected: EXIT.expired,
    act: async () => cli(['wait', await pending('flash.deploy')]) },
  { command: 'wait', when: '--timeout runs out while pending', expected: EXIT.expired,
    act: async () => cli(['wait', await pending(), '--timeout', '1']) },
  { command: 'wait', when: 'the gateway is unreachable', expected: EXIT.unavailable,
    act: () => cli(['wait', 'req_0000000000'], tokens.agent, closedUrl) },
  { command: 'wait', when: 'the request does not exist', expected: EXIT.failure,
    act: () => cli(['wait', 'req_0000000000']) },
  { command: 'wait', when: 'the id is missing', expected: EXIT.usage,
    act: () => cli(['wait']) },
  { command: 'wait', when: '--timeout is not a number', expected: EXIT.usage,
    act: () => cli(['wait', 'req_0000000000', '--timeout', 'soon']) },

  // approve, deny, cancel
  { command: 'approve', when: 'a reviewer approves', expected: EXIT.ok,
    act: async () => approve(await pending()) },
  { command: 'approve', when: 'the requester tries to approve its own request', expected: EXIT.failure,
    act: async () => approve(await pending(), tokens.agent) },
  { command: 'approve', when: 'the request is already decided', expected: EXIT.failure,
    act: async () => {
      const id = await pending()
      await deny(id)
      return approve(id, tokens.ron)
    } },
  { command: 'approve', when: 'the gateway is unreachable', expected: EXIT.unavailable,
    act: () => cli(['approve', 'req_0000000000'], tokens.rita, closedUrl) },
  { command: 'approve', when: 'the id is missing', expected: EXIT.usage,
    act: () => cli(['approve'], tokens.rita) },
  { command: 'approve', when: '--params is not JSON', expected: EXIT.usage,
    act: () => cli(['approve', 'req_0000000000', '--params', '[1'], tokens.rita) },
  { command: 'deny', when: 'a reviewer denies', expected: EXIT.ok,
    act: async () => deny(await pending()) },
  { command: 'deny', when: 'a stranger to the request denies it', expected: EXIT.failure,
    act: async () => deny(await pending(), tokens.admin) },
  { command: 'deny', when: '--reason is missing', expected: EXIT.usage,
    act: () => cli(['deny', 'req_0000000000'], tokens.rita) },
  { command: 'deny', when: 'the gateway is unreachable', expected: EXIT.unavailable,
    act: () => cli(['deny', 'req_0000000000', '--reason', 'no'], tokens.rita, closedUrl) },
  { command: 'cancel', when: 'the requester cancels its pending request', expected: EXIT.ok,
    act: async () => cli(['cancel', await pending()]) },
  { command: 'cancel', when: 'someone else tries to cancel it', expected: EXIT.failure,
    act: async () => cli(['cancel', await pending()], tokens.rita) },
  { command: 'cancel', when: 'the gateway is unreachable', expected: EXIT.unavailable,
    act: () => cli(['cancel', 'req_0000000000'], tokens.agent, closedUrl) },
  { command: 'cancel', when: 'an option is unknown', expected: EXIT.usage,
    act: () => cli(['cancel', 'req_0000000000', '--force']) },

  // audit verify
  { command: 'audit verify', when: 'the log is intact', expected: EXIT.ok,
    act: () => cli(['audit', 'verify', '--data-dir', dataDir]) },
  { command: 'audit verify', when: 'an entry was modified', expected: EXIT.failure,
    act: async () => {
      const copy = join(dir, 'tampered-data')
      cpSync(dataDir, copy, { recursive: true })
      const db = new DatabaseSync(join(copy, 'countersign.db'))
      db.exec(`update audit_entries set data = '{"forged":true}' where seq = 2`)
      db.close()
      return cli(['audit', 'verify', '--data-dir', copy])
    } },
  { command: 'audit verify', when: 'an option is unknown', expected: EXIT.usage,
    act: () => cli(['audit', 'verify', '--data-dir', dataDir, '--fast']) },
  { command: 'audit verify', when: '--data-dir lacks its value', expected: EXIT.usage,
    act: () => cli(['audit', 'verify', '--data-dir']) },
  { command: 'audit verify', when: 'the data directory holds no store', expected: EXIT.usage,
    act: () => cli(['audit', 'verify', '--data-dir', join(dir, 'no-such-dir')]) },

  // policy check | test | explain
  { command: 'policy check', when: 'the policy is valid', expected: EXIT.ok,
    act: () => cli(['policy', 'check', policyFile]) },
  { command: 'policy check', when: 'the policy is invalid', expected: EXIT.failure,
    act: () => cli(['policy', 'check', join(dir, 'invalid-policy.yaml')]) },
  { command: 'policy check', when: 'the file argument is missing', expected: EXIT.usage,
    act: () => cli(['policy', 'check']) },
  { command: 'policy test', when: 'every case passes', expected: EXIT.ok,
    act: () => cli(['policy', 'test', policyFile, '--tests', join(dir, 'policy.test.yaml')]) },
  { command: 'policy test', when: 'a case fails', expected: EXIT.failure,
    act: () => cli(['policy', 'test', policyFile, '--tests', join(dir, 'failing.test.yaml')]) },
  { command: 'policy test', when: '--tests is missing', expected: EXIT.usage,
    act: () => cli(['policy', 'test', policyFile]) },
  { command: 'policy explain', when: 'it evaluates a request', expected: EXIT.ok,
    act: () => cli(['policy', 'explain', policyFile, '--request', '{"action":"db.drop","resource":"t","environment":"prod"}']) },
  { command: 'policy explain', when: '--request is not JSON', expected: EXIT.usage,
    act: () => cli(['policy', 'explain', policyFile, '--request', '{action']) },
  { command: 'policy explain', when: '--now is not a time', expected: EXIT.usage,
    act: () => cli(['policy', 'explain', policyFile, '--request', '{"action":"a","resource":"r","environment":"e"}', '--now', 'later']) },
]

beforeAll(async () => {
  writeFileSync(policyFile, POLICY)
  writeFileSync(join(dir, 'invalid-policy.yaml'), 'version: 1\nrules:\n  - name: a\n    efect: allow\n')
  writeFileSync(join(dir, 'policy.test.yaml'), POLICY_TESTS)
  writeFileSync(join(dir, 'failing.test.yaml'), FAILING_POLICY_TESTS)
  closedUrl = `http://127.0.0.1:${await freePort()}`
  gateway = await startGatewayProcess(['--data-dir', dataDir, '--port', String(await freePort()), '--policy', policyFile], {}, dir)
  tokens.admin = gateway.adminToken ?? ''
  const create = async (kind: string, id: string, groups: string[] = []): Promise<string> => {
    const response = await call(gateway.url, tokens.admin, 'POST', '/v1/keys', { kind, id, groups, ...(kind === 'human' ? { email: id } : {}) })
    expect(response.status).toBe(201)
    return response.body.token as string
  }
  tokens.agent = await create('agent', 'deploy-bot')
  tokens.rita = await create('human', 'rita@example.com', ['reviewers'])
  tokens.ron = await create('human', 'ron@example.com', ['reviewers'])
  forgingProxyUrl = await startForgingProxy(gateway.url)
})

afterAll(async () => {
  await new Promise((resolve) => (forgingProxy ? forgingProxy.close(resolve) : resolve(undefined)))
  await gateway?.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('countersign exit codes against a real gateway', () => {
  it.concurrent.each(CASES.map((c) => [`${c.command} exits ${c.expected} when ${c.when}`, c] as const))('%s', async (_name, c) => {
    const result = await c.act()
    expect(result.code, `${c.command} (${c.when}):\n${result.stdout}\n${result.stderr}`).toBe(c.expected)
    if (c.neverRuns !== undefined) expect(existsSync(join(dir, c.neverRuns)), `${c.neverRuns} exists: the command ran`).toBe(false)
  }, 30_000)
})

describe('countersign run and request on the attack paths', () => {
  it('refuses `run … echo hi --env staging` without -- : no request filed, nothing run, the fix shown', async () => {
    const before = await myRequests()
    const result = await cli(['run', '--action', 'A', '--resource', 'R', '--env', 'dev', 'echo', 'hi', '--env', 'staging'])
    expect(result.code).toBe(EXIT.usage)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain('run needs the command after --')
    expect(result.stderr).toContain('countersign run --action A --resource R --env E -- CMD ARGS…')
    expect(await myRequests()).toEqual(before)
  })

  it('runs what comes after -- verbatim, its own flags included, under the env given to run', async () => {
    const result = await cli(['run', '--action', 'tags.set', '--resource', 'i-9', '--env', 'dev', '--json', '--', 'echo', 'hi', '--env', 'staging'])
    expect(result.code).toBe(EXIT.ok)
    const lines = result.stdout.split('\n')
    expect(lines[0]).toBe('hi --env staging')
    const report = JSON.parse(lines.slice(1).join('\n')) as { request: { environment: string; params: { argv: string[] } }; exit_code: number }
    expect(report.exit_code).toBe(0)
    expect(report.request.environment).toBe('dev')
    expect(report.request.params.argv).toEqual(['echo', 'hi', '--env', 'staging'])
  })

  it('reports an unreachable gateway with its cause within seconds, not after the 30 s call budget', async () => {
    const started = Date.now()
    const result = await cli(['ls'], tokens.agent, closedUrl)
    const elapsed = Date.now() - started
    expect(result.code).toBe(EXIT.unavailable)
    expect(result.stderr).toContain(`connect ECONNREFUSED ${closedUrl.replace('http://', '')}`)
    expect(result.stderr).toContain('nothing was run')
    // Generous for a loaded machine; the old behaviour took the whole 30 s budget.
    expect(elapsed).toBeLessThan(15_000)
  })

  it('reports a TLS failure at once and an unknown host with its DNS error, both exit 6', async () => {
    const tls = await cli(['ls'], tokens.agent, gateway.url.replace('http://', 'https://'))
    expect(tls.code).toBe(EXIT.unavailable)
    expect(tls.stderr).toContain('TLS handshake failed (ERR_SSL_WRONG_VERSION_NUMBER)')
    const dns = await cli(['ls'], tokens.agent, 'http://no-such-host.invalid:8080')
    expect(dns.code).toBe(EXIT.unavailable)
    expect(dns.stderr).toMatch(/getaddrinfo (ENOTFOUND|EAI_AGAIN) no-such-host\.invalid/)
  })

  it('refuses a URL without a scheme with a hint', async () => {
    const result = await cli(['ls'], tokens.agent, '127.0.0.1:8080')
    expect(result.code).toBe(EXIT.usage)
    expect(result.stderr).toContain('COUNTERSIGN_URL must start with http:// or https://, e.g. http://127.0.0.1:8080')
  })

  it('attaches a second `countersign request` of the same action to the pending one, and opens a new one with --new', async () => {
    const params = unique()
    const first = JSON.parse((await cli(['request', ...deploy(params), '--json'])).stdout) as { id: string }
    const again = await cli(['request', ...deploy(params), '--json'])
    expect(again.code).toBe(EXIT.pending)
    expect((JSON.parse(again.stdout) as { id: string }).id).toBe(first.id)
    const fresh = await cli(['request', ...deploy(params), '--json', '--new'])
    expect(fresh.code).toBe(EXIT.pending)
    expect((JSON.parse(fresh.stdout) as { id: string }).id).not.toBe(first.id)
  })

  it('leaves the request pending when run --timeout runs out, so a rerun attaches to it and runs once approved', async () => {
    const args = ['run', '--action', 'deploy.app', '--resource', 'svc://rerun', '--env', 'prod', '--timeout', '1', '--', 'echo', 'rerun ok']
    const first = await cli(args)
    expect(first.code).toBe(EXIT.expired)
    expect(first.stderr).toContain('stays pending')
    const id = /(req_\w+) pending/.exec(first.stderr)?.[1] ?? ''
    expect((await get(id)).status).toBe('pending')
    const { id: rerunId, spawned } = await waiting(args.filter((arg, i) => !(arg === '--timeout' || args[i - 1] === '--timeout')))
    expect(rerunId).toBe(id)
    await approve(id)
    const rerun = await spawned.result
    expect([rerun.code, rerun.stdout.trim()]).toEqual([EXIT.ok, 'rerun ok'])
  })

  it('cancels the pending request on Ctrl-C while run waits, exits 5 and runs nothing', async () => {
    const marker = join(dir, 'ran-interrupted')
    const { id, spawned } = await waiting(['run', '--action', 'deploy.app', '--resource', 'svc://sigint', '--env', 'prod', '--', 'sh', '-c', `touch ${marker}`])
    spawned.child.kill('SIGINT')
    const result = await spawned.result
    expect(result.code).toBe(EXIT.cancelled)
    expect(result.stderr).toContain(`cancelled ${id}`)
    expect((await get(id)).status).toBe('cancelled')
    expect(existsSync(marker)).toBe(false)
  })

  it('cancels the pending request on Ctrl-C while wait waits', async () => {
    const id = await pending()
    const spawned = spawnCli(['wait', id], env(tokens.agent), dir)
    for (let i = 0; i < 200 && !spawned.stderr().includes(`${id} pending`); i += 1) await new Promise((resolve) => setTimeout(resolve, 50))
    spawned.child.kill('SIGINT')
    expect((await spawned.result).code).toBe(EXIT.cancelled)
    expect((await get(id)).status).toBe('cancelled')
  })

  it('records CLI votes via cli and shows bound files and the policy explanation', async () => {
    const plan = join(dir, 'shown.tfplan')
    writeFileSync(plan, 'a plan')
    const { id, spawned } = await waiting(['run', '--action', 'deploy.app', '--resource', 'svc://show', '--env', 'prod', '--bind-file', plan, '--', 'true'])
    const shown = await cli(['show', id], tokens.rita)
    expect(shown.stdout).toMatch(new RegExp(`bound file: ${plan} sha256 [0-9a-f]{64}`))
    expect(shown.stdout).toContain('deploys-need-a-reviewer')
    const json = JSON.parse((await cli(['show', id, '--json'], tokens.rita)).stdout) as { bind: Array<{ path: string }> }
    expect(json.bind.map((file) => file.path)).toEqual([plan])
    await approve(id)
    expect((await spawned.result).code).toBe(EXIT.ok)
    expect((await get(id)).votes.map((vote) => vote.via)).toEqual(['cli'])
  })

  it('pages ls with --limit and a footer naming the next --cursor', async () => {
    for (let i = 0; i < 3; i += 1) await pending()
    const first = await cli(['ls', '--mine', '--limit', '2'])
    expect(first.code).toBe(EXIT.ok)
    const footer = /more: countersign ls --cursor (\S+) --limit 2/.exec(first.stdout)
    expect(footer).not.toBeNull()
    const second = await cli(['ls', '--mine', '--limit', '2', '--cursor', footer?.[1] ?? ''])
    expect(second.code).toBe(EXIT.ok)
    const ids = (text: string): string[] => [...text.matchAll(/^(req_\w+) /gm)].map((m) => m[1] ?? '')
    expect(ids(first.stdout)).toHaveLength(2)
    expect(ids(second.stdout).length).toBeGreaterThan(0)
    expect(ids(second.stdout).some((id) => ids(first.stdout).includes(id))).toBe(false)
    expect((await cli(['ls', '--limit', '0'])).code).toBe(EXIT.usage)
  })

  it('tells an old Node what to install instead of failing on node:sqlite', async () => {
    const preload = 'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"22.12.0"})'
    const result = spawnSync(process.execPath, ['--import', preload, CLI, 'ls'], { cwd: dir, encoding: 'utf8' })
    expect(result.status).toBe(EXIT.usage)
    expect(result.stderr).toContain('countersign needs Node.js 22.13 or newer')
    expect(result.stderr).not.toContain('ERR_UNKNOWN_BUILTIN_MODULE')
    expect(JSON.parse(readFileSync(join(import.meta.dirname, '../package.json'), 'utf8')).engines.node).toBe('>=22.13')
  })
})
