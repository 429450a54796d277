import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { LocalError } from '../core/index.js'
import { compilePolicy, validatePolicy } from './index.js'
import type { PolicyDiagnostic } from './index.js'

const FILE = 'policy.yaml'

/** Joins lines so tests can count line numbers at a glance. */
function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`
}

function diagnostics(text: string): PolicyDiagnostic[] {
  return validatePolicy(text, FILE)
}

function only(text: string): PolicyDiagnostic {
  const found = diagnostics(text)
  expect(found).toHaveLength(1)
  return found[0] as PolicyDiagnostic
}

describe('compilePolicy', () => {
  it('compiles a valid policy and records the SHA-256 of its text', () => {
    const text = yaml(
      'version: 1',
      'rules:',
      '  - name: tags-are-free',
      '    match: { action: "cloud.tags.*" }',
      '    effect: allow',
    )
    const policy = compilePolicy(text, FILE)
    expect(policy.sha256).toBe(createHash('sha256').update(text).digest('hex'))
    expect(policy.rules.map((rule) => rule.name)).toEqual(['tags-are-free'])
    expect(policy.defaultEffect).toBe('deny')
  })

  it('reports a broken CEL condition, an unknown key and an unknown group together, each at its line and column', () => {
    const text = yaml(
      'version: 1',
      'groups:',
      '  sre: [sam@example.com]',
      'rules:',
      '  - name: prod-deploys',
      '    match: { action: "deploy.*", environment: prod }',
      "    when: 'request.params.replicas >'",
      '    effect: review',
      '    review:',
      '      approvers: ["group:oncall"]',
      '      quorum: 1',
      '      timout: 10m',
    )
    const found = diagnostics(text)
    expect(found.map(({ line, col }) => [line, col])).toEqual([
      [7, 37],
      [10, 19],
      [12, 7],
    ])
    expect(found[0]?.message).toBe('invalid CEL in rules[0].when: Unexpected token: EOF')
    expect(found[1]?.message).toBe(
      'unknown group "oncall" in rules[0].review.approvers[0]; list its members under groups, or declare it in idp_groups if your identity provider supplies it',
    )
    expect(found[2]?.message).toBe(
      'unknown key "timout" in rules[0].review; allowed keys: approvers, quorum, deny_quorum, timeout, on_timeout, require_reason, allow_edit, fresh_auth, escalate, notify',
    )
    expect(found.every((diagnostic) => diagnostic.file === FILE)).toBe(true)
  })

  it('refuses an invalid policy with policy_invalid and every error in details', () => {
    const text = yaml('version: 2', 'rules:', '  - name: a', '    effect: permit')
    let thrown: unknown
    try {
      compilePolicy(text, FILE)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(LocalError)
    const error = thrown as LocalError
    expect(error.code).toBe('policy_invalid')
    expect(error.message).toContain('Policy policy.yaml is invalid (2 errors)')
    expect(error.message).toContain('policy.yaml:1:10: version must be 1, not 2')
    expect(error.details['errors']).toEqual([
      { file: FILE, line: 1, col: 10, message: 'version must be 1, not 2' },
      { file: FILE, line: 4, col: 13, message: 'rules[0].effect must be one of "allow", "deny", "review", not "permit"' },
    ])
  })

  it('points a CEL error inside a double-quoted expression at the offending character', () => {
    const found = only(
      yaml('version: 1', 'rules:', '  - name: a', '    when: "request.environment == \\"prod\\" && nope"', '    effect: deny'),
    )
    expect(found.message).toBe('invalid CEL in rules[0].when: Unknown variable: nope')
    expect([found.line, found.col]).toEqual([4, 47])
  })

  it('points a CEL error inside a block scalar at its line in the file', () => {
    const found = only(
      yaml(
        'version: 1',
        'rules:',
        '  - name: a',
        '    when: |',
        '      request.environment == "prod" &&',
        '        requester.kind = "agent"',
        '    effect: deny',
      ),
    )
    expect(found.line).toBe(6)
    expect(found.message).toMatch(/^invalid CEL in rules\[0\]\.when: /)
  })

  it('rejects a condition that does not produce a bool', () => {
    const found = only(yaml('version: 1', 'rules:', '  - name: a', '    when: request.action.size()', '    effect: deny'))
    expect(found.message).toBe('invalid CEL in rules[0].when: condition must evaluate to a bool, but this one gives int')
  })

  it('rejects a risk condition that uses risk, which it is computing', () => {
    const found = only(yaml('version: 1', 'risk:', '  - { when: "risk > 10", add: 5 }'))
    expect(found.message).toBe(
      'invalid CEL in risk[0].when: Unknown variable: risk; risk conditions cannot use `risk`, they compute it',
    )
    expect([found.line, found.col]).toEqual([3, 14])
  })

  it('accepts every documented CEL variable', () => {
    const text = yaml(
      'version: 1',
      'rules:',
      '  - name: all-variables',
      '    when: >-',
      '      request.action == "x" && requester.kind == "human" && on_behalf_of == null',
      '      && risk >= 0 && now > timestamp("2020-01-01T00:00:00Z")',
      '    effect: deny',
    )
    expect(diagnostics(text)).toEqual([])
  })

  it('reports a review rule without a review block', () => {
    const found = only(yaml('version: 1', 'rules:', '  - name: needs-people', '    effect: review'))
    expect(found.message).toBe(
      'rule "needs-people" has effect review but no review block; add review: { approvers: [...] } to say who approves',
    )
    expect([found.line, found.col]).toEqual([4, 13])
  })

  it('reports a review block on a rule that does not review', () => {
    const found = only(
      yaml('version: 1', 'rules:', '  - name: free', '    effect: allow', '    review: { approvers: [dana@example.com] }'),
    )
    expect(found.message).toBe('rule "free" has a review block but its effect is allow; set effect: review or remove the block')
    expect([found.line, found.col]).toEqual([5, 5])
  })

  it('reports a duplicate rule name at its second use', () => {
    const found = only(
      yaml('version: 1', 'rules:', '  - name: same', '    effect: allow', '  - name: same', '    effect: deny'),
    )
    expect(found.message).toBe('duplicate rule name "same" (first used on line 3); rule names must be unique')
    expect([found.line, found.col]).toEqual([5, 11])
  })

  it('reports bad durations in defaults, timeout, fresh_auth and escalate.after', () => {
    const found = diagnostics(
      yaml(
        'version: 1',
        'defaults: { review: { timeout: soon } }',
        'rules:',
        '  - name: r',
        '    effect: review',
        '    review:',
        '      approvers: [dana@example.com]',
        '      timeout: 15 minutes',
        '      fresh_auth: 0m',
        '      escalate: { after: 5x, to: [omar@example.com] }',
      ),
    )
    expect(found.map((diagnostic) => diagnostic.message)).toEqual([
      'defaults.review.timeout is not a valid duration: "soon"; write whole numbers with units d, h, m, s, largest first, e.g. 30s, 15m, 1h30m',
      'rules[0].review.timeout is not a valid duration: "15 minutes"; write whole numbers with units d, h, m, s, largest first, e.g. 30s, 15m, 1h30m',
      'rules[0].review.fresh_auth is not a valid duration: "0m"; write whole numbers with units d, h, m, s, largest first, e.g. 30s, 15m, 1h30m',
      'rules[0].review.escalate.after is not a valid duration: "5x"; write whole numbers with units d, h, m, s, largest first, e.g. 30s, 15m, 1h30m',
    ])
  })

  it('reports an escalation that would come after the review times out', () => {
    const found = only(
      yaml(
        'version: 1',
        'defaults: { review: { timeout: 10m } }',
        'rules:',
        '  - name: r',
        '    effect: review',
        '    review: { approvers: [dana@example.com], escalate: { after: 10m, to: [omar@example.com] } }',
      ),
    )
    expect(found.message).toBe(
      'rules[0].review.escalate.after (10m) is not shorter than the review timeout (10m), so escalation would never happen; shorten it or lengthen the timeout',
    )
  })

  it('reports a quorum larger than the distinct people the approvers name', () => {
    const found = only(
      yaml(
        'version: 1',
        'groups:',
        '  data-owners: [dana@example.com, omar@example.com]',
        '  dba: [Omar@example.com]',
        'rules:',
        '  - name: r',
        '    effect: review',
        '    review: { approvers: ["group:data-owners", "group:dba", dana@example.com], quorum: 3 }',
      ),
    )
    expect(found.message).toBe(
      'rules[0].review.quorum is 3, but the approvers (group:data-owners, group:dba, dana@example.com) have only 2 distinct members, so the request could never be approved; lower it or add approvers',
    )
    expect([found.line, found.col]).toEqual([8, 88])
  })

  it('reports a deny quorum that no set of approvers could reach', () => {
    const found = only(
      yaml(
        'version: 1',
        'rules:',
        '  - name: r',
        '    effect: review',
        '    review: { approvers: [dana@example.com], deny_quorum: 2 }',
      ),
    )
    expect(found.message).toContain('deny_quorum is 2, but the approvers (dana@example.com) have only 1 distinct member, so reviewers could never deny it')
  })

  it('does not judge a quorum that involves a group from the identity provider', () => {
    const text = yaml(
      'version: 1',
      'idp_groups: [sre]',
      'rules:',
      '  - name: r',
      '    effect: review',
      '    review: { approvers: ["group:sre"], quorum: 5, escalate: { after: 5m, to: ["group:sre"] } }',
    )
    expect(diagnostics(text)).toEqual([])
  })

  it('reports an unknown group named as an escalation target', () => {
    const found = only(
      yaml(
        'version: 1',
        'rules:',
        '  - name: r',
        '    effect: review',
        '    review: { approvers: [dana@example.com], escalate: { after: 5m, to: ["group:security"] } }',
      ),
    )
    expect(found.message).toMatch(/^unknown group "security" in rules\[0\]\.review\.escalate\.to\[0\]/)
  })

  it('reports a group declared both in groups and idp_groups', () => {
    const found = only(yaml('version: 1', 'groups: { sre: [sam@example.com] }', 'idp_groups: [sre]'))
    expect(found.message).toBe(
      'group "sre" is both listed under groups and declared in idp_groups; keep one, so its membership has one source',
    )
  })

  it('reports a missing required key at the mapping that lacks it', () => {
    const found = only(yaml('version: 1', 'rules:', '  - name: no-effect', '    match: { action: x }'))
    expect(found.message).toBe('rules[0] is missing the required key "effect"')
    expect([found.line, found.col]).toEqual([3, 5])
  })

  it('reports unknown top-level keys with the keys that are allowed', () => {
    const found = only(yaml('version: 1', 'rule: []'))
    expect(found.message).toBe(
      'unknown key "rule" at the top level; allowed keys: version, defaults, groups, idp_groups, risk, rules',
    )
    expect([found.line, found.col]).toEqual([2, 1])
  })

  it('reports a bad entry inside a list of globs', () => {
    const found = only(yaml('version: 1', 'rules:', '  - name: r', '    match: { environment: [prod, 3] }', '    effect: deny'))
    expect(found.message).toBe('rules[0].match.environment[1] must be a string, not 3')
  })

  it('reports a redaction path outside params and context', () => {
    const found = only(yaml('version: 1', 'rules:', '  - name: r', '    effect: allow', '    redact: [filter.email]'))
    expect(found.message).toMatch(/^rules\[0\]\.redact\[0\] is not a redaction path: "filter\.email"/)
  })

  it('reports YAML syntax errors such as duplicate keys', () => {
    const found = only(yaml('version: 1', 'rules: []', 'rules: []'))
    expect(found.message).toBe('YAML syntax error: Map keys must be unique')
    expect(found.line).toBe(3)
  })

  it('reports an empty file as missing its version', () => {
    expect(diagnostics('')).toEqual([{ file: FILE, line: 1, col: 1, message: 'the document must be a mapping, not empty' }])
  })
})
