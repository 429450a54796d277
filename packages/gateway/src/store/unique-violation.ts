/** SQLITE_CONSTRAINT_PRIMARYKEY and SQLITE_CONSTRAINT_UNIQUE extended result codes. */
const SQLITE_UNIQUE_CODES = new Set([1555, 2067])
const POSTGRES_UNIQUE_VIOLATION = '23505'

/**
 * True when a database error is a primary-key or unique-constraint violation,
 * on either dialect. Repositories turn it into a domain error such as
 * `already_voted` instead of a 500.
 *
 * @example
 * ```ts
 * try {
 *   await trx.insertInto('votes').values(vote).execute()
 * } catch (error) {
 *   if (isUniqueViolation(error)) throw new CountersignError('already_voted', 'You already voted on this version.')
 *   throw error
 * }
 * ```
 */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { code, errcode } = error as { code?: unknown; errcode?: unknown }
  if (code === POSTGRES_UNIQUE_VIOLATION) return true
  return code === 'ERR_SQLITE_ERROR' && typeof errcode === 'number' && SQLITE_UNIQUE_CODES.has(errcode)
}
