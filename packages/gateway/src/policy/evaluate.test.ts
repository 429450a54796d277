import { describe, expect, it } from 'vitest'
import type { ActionRequestInput, Principal } from '../core/index.js'
import { compilePolicy, evaluate } from './index.js'
import type { CompiledPolicy } from './index.js'
import { candidatePositions } from './rule-index.js'

const NOW = Date.parse('2026-03-02T10:00:00Z')

const agent: Principal = { id: 'export-bot', kind: 'agent', displayName: 'Export bot', groups: [] }
const dana: Principal = {
  id: 'dana@example.com',
  kind: 'human',
  displayName: 'Dana',
  email: 'dana@example.com',
  groups: ['engineering'],
}

function request(overrides: Partial<ActionRequestInput> = {}): ActionRequestInput {
  return { action: 'db.export', resource: 'customers', environment: 'prod', params: {}, ...overrides }
}

function policy(...lines: string[]): CompiledPolicy {
  return compilePolicy(`version: 1\n${lines.join('\n')}\n`, 'policy.yaml')
}

describe('evaluate', () => {
  it('denies by default when no rule matches and defaults.effect is unset', () => {
    const result = evaluate(policy('rules: []'), request(), agent, NOW)
    expect(result.effect).toBe('deny')
    expect(result.matchedRules).toEqual([])
    expect(result.explain.at(-1)).toBe('decision: deny, because no rule matched and defaults.effect is deny')
  })

  it('uses defaults.effect when no rule matches', () => {
    expect(evaluate(policy('defaults: { effect: allow }'), request(), agent, NOW).effect).toBe('allow')
  })

  it('allows when an allow rule matches', () => {
    const result = evaluate(
      policy('rules:', '  - { name: tags, match: { action: "cloud.tags.*" }, effect: allow }'),
      request({ action: 'cloud.tags.set' }),
      agent,
      NOW,
    )
    expect(result.effect).toBe('allow')
    expect(result.matchedRules).toEqual([{ name: 'tags', effect: 'allow' }])
    expect(result.review).toBeNull()
  })

  it('lets any deny win over allow and review rules that also match', () => {
    const result = evaluate(
      policy(
        'rules:',
        '  - { name: exports-ok, match: { action: db.export }, effect: allow }',
        '  - { name: prod-review, match: { environment: prod }, effect: review, review: { approvers: [dana@example.com] } }',
        '  - { name: no-customers, match: { resource: customers }, effect: deny }',
      ),
      request(),
      agent,
      NOW,
    )
    expect(result.effect).toBe('deny')
    expect(result.matchedRules.map((rule) => rule.name)).toEqual(['exports-ok', 'prod-review', 'no-customers'])
    expect(result.review).toBeNull()
    expect(result.explain.at(-1)).toBe('decision: deny, because rule "no-customers" denies and deny wins')
  })

  it('requires review over a matching allow', () => {
    const result = evaluate(
      policy(
        'rules:',
        '  - { name: exports-ok, match: { action: "db.*" }, effect: allow }',
        '  - { name: prod-review, match: { environment: prod }, effect: review, review: { approvers: [dana@example.com] } }',
      ),
      request(),
      agent,
      NOW,
    )
    expect(result.effect).toBe('review')
  })

  it('applies every matching review rule and merges their options strictly', () => {
    const result = evaluate(
      policy(
        'defaults: { review: { timeout: 1h } }',
        'groups: { data-owners: [dana@example.com, omar@example.com], security: [sofia@example.com] }',
        'rules:',
        '  - name: owners',
        '    match: { action: db.export }',
        '    effect: review',
        '    review:',
        '      approvers: ["group:data-owners"]',
        '      quorum: 2',
        '      timeout: 30m',
        '      allow_edit: true',
        '      fresh_auth: 10m',
        '      escalate: { after: 20m, to: ["group:security"] }',
        '      notify: [slack-data]',
        '  - name: security',
        '    match: { environment: prod }',
        '    effect: review',
        '    review:',
        '      approvers: ["group:security", lee@example.com]',
        '      deny_quorum: 2',
        '      on_timeout: expire',
        '      require_reason: true',
        '      fresh_auth: 5m',
        '      escalate: { after: 10m, to: [ciso@example.com] }',
        '      notify: [slack-security, slack-data]',
      ),
      request(),
      agent,
      NOW,
    )
    expect(result.effect).toBe('review')
    expect(result.review).toEqual({
      requirements: [
        { rule: 'owners', approvers: ['group:data-owners'], quorum: 2, denyQuorum: 1 },
        { rule: 'security', approvers: ['group:security', 'lee@example.com'], quorum: 1, denyQuorum: 2 },
      ],
      timeoutMs: 30 * 60_000,
      onTimeout: 'deny',
      requireReason: true,
      allowEdit: false,
      freshAuthMs: 5 * 60_000,
      escalateAfterMs: 10 * 60_000,
      escalateTo: ['group:security', 'ciso@example.com'],
      notify: ['slack-data', 'slack-security'],
      policyGroups: { 'data-owners': ['dana@example.com', 'omar@example.com'], security: ['sofia@example.com'] },
    })
  })

  it('fills review defaults from defaults.review and built-in defaults', () => {
    const result = evaluate(
      policy(
        'defaults: { review: { on_timeout: expire } }',
        'rules:',
        '  - { name: r, effect: review, review: { approvers: [dana@example.com] } }',
      ),
      request(),
      agent,
      NOW,
    )
    expect(result.review).toMatchObject({ timeoutMs: 15 * 60_000, onTimeout: 'expire', allowEdit: false, notify: [] })
    expect(result.review?.freshAuthMs).toBeUndefined()
    expect(result.review?.escalateAfterMs).toBeUndefined()
    expect(result.review?.escalateTo).toEqual([])
  })

  it('gives the request lifecycle the requirements in the shape it stores', () => {
    const result = evaluate(
      policy(
        'groups: { sre: [sam@example.com] }',
        'rules:',
        '  - name: r',
        '    effect: review',
        '    review: { approvers: ["group:sre"], escalate: { after: 5m, to: [lee@example.com] } }',
      ),
      request(),
      agent,
      NOW,
    )
    expect(result.review).toEqual({
      requirements: [{ rule: 'r', approvers: ['group:sre'], quorum: 1, denyQuorum: 1 }],
      allowEdit: false,
      requireReason: false,
      escalateTo: ['lee@example.com'],
      notify: [],
      onTimeout: 'deny',
      policyGroups: { sre: ['sam@example.com'] },
      timeoutMs: 15 * 60_000,
      escalateAfterMs: 5 * 60_000,
    })
  })

  it('scores risk before rules and exposes it to their conditions', () => {
    const compiled = policy(
      'risk:',
      '  - { when: request.environment == "prod", add: 40 }',
      '  - { when: requester.kind == "agent", add: 30 }',
      'rules:',
      '  - { name: risky, when: risk >= 70, effect: deny }',
      '  - { name: fine, effect: allow }',
    )
    const byAgent = evaluate(compiled, request(), agent, NOW)
    expect(byAgent.risk).toBe(70)
    expect(byAgent.effect).toBe('deny')
    const byHuman = evaluate(compiled, request(), dana, NOW)
    expect(byHuman.risk).toBe(40)
    expect(byHuman.effect).toBe('allow')
    expect(byHuman.explain).toContain('rule "risky" matches the action but its when is false')
  })

  it('caps the risk score at 100 and floors it at 0', () => {
    const high = policy('risk:', '  - { when: "true", add: 80 }', '  - { when: "true", add: 80 }')
    expect(evaluate(high, request(), agent, NOW).risk).toBe(100)
    const low = policy('risk:', '  - { when: "true", add: -30 }')
    expect(evaluate(low, request(), agent, NOW).risk).toBe(0)
  })

  it('counts a failing risk condition that adds risk, and skips one that would lower it', () => {
    const compiled = policy(
      'risk:',
      '  - { when: "request.params.rows > 1000", add: 30 }',
      '  - { when: "request.params.trusted", add: -20 }',
    )
    const result = evaluate(compiled, request(), agent, NOW)
    expect(result.risk).toBe(30)
    expect(result.explain[0]).toMatch(/^risk\[0\] could not be evaluated \(No such key: rows\); added 30 anyway to fail closed$/)
    expect(result.explain[1]).toMatch(/^risk\[1\] could not be evaluated .*; did not apply its -20 to fail closed$/)
  })

  it('treats a deny rule whose condition fails to evaluate as matching', () => {
    const result = evaluate(
      policy('defaults: { effect: allow }', 'rules:', '  - { name: big, when: "request.params.rows > 1000", effect: deny }'),
      request(),
      agent,
      NOW,
    )
    expect(result.effect).toBe('deny')
    expect(result.explain).toContain(
      'rule "big": when could not be evaluated (No such key: rows); treated as matching, because a deny rule fails closed',
    )
  })

  it('treats a review rule whose condition fails to evaluate as matching', () => {
    const result = evaluate(
      policy('rules:', '  - { name: big, when: "request.params.rows > 1000", effect: review, review: { approvers: [a@b.co] } }'),
      request(),
      agent,
      NOW,
    )
    expect(result.effect).toBe('review')
  })

  it('treats an allow rule whose condition fails to evaluate as not matching', () => {
    const result = evaluate(
      policy('rules:', '  - { name: small, when: "request.params.rows < 1000", effect: allow }'),
      request(),
      agent,
      NOW,
    )
    expect(result.effect).toBe('deny')
    expect(result.matchedRules).toEqual([])
    expect(result.explain).toContain(
      'rule "small": when could not be evaluated (No such key: rows); treated as not matching, because an allow rule fails closed',
    )
  })

  it('compares whole-number params as CEL ints and fractional ones as doubles', () => {
    const compiled = policy(
      'rules:',
      '  - { name: many, when: "request.params.rows > 1000", effect: deny }',
      '  - { name: ratio, when: "request.params.ratio < 0.5", effect: deny }',
      '  - { name: nested, when: "request.params.batches.exists(b, b.size == 3)", effect: deny }',
    )
    const matched = (params: Record<string, unknown>): string[] =>
      evaluate(compiled, request({ params }), agent, NOW).matchedRules.map((rule) => rule.name)
    expect(matched({ rows: 5000, ratio: 0.9, batches: [{ size: 1 }] })).toEqual(['many'])
    expect(matched({ rows: 10, ratio: 0.25, batches: [{ size: 3 }] })).toEqual(['ratio', 'nested'])
  })

  it('exposes the requester, the human it acts for and the time to conditions', () => {
    const compiled = policy(
      'rules:',
      '  - name: for-dana',
      '    when: on_behalf_of != null && on_behalf_of.id == "dana@example.com" && on_behalf_of.verified',
      '    effect: allow',
      '  - name: engineers-by-day',
      '    when: \'"engineering" in requester.groups && requester.email.endsWith("@example.com") && now.getHours("UTC") >= 9\'',
      '    effect: allow',
    )
    const onBehalf: Principal = { ...agent, onBehalfOf: { id: 'dana@example.com', verified: true } }
    expect(evaluate(compiled, request(), onBehalf, NOW).matchedRules.map((rule) => rule.name)).toEqual(['for-dana'])
    expect(evaluate(compiled, request(), dana, NOW).matchedRules.map((rule) => rule.name)).toEqual(['engineers-by-day'])
    expect(evaluate(compiled, request(), dana, Date.parse('2026-03-02T08:00:00Z')).effect).toBe('deny')
  })

  it('matches globs where * spans any characters, dots included', () => {
    const compiled = policy(
      'rules:',
      '  - { name: db, match: { action: "db.*" }, effect: allow }',
      '  - { name: exports, match: { action: "*.export" }, effect: allow }',
      '  - { name: envs, match: { environment: [dev, "staging-*"] }, effect: allow }',
    )
    const matched = (overrides: Partial<ActionRequestInput>): string[] =>
      evaluate(compiled, request(overrides), agent, NOW).matchedRules.map((rule) => rule.name)
    expect(matched({ action: 'db.export' })).toEqual(['db', 'exports'])
    expect(matched({ action: 'db.export.full' })).toEqual(['db'])
    expect(matched({ action: 'dbx.export' })).toEqual(['exports'])
    expect(matched({ action: 'db' })).toEqual([])
    expect(matched({ action: 'files.read', environment: 'staging-eu' })).toEqual(['envs'])
    expect(matched({ action: 'files.read', environment: 'Dev' })).toEqual([])
  })

  it('redacts params and context with the paths of every matching rule and the built-in detectors', () => {
    const compiled = policy(
      'rules:',
      '  - { name: a, match: { action: db.export }, effect: allow, redact: [params.filter.email] }',
      '  - { name: b, match: { environment: prod }, effect: allow, redact: [context.ticket] }',
      '  - { name: c, match: { environment: dev }, effect: allow, redact: [params.table] }',
    )
    const input = request({
      params: { table: 'customers', filter: { email: 'x@example.com' }, dsn: 'mysql://app:pw@db/app' },
      context: { ticket: 'OPS-1', note: 'ping dana@example.com' },
    })
    const result = evaluate(compiled, input, agent, NOW)
    expect(result.redacted).toEqual({
      params: {
        table: 'customers',
        filter: { email: '[redacted:params.filter.email]' },
        dsn: 'mysql://app:[redacted:password]@db/app',
      },
      context: { ticket: '[redacted:context.ticket]', note: 'ping [redacted:email]' },
    })
    expect(input.params['filter']).toEqual({ email: 'x@example.com' })
  })

  it('records the policy SHA-256 with the decision', () => {
    const compiled = policy('rules: []')
    expect(evaluate(compiled, request(), agent, NOW).policySha256).toBe(compiled.sha256)
  })

  it('gives the same evaluation for the same inputs', () => {
    const compiled = policy('risk:', '  - { when: "true", add: 10 }', 'rules:', '  - { name: a, effect: allow }')
    expect(evaluate(compiled, request(), agent, NOW)).toEqual(evaluate(compiled, request(), agent, NOW))
  })
})

