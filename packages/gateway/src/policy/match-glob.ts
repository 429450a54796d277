/**
 * A `match` glob. `*` stands for any run of characters, dots included, so
 * `db.*` matches `db.export` and `db.export.full` and `iam.*` covers every IAM
 * action however deep: a deny rule written as a prefix never misses a longer
 * action name. Every other character matches itself, case-sensitively.
 */
export interface MatchGlob {
  readonly pattern: string
  matches(value: string): boolean
}

/** Compiles a glob into an anchored matcher. */
export function compileGlob(pattern: string): MatchGlob {
  const body = pattern
    .split('*')
    .map((literal) => literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*')
  const regex = new RegExp(`^${body}$`, 's')
  return { pattern, matches: (value) => regex.test(value) }
}

/**
 * The first dotted segment every action matched by `pattern` must start with,
 * or `undefined` when a wildcard in the first segment lets it match anything.
 */
export function actionPrefixOf(pattern: string): string | undefined {
  const dot = pattern.indexOf('.')
  const first = dot < 0 ? pattern : pattern.slice(0, dot)
  return first.includes('*') ? undefined : first
}

/** The first dotted segment of an action name. */
export function firstSegment(action: string): string {
  const dot = action.indexOf('.')
  return dot < 0 ? action : action.slice(0, dot)
}
