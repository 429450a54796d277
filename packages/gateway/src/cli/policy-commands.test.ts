import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command } from 'commander'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { exitOnUsageError } from './client-options.js'
import { registerPolicyCommands } from './policy-commands.js'

const examples = fileURLToPath(new URL('../../../../examples/', import.meta.url))
const examplePolicy = join(examples, 'policy.yaml')
const exampleTests = join(examples, 'policy.test.yaml')

interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Runs `countersign policy ...` in-process, capturing its output and exit code. */
async function countersign(...args: string[]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const program = new Command('countersign')
    .exitOverride(exitOnUsageError)
    .configureOutput({ writeOut: (text) => (stdout += text), writeErr: (text) => (stderr += text) })
  registerPolicyCommands(program)
  process.exitCode = undefined
  try {
    await program.parseAsync(args, { from: 'user' })
  } catch (error) {
    const exitCode = (error as { exitCode?: unknown }).exitCode
    if (typeof exitCode !== 'number') throw error
    process.exitCode = exitCode
  }
  const code = typeof process.exitCode === 'number' ? process.exitCode : 0
  process.exitCode = undefined
  return { code, stdout, stderr }
}

describe('countersign policy', () => {
  let dir: string

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'countersign-cli-'))
  })

  afterEach(async () => {
    process.exitCode = undefined
    await rm(dir, { recursive: true, force: true })
  })

  async function file(name: string, text: string): Promise<string> {
    const path = join(dir, name)
    await writeFile(path, text)
    return path
  }

  describe('check', () => {
    it('prints one line and exits 0 for a valid policy', async () => {
      const run = await countersign('policy', 'check', examplePolicy)
      expect(run.code).toBe(0)
      expect(run.stderr).toBe('')
      expect(run.stdout).toMatch(/^.*policy\.yaml: valid \(\d+ rules, 4 risk rules, sha256 [0-9a-f]{64}\)\n$/)
    })

    it('prints every error as file:line:col: message on stderr and exits 1', async () => {
      const path = await file(
        'bad.yaml',
        ['version: 1', 'rules:', '  - name: a', '    efect: allow', '  - name: b', "    when: 'risk >'", '    effect: deny', ''].join(
          '\n',
        ),
      )
      const run = await countersign('policy', 'check', path)
      expect(run.code).toBe(1)
      expect(run.stdout).toBe('')
      expect(run.stderr.trimEnd().split('\n')).toEqual([
        `${path}:3:5: rules[0] is missing the required key "effect"`,
        `${path}:4:5: unknown key "efect" in rules[0]; allowed keys: name, description, match, when, effect, review, redact`,
        `${path}:6:18: invalid CEL in rules[1].when: Unexpected token: EOF`,
      ])
    })

    it('reports a file that cannot be read', async () => {
      const missing = join(dir, 'nope.yaml')
      const run = await countersign('policy', 'check', missing)
      expect(run.code).toBe(1)
      expect(run.stderr).toBe(`${missing}:1:1: cannot read the file (ENOENT)\n`)
    })
  })

  describe('test', () => {
    it('prints PASS for each case of the example tests and exits 0', async () => {
      const run = await countersign('policy', 'test', examplePolicy, '--tests', exampleTests)
      expect(run.code).toBe(0)
      const lines = run.stdout.trimEnd().split('\n')
      expect(lines.slice(0, -1).every((line) => line.startsWith('PASS '))).toBe(true)
      expect(lines.at(-1)).toBe(`${lines.length - 1} cases passed, 0 failed`)
    })

    it('prints FAIL with the reason and exits 1 when a case fails', async () => {
      const tests = await file(
        'tests.yaml',
        [
          '- name: tags are free',
          '  request: { action: cloud.tags.set, resource: i-1, environment: dev }',
          '  principal: { id: bot, kind: agent }',
          '  expect: { effect: allow }',
          '- name: ssh is wrongly expected to pass',
          '  request: { action: ssh.exec, resource: bastion, environment: prod }',
          '  principal: { id: bot, kind: agent }',
          '  expect: { effect: allow }',
          '',
        ].join('\n'),
      )
      const run = await countersign('policy', 'test', examplePolicy, '--tests', tests)
      expect(run.code).toBe(1)
      expect(run.stdout.split('\n')).toEqual([
        'PASS tags are free',
        'FAIL ssh is wrongly expected to pass: expected effect allow, got deny (decision: deny, because no rule matched and defaults.effect is deny)',
        '1 case passed, 1 failed',
        '',
      ])
    })

    it('reports an invalid test file with file:line:col and exits 2, a usage error', async () => {
      const tests = await file('tests.yaml', '- name: x\n  expect: { effect: maybe }\n')
      const run = await countersign('policy', 'test', examplePolicy, '--tests', tests)
      expect(run.code).toBe(2)
      expect(run.stderr).toContain(`${tests}:1:3: [0] is missing the required key "request"`)
      expect(run.stderr).toContain(`${tests}:2:21: [0].expect.effect must be one of "allow", "deny", "review", not "maybe"`)
    })

    it('requires --tests, exiting 2 like every usage error', async () => {
      const run = await countersign('policy', 'test', examplePolicy)
      expect(run.code).toBe(2)
      expect(run.stderr).toContain("required option '--tests <file>' not specified")
    })
  })

  describe('explain', () => {
    const exportRequest = JSON.stringify({
      action: 'db.export',
      resource: 'customers',
      environment: 'prod',
      params: { filter: { email: 'dana@example.com' } },
    })

    it('prints the evaluation of an inline request as JSON', async () => {
      const run = await countersign('policy', 'explain', examplePolicy, '--request', exportRequest, '--now', '2026-03-02T10:00:00Z')
      expect(run.code).toBe(0)
      const evaluation = JSON.parse(run.stdout) as Record<string, unknown>
      expect(evaluation).toMatchObject({
        effect: 'review',
        matched_rules: [{ name: 'prod-export-needs-two-owners', effect: 'review' }],
        risk: 60,
        redacted: { params: { filter: { email: '[redacted:params.filter.email]' } }, context: {} },
      })
      expect(evaluation['explain']).toContain('risk score is 60')
    })

    it('prints every name in snake_case, as the API does', async () => {
      const run = await countersign('policy', 'explain', examplePolicy, '--request', exportRequest, '--now', '2026-03-02T10:00:00Z')
      const evaluation = JSON.parse(run.stdout) as Record<string, unknown>
      expect(evaluation).toMatchObject({
        policy_sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
        review: { timeout_ms: 30 * 60_000, on_timeout: 'deny', require_reason: true, allow_edit: true, escalate_after_ms: 10 * 60_000 },
      })
      expect(run.stdout).not.toMatch(/"[a-z0-9]+[A-Z][A-Za-z0-9]*":/)
    })

    it('reads the request and principal from files given as @path', async () => {
      const request = await file('request.json', exportRequest)
      const principal = await file(
        'principal.yaml',
        'id: analytics-agent\nkind: agent\non_behalf_of: { id: eve@example.com, verified: true }\n',
      )
      const run = await countersign('policy', 'explain', examplePolicy, '--request', `@${request}`, '--principal', `@${principal}`)
      expect(run.code).toBe(0)
      expect((JSON.parse(run.stdout) as { risk: number }).risk).toBe(40)
    })

    it('rejects a request that is not JSON with a clear error', async () => {
      const run = await countersign('policy', 'explain', examplePolicy, '--request', '{action: db.export')
      expect(run.code).toBe(2)
      expect(run.stdout).toBe('')
      expect(run.stderr).toMatch(/^error: --request is not valid JSON \(.+\); pass a JSON object or @path\/to\/file\.json\n$/)
    })

    it('rejects a request that lacks required fields', async () => {
      const run = await countersign('policy', 'explain', examplePolicy, '--request', '{"action":"db.export"}')
      expect(run.code).toBe(2)
      expect(run.stderr.trimEnd().split('\n')).toEqual([
        '--request:1:1: the top level is missing the required key "resource"',
        '--request:1:1: the top level is missing the required key "environment"',
      ])
    })

    it('rejects a principal of an unknown kind', async () => {
      const run = await countersign(
        'policy',
        'explain',
        examplePolicy,
        '--request',
        exportRequest,
        '--principal',
        '{"id":"x","kind":"robot"}',
      )
      expect(run.code).toBe(2)
      expect(run.stderr).toBe('--principal:1:18: kind must be one of "human", "agent", "service", not "robot"\n')
    })

    it('rejects a --now that is not a time', async () => {
      const run = await countersign('policy', 'explain', examplePolicy, '--request', exportRequest, '--now', 'yesterday')
      expect(run.code).toBe(2)
      expect(run.stderr).toContain('error: --now must be an ISO 8601 time')
    })

    it('reports a request file that cannot be read', async () => {
      const run = await countersign('policy', 'explain', examplePolicy, '--request', `@${join(dir, 'missing.json')}`)
      expect(run.code).toBe(2)
      expect(run.stderr).toMatch(/^error: cannot read .*missing\.json \(ENOENT\); check the path\n$/)
    })
  })
})
