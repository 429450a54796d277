import { actionPrefixOf, firstSegment } from './match-glob.js'
import type { MatchGlob } from './match-glob.js'

/*
 * Rules bucketed by the first dotted segment of their action globs, so a
 * request for `db.export` looks only at `db` rules plus the rules that could
 * match any action (no action glob, or a wildcard in the first segment).
 * Buckets hold rule positions in file order.
 */
export interface RuleIndex {
  readonly byPrefix: ReadonlyMap<string, readonly number[]>
  readonly anyAction: readonly number[]
}

interface IndexableRule {
  readonly position: number
  readonly match: { readonly action: readonly MatchGlob[] }
}

/** Builds the action-prefix index for rules given in file order. */
export function buildRuleIndex(rules: readonly IndexableRule[]): RuleIndex {
  const byPrefix = new Map<string, number[]>()
  const anyAction: number[] = []
  for (const rule of rules) {
    const prefixes = rule.match.action.map((glob) => actionPrefixOf(glob.pattern))
    if (prefixes.length === 0 || prefixes.includes(undefined)) {
      anyAction.push(rule.position)
      continue
    }
    for (const prefix of new Set(prefixes)) {
      if (prefix === undefined) continue
      const bucket = byPrefix.get(prefix)
      if (bucket === undefined) byPrefix.set(prefix, [rule.position])
      else bucket.push(rule.position)
    }
  }
  return { byPrefix, anyAction }
}

/** Positions of the rules that could match `action`, in file order. */
export function candidatePositions(index: RuleIndex, action: string): number[] {
  return mergeSorted(index.byPrefix.get(firstSegment(action)) ?? [], index.anyAction)
}

function mergeSorted(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = []
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    const next = j >= b.length || (i < a.length && (a[i] ?? 0) < (b[j] ?? 0)) ? a[i++] : b[j++]
    if (next !== undefined) out.push(next)
  }
  return out
}