describe('the rule index', () => {
  it('offers only the rules that could match an action among 5,000', () => {
    const lines = ['rules:']
    for (let i = 0; i < 5_000; i++) lines.push(`  - { name: r${i}, match: { action: "svc${i}.*" }, effect: allow }`)
    lines.push('  - { name: any-prod, match: { environment: prod }, effect: deny }')
    lines.push('  - { name: any-export, match: { action: "*.export" }, effect: deny }')
    const compiled = policy(...lines)

    const candidates = candidatePositions(compiled.index, 'svc4321.restart').map(
      (position) => compiled.rules[position]?.name,
    )
    expect(candidates).toEqual(['r4321', 'any-prod', 'any-export'])
    expect(candidatePositions(compiled.index, 'unknown.thing')).toHaveLength(2)
    expect(evaluate(compiled, request({ action: 'svc4321.restart', environment: 'dev' }), agent, NOW).matchedRules).toEqual([
      { name: 'r4321', effect: 'allow' },
    ])
  })

  it('files a rule with several action globs under each prefix, once', () => {
    const compiled = policy(
      'rules:',
      '  - { name: keys, match: { action: [kms.key.rotate, secrets.rotate, kms.key.delete] }, effect: deny }',
    )
    expect(candidatePositions(compiled.index, 'kms.key.rotate')).toEqual([0])
    expect(candidatePositions(compiled.index, 'secrets.rotate')).toEqual([0])
    expect(candidatePositions(compiled.index, 'db.export')).toEqual([])
  })
})
