import { createHash } from 'node:crypto'
import { CountersignError, LocalError, parseDuration } from '../core/index.js'
import type { Effect, ReviewRequirements, TimeoutOutcome } from '../core/index.js'
import { compileCondition } from './cel-environment.js'
import type { Condition, ConditionScope } from './cel-environment.js'
import { compileGlob } from './match-glob.js'
import type { MatchGlob } from './match-glob.js'
import { policySchema } from './policy-schema.js'
import type { PolicyDocument, ReviewDocument, RuleDocument } from './policy-schema.js'
import { buildRuleIndex } from './rule-index.js'
import type { RuleIndex } from './rule-index.js'
import { formatDiagnostic, parseYamlSource, pathLabel } from './yaml-source.js'
import type { PolicyDiagnostic, YamlPath, YamlSource } from './yaml-source.js'
import { describeValue, zodDiagnostics } from './zod-diagnostics.js'

export interface CompiledRule {
  /** Position in the file; evaluation and explanations keep file order. */
  readonly position: number
  readonly name: string
  readonly description?: string
  readonly effect: Effect
  /** An empty list matches any value. */
  readonly match: {
    readonly action: readonly MatchGlob[]
    readonly resource: readonly MatchGlob[]
    readonly environment: readonly MatchGlob[]
  }
  readonly when?: { readonly source: string; readonly condition: Condition }
  /** A review rule's requirements, every default filled in; matching rules combine with `stricterOf`. */
  readonly review?: ReviewRequirements
  readonly redact: readonly string[]
}

export interface CompiledRiskRule {
  readonly when: string
  readonly condition: Condition
  readonly add: number
}

/** A validated policy, ready for {@link evaluate}. Immutable once built. */
export interface CompiledPolicy {
  readonly file: string
  /** SHA-256 (hex) of the policy file's text, recorded with every decision. */
  readonly sha256: string
  readonly defaultEffect: 'allow' | 'deny'
  /** Groups listed in the policy: name -> member ids or emails. */
  readonly groups: ReadonlyMap<string, readonly string[]>
  /** Groups declared to come from the identity provider's groups claim. */
  readonly idpGroups: ReadonlySet<string>
  readonly risk: readonly CompiledRiskRule[]
  readonly rules: readonly CompiledRule[]
  readonly index: RuleIndex
}

const DEFAULT_TIMEOUT_MS = 15 * 60_000
const GROUP_PREFIX = 'group:'
const REDACT_ROOTS = ['params', 'context']

/**
 * Validates and compiles a policy file. Every problem is collected, not just
 * the first, and each points at its `line:col`; a policy with any problem does
 * not load.
 *
 * @throws LocalError `policy_invalid` with `details.errors`: PolicyDiagnostic[]
 * @example
 * const policy = compilePolicy(await readFile('policy.yaml', 'utf8'), 'policy.yaml')
 * const decision = evaluate(policy, request, principal, Date.now())
 */
export function compilePolicy(text: string, file: string): CompiledPolicy {
  const source = parseYamlSource(text, file)
  const conditions: ConditionCache = new Map()
  const diagnostics = validatePolicySource(source, conditions)
  if (diagnostics.length > 0) throw policyInvalid(file, diagnostics)
  // Validation passed, so the schema accepts the value and every check below holds.
  const document = policySchema.parse(source.value)
  return buildPolicy(document, text, file, conditions)
}

/**
 * Every problem in a policy file, sorted by position; empty when it is valid.
 */
export function validatePolicy(text: string, file: string): PolicyDiagnostic[] {
  return validatePolicySource(parseYamlSource(text, file), new Map())
}

/** Conditions compiled while validating, reused when building: `scope:source` -> condition. */
type ConditionCache = Map<string, Condition>

function validatePolicySource(source: YamlSource, conditions: ConditionCache): PolicyDiagnostic[] {
  if (source.syntaxErrors.length > 0) return source.syntaxErrors
  const parsed = policySchema.safeParse(source.value)
  const diagnostics = [
    ...(parsed.success ? [] : zodDiagnostics(parsed.error.issues, source, policySchema)),
    ...semanticDiagnostics(source, conditions),
  ]
  return sortDiagnostics(diagnostics)
}

