import { CompiledQuery, type Kysely, type QueryResult } from 'kysely'
import { dialectOf } from './dialect-of.js'
import type { Database } from './schema.js'

/** Distinct statements kept; the hot paths need a handful. */
const MAX_STATEMENTS = 200
const forPostgres = new Map<string, string>()

/**
 * Runs a statement written with `?` placeholders on either database, for the
 * few statements every request runs: building and compiling a Kysely query
 * costs more than running them. PostgreSQL gets `$1`, `$2`, … in place of the
 * placeholders, rewritten once per statement. Values are always bound; the
 * text must be a constant with no `?` other than the placeholders.
 * @example
 * ```ts
 * const rows = await runSql<{ id: string }>(trx, 'select "id" from "requests" where "digest" = ?', [digest])
 * ```
 */
export async function runSql<R>(db: Kysely<Database>, text: string, parameters: readonly unknown[]): Promise<QueryResult<R>> {
  const placeholders = countPlaceholders(text)
  if (placeholders !== parameters.length) {
    throw new TypeError(`runSql: the statement has ${placeholders} placeholders but ${parameters.length} values were given`)
  }
  const statement = dialectOf(db) === 'postgres' ? postgresText(text) : text
  return db.executeQuery<R>(CompiledQuery.raw(statement, parameters.map((value) => value ?? null)))
}

function postgresText(text: string): string {
  let statement = forPostgres.get(text)
  if (statement === undefined) {
    let index = 0
    statement = text.replace(/\?/g, () => `$${++index}`)
    if (forPostgres.size >= MAX_STATEMENTS) forPostgres.clear()
    forPostgres.set(text, statement)
  }
  return statement
}

function countPlaceholders(text: string): number {
  let count = 0
  for (let at = text.indexOf('?'); at !== -1; at = text.indexOf('?', at + 1)) count += 1
  return count
}
