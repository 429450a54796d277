import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { compilePolicy, runPolicyTests } from './index.js'

const examples = fileURLToPath(new URL('../../../../examples/', import.meta.url))
const NOW = Date.parse('2026-03-02T10:00:00Z')

const policy = compilePolicy(
  [
    'version: 1',
    'groups: { data-owners: [dana@example.com, omar@example.com, priya@example.com] }',
    'rules:',
    '  - name: prod-export',
    '    match: { action: db.export, environment: prod }',
    '    effect: review',
    '    review: { approvers: ["group:data-owners"], quorum: 2 }',
    '    redact: [params.filter.email]',
    '',
  ].join('\n'),
  'policy.yaml',
)

const exportCase = (expect: string): string =>
  [
    '- name: prod export',
    '  request: { action: db.export, resource: customers, environment: prod, params: { filter: { email: a@b.co } } }',
    '  principal: { id: bot, kind: agent }',
    `  expect: ${expect}`,
    '',
  ].join('\n')

describe('runPolicyTests', () => {
  it('passes every case of the example policy tests', () => {
    const text = readFileSync(`${examples}policy.yaml`, 'utf8')
    const tests = readFileSync(`${examples}policy.test.yaml`, 'utf8')
    const results = runPolicyTests(compilePolicy(text, 'policy.yaml'), tests, 'policy.test.yaml', NOW)
    expect(results.filter((result) => !result.passed)).toEqual([])
    expect(results.length).toBeGreaterThanOrEqual(7)
  })

  it('keeps db.export in prod a two-owner review in the example policy', () => {
    const text = readFileSync(`${examples}policy.yaml`, 'utf8')
    const example = compilePolicy(text, 'policy.yaml')
    expect(example.groups.get('data-owners')?.length).toBeGreaterThanOrEqual(3)
    const [result] = runPolicyTests(
      example,
      exportCase('{ effect: review, quorum: 2, approvers: ["group:data-owners"] }'),
      't.yaml',
      NOW,
    )
    expect(result?.failures).toEqual([])
  })

  it('passes a case whose expectations all hold', () => {
    const [result] = runPolicyTests(
      policy,
      exportCase(
        '{ effect: review, quorum: 2, approvers: ["group:data-owners"], risk_at_least: 0, matched: [prod-export], redacted: { params.filter.email: "[redacted:params.filter.email]" } }',
      ),
      't.yaml',
      NOW,
    )
    expect(result).toMatchObject({ name: 'prod export', passed: true, failures: [] })
  })

  it('explains every unmet expectation of a failing case', () => {
    const [result] = runPolicyTests(
      policy,
      exportCase(
        '{ effect: allow, quorum: 3, approvers: ["group:sre"], risk_at_least: 50, matched: [other], redacted: { params.filter.email: a@b.co } }',
      ),
      't.yaml',
      NOW,
    )
    expect(result?.passed).toBe(false)
    expect(result?.failures).toEqual([
      'expected effect allow, got review (decision: review, required by rule "prod-export")',
      'expected quorum 3, got 2',
      'expected approvers [group:sre], got [group:data-owners]',
      'expected risk of at least 50, got 0',
      'expected matched rules [other], got [prod-export]',
      'expected redacted params.filter.email to be "a@b.co", got "[redacted:params.filter.email]"',
    ])
  })

  it('says so when a quorum is expected but no review applies', () => {
    const [result] = runPolicyTests(
      policy,
      exportCase('{ effect: deny, quorum: 1 }').replace('environment: prod', 'environment: dev'),
      't.yaml',
      NOW,
    )
    expect(result?.failures).toEqual(['expected quorum 1, but no review applies'])
  })

  it('uses the case time when it gives one', () => {
    const timed = compilePolicy(
      'version: 1\nrules:\n  - { name: after, when: \'now > timestamp("2030-01-01T00:00:00Z")\', effect: allow }\n',
      'policy.yaml',
    )
    const cases = [
      '- name: later',
      '  request: { action: a, resource: r, environment: e }',
      '  principal: { id: bot, kind: agent }',
      '  now: "2031-01-01T00:00:00Z"',
      '  expect: { effect: allow }',
      '- name: default time',
      '  request: { action: a, resource: r, environment: e }',
      '  principal: { id: bot, kind: agent }',
      '  expect: { effect: deny }',
    ].join('\n')
    expect(runPolicyTests(timed, cases, 't.yaml', NOW).map((result) => result.passed)).toEqual([true, true])
  })

  it('rejects an invalid test file with every problem located', () => {
    const cases = [
      '- name: typo',
      '  request: { action: a, resource: r, enviroment: e }',
      '  principal: { id: bot, kind: robot }',
      '  expect: { effect: allow }',
    ].join('\n')
    expect(() => runPolicyTests(policy, cases, 't.yaml', NOW)).toThrow(
      expect.objectContaining({
        code: 'invalid_request',
        details: expect.objectContaining({
          errors: [
            { file: 't.yaml', line: 2, col: 12, message: '[0].request is missing the required key "environment"' },
            {
              file: 't.yaml',
              line: 2,
              col: 38,
              message:
                'unknown key "enviroment" in [0].request; allowed keys: action, resource, environment, params, reason, context',
            },
            {
              file: 't.yaml',
              line: 3,
              col: 31,
              message: '[0].principal.kind must be one of "human", "agent", "service", not "robot"',
            },
          ],
        }),
      }),
    )
  })
})
