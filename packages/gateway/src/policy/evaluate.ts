import { type ActionRequestInput, type Effect, type Principal, type ReviewRequirements, stricterOf } from '../core/index.js'
import { celContext, celErrorMessage } from './cel-environment.js'
import type { CelContext, Condition } from './cel-environment.js'
import type { CompiledPolicy, CompiledRule } from './compile-policy.js'
import type { MatchGlob } from './match-glob.js'
import { redactValue } from './redact.js'
import { candidatePositions } from './rule-index.js'

export interface MatchedRule {
  name: string
  effect: Effect
}

/** The outcome of one request under one policy. */
export interface Evaluation {
  effect: Effect
  matchedRules: MatchedRule[]
  /** 0..100. */
  risk: number
  /** Present when `effect` is `review`: what every matching review rule demands, combined by `stricterOf`. */
  review: ReviewRequirements | null
  /** Params and context with policy paths and built-in detectors applied. */
  redacted: { params: Record<string, unknown>; context: Record<string, unknown> }
  policySha256: string
  /** Why, step by step, in plain sentences. */
  explain: string[]
}

type ConditionOutcome = { value: boolean } | { error: string }

/**
 * Decides a request. Pure: the same policy, request, principal and `now`
 * always give the same evaluation.
 *
 * Risk is scored first and exposed to rules as `risk`. Then every rule whose
 * `match` and `when` hold is collected: any deny wins; otherwise every
 * matching review rule applies; otherwise any allow allows; otherwise the
 * policy's default effect. A `when` that fails to evaluate fails closed: a
 * deny or review rule counts as matching, an allow rule does not.
 *
 * @example
 * const decision = evaluate(policy, { action: 'db.export', resource: 'customers',
 *   environment: 'prod', params: { table: 'customers' } }, principal, Date.now())
 * if (decision.effect === 'review') console.log(decision.review?.requirements)
 */
export function evaluate(
  policy: CompiledPolicy,
  request: ActionRequestInput,
  principal: Principal,
  now: number,
): Evaluation {
  const explain: string[] = []
  const base = celContext(request, principal, now)

  let score = 0
  for (const [i, entry] of policy.risk.entries()) {
    const outcome = runCondition(entry.condition, base)
    if ('error' in outcome) {
      // An unknown risk must not lower the score: count additions, skip reductions.
      if (entry.add > 0) score += entry.add
      explain.push(
        `risk[${i}] could not be evaluated (${outcome.error}); ${entry.add > 0 ? `added ${entry.add} anyway` : `did not apply its ${entry.add}`} to fail closed`,
      )
    } else if (outcome.value) {
      score += entry.add
      explain.push(`risk ${entry.add >= 0 ? '+' : ''}${entry.add}: ${entry.when}`)
    }
  }
  const risk = Math.max(0, Math.min(100, score))
  explain.push(`risk score is ${risk}`)

  const context: CelContext = { ...base, risk: BigInt(risk) }
  const matched: CompiledRule[] = []
  for (const position of candidatePositions(policy.index, request.action)) {
    const rule = policy.rules[position]
    if (rule === undefined || !matchesGlobs(rule, request)) continue
    if (rule.when !== undefined) {
      const outcome = runCondition(rule.when.condition, context)
      if ('error' in outcome) {
        const failClosed = rule.effect !== 'allow'
        explain.push(
          `rule "${rule.name}": when could not be evaluated (${outcome.error}); ${
            failClosed
              ? `treated as matching, because a ${rule.effect} rule fails closed`
              : 'treated as not matching, because an allow rule fails closed'
          }`,
        )
        if (!failClosed) continue
      } else if (!outcome.value) {
        explain.push(`rule "${rule.name}" matches the action but its when is false`)
        continue
      }
    }
    matched.push(rule)
    explain.push(`rule "${rule.name}" matched: ${rule.effect}`)
  }

  const denies = matched.filter((rule) => rule.effect === 'deny')
  const reviews = matched.filter((rule) => rule.effect === 'review')
  const allows = matched.filter((rule) => rule.effect === 'allow')
  let effect: Effect
  if (denies.length > 0) {
    effect = 'deny'
    explain.push(`decision: deny, because ${names(denies)} ${denies.length === 1 ? 'denies' : 'deny'} and deny wins`)
  } else if (reviews.length > 0) {
    effect = 'review'
    explain.push(`decision: review, required by ${names(reviews)}`)
  } else if (allows.length > 0) {
    effect = 'allow'
    explain.push(`decision: allow, by ${names(allows)}`)
  } else {
    effect = policy.defaultEffect
    explain.push(`decision: ${effect}, because no rule matched and defaults.effect is ${effect}`)
  }

  const redactPaths = [...new Set(matched.flatMap((rule) => rule.redact))]
  const redacted = redactValue({ params: request.params, context: request.context ?? {} }, redactPaths)

  return {
    effect,
    matchedRules: matched.map((rule) => ({ name: rule.name, effect: rule.effect })),
    risk,
    review: effect === 'review' ? combinedReview(reviews) : null,
    redacted,
    policySha256: policy.sha256,
    explain,
  }
}

function runCondition(condition: Condition, context: CelContext): ConditionOutcome {
  try {
    const value = condition(context)
    if (typeof value === 'boolean') return { value }
    return { error: `it gave ${value === null ? 'null' : typeof value}, not a bool` }
  } catch (error) {
    return { error: celErrorMessage(error) }
  }
}

function matchesGlobs(rule: CompiledRule, request: ActionRequestInput): boolean {
  return (
    anyMatches(rule.match.action, request.action) &&
    anyMatches(rule.match.resource, request.resource) &&
    anyMatches(rule.match.environment, request.environment)
  )
}

function anyMatches(globs: readonly MatchGlob[], value: string): boolean {
  return globs.length === 0 || globs.some((glob) => glob.matches(value))
}

function names(rules: readonly CompiledRule[]): string {
  return rules.map((rule) => `rule "${rule.name}"`).join(', ')
}

function combinedReview(rules: readonly CompiledRule[]): ReviewRequirements | null {
  const reviews = rules.flatMap((rule) => (rule.review === undefined ? [] : [rule.review]))
  const [first, ...rest] = reviews
  return first === undefined ? null : rest.reduce(stricterOf, first)
}