/** Sorts by position and drops exact duplicates. */
function sortDiagnostics(diagnostics: PolicyDiagnostic[]): PolicyDiagnostic[] {
  const seen = new Set<string>()
  return diagnostics
    .filter((diagnostic) => {
      const key = formatDiagnostic(diagnostic)
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
    .sort((a, b) => a.line - b.line || a.col - b.col)
}

function policyInvalid(file: string, diagnostics: PolicyDiagnostic[]): LocalError {
  const count = diagnostics.length === 1 ? '1 error' : `${diagnostics.length} errors`
  const lines = diagnostics.map(formatDiagnostic).join('\n')
  return new LocalError(
    'policy_invalid',
    `Policy ${file} is invalid (${count}); fix them and load it again:\n${lines}`,
    { file, errors: diagnostics },
  )
}

/*
 * Semantic checks walk the raw value rather than the parsed one, so they still
 * run (and report) when the schema has already found problems elsewhere.
 */
function semanticDiagnostics(source: YamlSource, conditions: ConditionCache): PolicyDiagnostic[] {
  const root = asRecord(source.value)
  if (root === undefined) return []
  const out: PolicyDiagnostic[] = []
  const groups = new Map<string, string[]>()
  for (const [name, members] of Object.entries(asRecord(root['groups']) ?? {})) {
    groups.set(name, (asArray(members) ?? []).filter(isString))
  }
  const idpGroups = new Set((asArray(root['idp_groups']) ?? []).filter(isString))
  for (const [i, name] of (asArray(root['idp_groups']) ?? []).entries()) {
    if (isString(name) && groups.has(name)) {
      out.push(
        source.at(
          ['idp_groups', i],
          `group "${name}" is both listed under groups and declared in idp_groups; keep one, so its membership has one source`,
        ),
      )
    }
  }
  const context: CheckContext = { source, out, groups, idpGroups, conditions }

  const defaults = asRecord(root['defaults'])
  const defaultTimeout = checkDuration(context, ['defaults', 'review', 'timeout'], asRecord(defaults?.['review'])?.['timeout'])

  for (const [i, entry] of (asArray(root['risk']) ?? []).entries()) {
    checkCondition(context, ['risk', i, 'when'], asRecord(entry)?.['when'], 'risk')
  }

  const firstLineOfName = new Map<string, number>()
  for (const [i, entry] of (asArray(root['rules']) ?? []).entries()) {
    const rule = asRecord(entry)
    if (rule === undefined) continue
    const at: YamlPath = ['rules', i]
    const name = isString(rule['name']) ? rule['name'] : undefined
    const label = name === undefined ? pathLabel(at) : `rule "${name}"`
    if (name !== undefined) {
      const first = firstLineOfName.get(name)
      if (first === undefined) firstLineOfName.set(name, source.at([...at, 'name'], '').line)
      else {
        out.push(
          source.at([...at, 'name'], `duplicate rule name "${name}" (first used on line ${first}); rule names must be unique`),
        )
      }
    }
    checkCondition(context, [...at, 'when'], rule['when'], 'rule')
    const effect = rule['effect']
    const review = rule['review']
    if (effect === 'review' && review === undefined) {
      out.push(
        source.at(
          [...at, 'effect'],
          `${label} has effect review but no review block; add review: { approvers: [...] } to say who approves`,
        ),
      )
    }
    if (review !== undefined && (effect === 'allow' || effect === 'deny')) {
      out.push(
        source.at(
          [...at, 'review'],
          `${label} has a review block but its effect is ${effect}; set effect: review or remove the block`,
          'key',
        ),
      )
    }
    const reviewBlock = asRecord(review)
    if (reviewBlock !== undefined) checkReview(context, [...at, 'review'], reviewBlock, defaultTimeout)
    for (const [j, path] of (asArray(rule['redact']) ?? []).entries()) {
      if (isString(path)) checkRedactPath(context, [...at, 'redact', j], path)
    }
  }
  return out
}

interface CheckContext {
  source: YamlSource
  out: PolicyDiagnostic[]
  groups: ReadonlyMap<string, readonly string[]>
  idpGroups: ReadonlySet<string>
  conditions: ConditionCache
}

function checkDuration(context: CheckContext, path: YamlPath, value: unknown): number | undefined {
  if (!isString(value)) return undefined
  const ms = durationMs(value)
  if (ms === undefined) {
    context.out.push(
      context.source.at(
        path,
        `${pathLabel(path)} is not a valid duration: "${value}"; write whole numbers with units d, h, m, s, largest first, e.g. 30s, 15m, 1h30m`,
      ),
    )
  }
  return ms
}

function durationMs(text: string): number | undefined {
  try {
    return parseDuration(text)
  } catch {
    return undefined
  }
}

function checkCondition(context: CheckContext, path: YamlPath, value: unknown, scope: ConditionScope): void {
  if (!isString(value) || value === '') return
  const compiled = compileCondition(value, scope)
  if (compiled.ok) {
    context.conditions.set(`${scope}:${value}`, compiled.condition)
    return
  }
  const hint =
    scope === 'risk' && /\brisk\b/.test(compiled.message)
      ? '; risk conditions cannot use `risk`, they compute it'
      : ''
  context.out.push(
    context.source.atCharacter(path, compiled.index, `invalid CEL in ${pathLabel(path)}: ${compiled.message}${hint}`),
  )
}

function checkReview(
  context: CheckContext,
  path: YamlPath,
  review: Record<string, unknown>,
  defaultTimeout: number | undefined,
): void {
  const approvers = (asArray(review['approvers']) ?? []).filter(isString)
  for (const [i, approver] of (asArray(review['approvers']) ?? []).entries()) {
    if (isString(approver)) checkApprover(context, [...path, 'approvers', i], approver)
  }
  const members = countableMembers(approvers, context.groups)
  for (const key of ['quorum', 'deny_quorum'] as const) {
    const wanted = review[key]
    if (typeof wanted !== 'number' || members === undefined || wanted <= members) continue
    const consequence = key === 'quorum' ? 'the request could never be approved' : 'reviewers could never deny it'
    context.out.push(
      context.source.at(
        [...path, key],
        `${pathLabel([...path, key])} is ${wanted}, but the approvers (${approvers.join(', ')}) have only ${members} distinct ${members === 1 ? 'member' : 'members'}, so ${consequence}; lower it or add approvers`,
      ),
    )
  }
  const timeout = checkDuration(context, [...path, 'timeout'], review['timeout']) ?? defaultTimeout ?? DEFAULT_TIMEOUT_MS
  checkDuration(context, [...path, 'fresh_auth'], review['fresh_auth'])
  const escalate = asRecord(review['escalate'])
  if (escalate === undefined) return
  const after = checkDuration(context, [...path, 'escalate', 'after'], escalate['after'])
  if (after !== undefined && after >= timeout) {
    context.out.push(
      context.source.at(
        [...path, 'escalate', 'after'],
        `${pathLabel([...path, 'escalate', 'after'])} (${String(escalate['after'])}) is not shorter than the review timeout (${formatMs(timeout)}), so escalation would never happen; shorten it or lengthen the timeout`,
      ),
    )
  }
  for (const [i, target] of (asArray(escalate['to']) ?? []).entries()) {
    if (isString(target)) checkApprover(context, [...path, 'escalate', 'to', i], target)
  }
}

function checkApprover(context: CheckContext, path: YamlPath, approver: string): void {
  if (!approver.startsWith(GROUP_PREFIX)) return
  const group = approver.slice(GROUP_PREFIX.length)
  if (group === '') {
    context.out.push(context.source.at(path, `${pathLabel(path)} names no group; write group:NAME`))
  } else if (!context.groups.has(group) && !context.idpGroups.has(group)) {
    context.out.push(
      context.source.at(
        path,
        `unknown group "${group}" in ${pathLabel(path)}; list its members under groups, or declare it in idp_groups if your identity provider supplies it`,
      ),
    )
  }
}

/**
 * How many distinct people can ever approve, when that is knowable from the
 * policy alone; `undefined` once an identity-provider group is involved.
 */
function countableMembers(approvers: readonly string[], groups: ReadonlyMap<string, readonly string[]>): number | undefined {
  const people = new Set<string>()
  for (const approver of approvers) {
    if (!approver.startsWith(GROUP_PREFIX)) {
      people.add(approver.toLowerCase())
      continue
    }
    const members = groups.get(approver.slice(GROUP_PREFIX.length))
    if (members === undefined) return undefined
    for (const member of members) people.add(member.toLowerCase())
  }
  return people.size
}

function checkRedactPath(context: CheckContext, path: YamlPath, redactPath: string): void {
  const segments = redactPath.split('.')
  const [root] = segments
  if (root === undefined || !REDACT_ROOTS.includes(root) || segments.length < 2 || segments.some((s) => s === '')) {
    context.out.push(
      context.source.at(
        path,
        `${pathLabel(path)} is not a redaction path: ${describeValue(redactPath)}; write params.<key>[.<key>...] or context.<key>[...], with * for any key`,
      ),
    )
  }
}

function formatMs(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`
  if (ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms % 1_000 === 0) return `${ms / 1_000}s`
  return `${ms}ms`
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined
}

function asArray(value: unknown): unknown[] | undefined {
  return Array.isArray(value) ? value : undefined
}

function isString(value: unknown): value is string {
  return typeof value === 'string'
}

function buildPolicy(
  document: PolicyDocument,
  text: string,
  file: string,
  conditions: ConditionCache,
): CompiledPolicy {
  const condition = (source: string, scope: ConditionScope): Condition => {
    const compiled = conditions.get(`${scope}:${source}`)
    // Unreachable after validation; a hard stop rather than a rule without its condition.
    if (compiled === undefined) throw new CountersignError('internal', `condition was not compiled: ${source}`)
    return compiled
  }
  const defaultReview = {
    timeoutMs: duration(document.defaults?.review?.timeout) ?? DEFAULT_TIMEOUT_MS,
    onTimeout: document.defaults?.review?.on_timeout ?? 'deny',
  }
  const groups = new Map(Object.entries(document.groups ?? {}))
  const rules = (document.rules ?? []).map((rule, position) => buildRule(rule, position, { ...defaultReview, groups }, condition))
  return {
    file,
    sha256: createHash('sha256').update(text, 'utf8').digest('hex'),
    defaultEffect: document.defaults?.effect ?? 'deny',
    groups,
    idpGroups: new Set(document.idp_groups ?? []),
    risk: (document.risk ?? []).map((entry) => ({
      when: entry.when,
      condition: condition(entry.when, 'risk'),
      add: entry.add,
    })),
    rules,
    index: buildRuleIndex(rules),
  }
}

function buildRule(
  rule: RuleDocument,
  position: number,
  defaultReview: ReviewDefaults,
  condition: (source: string, scope: ConditionScope) => Condition,
): CompiledRule {
  const globs = (value: string | string[] | undefined): MatchGlob[] =>
    value === undefined ? [] : (Array.isArray(value) ? value : [value]).map(compileGlob)
  return {
    position,
    name: rule.name,
    ...(rule.description === undefined ? {} : { description: rule.description }),
    effect: rule.effect,
    match: {
      action: globs(rule.match?.action),
      resource: globs(rule.match?.resource),
      environment: globs(rule.match?.environment),
    },
    ...(rule.when === undefined ? {} : { when: { source: rule.when, condition: condition(rule.when, 'rule') } }),
    ...(rule.review === undefined ? {} : { review: buildReview(rule.name, rule.review, defaultReview) }),
    redact: rule.redact ?? [],
  }
}

/** What a rule's review falls back to, and the policy's groups its approvers may name. */
interface ReviewDefaults {
  timeoutMs: number
  onTimeout: TimeoutOutcome
  groups: ReadonlyMap<string, readonly string[]>
}

function buildReview(rule: string, review: ReviewDocument, defaults: ReviewDefaults): ReviewRequirements {
  const freshAuthMs = duration(review.fresh_auth)
  const escalateAfterMs = review.escalate === undefined ? undefined : duration(review.escalate.after)
  const escalateTo = escalateAfterMs === undefined ? [] : [...(review.escalate?.to ?? [])]
  const named = [...review.approvers, ...escalateTo]
  const policyGroups = Object.fromEntries(
    named.flatMap((entry) => {
      const name = entry.startsWith(GROUP_PREFIX) ? entry.slice(GROUP_PREFIX.length) : undefined
      const members = name === undefined ? undefined : defaults.groups.get(name)
      return name === undefined || members === undefined ? [] : [[name, [...members]]]
    }),
  )
  return {
    requirements: [{ rule, approvers: [...review.approvers], quorum: review.quorum ?? 1, denyQuorum: review.deny_quorum ?? 1 }],
    timeoutMs: duration(review.timeout) ?? defaults.timeoutMs,
    onTimeout: review.on_timeout ?? defaults.onTimeout,
    requireReason: review.require_reason ?? false,
    allowEdit: review.allow_edit ?? false,
    ...(freshAuthMs === undefined ? {} : { freshAuthMs }),
    ...(escalateAfterMs === undefined ? {} : { escalateAfterMs }),
    escalateTo,
    notify: [...(review.notify ?? [])],
    policyGroups,
  }
}

function duration(text: string | undefined): number | undefined {
  return text === undefined ? undefined : durationMs(text)
}
