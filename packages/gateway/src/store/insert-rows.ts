import type { Insertable, Kysely } from 'kysely'
import { runSql } from './prepared-sql.js'
import type { Database } from './schema.js'

/** Statements built so far, per table; the hot inserts need a handful. */
const MAX_STATEMENTS_PER_TABLE = 20
const statements = new Map<string, Array<{ columns: string[]; rowCount: number; text: string }>>()

/**
 * Inserts rows with an INSERT built once per table, column list and row
 * count, for the inserts every request makes: building and compiling a Kysely
 * query costs more than running the insert. Every row must have the same
 * columns, in the same order; values are always bound parameters.
 * @example
 * ```ts
 * await insertRows(trx, 'grants', [{ jti, request_id: id, digest, subject, status: 'issued', issued_at: now, expires_at, redeemed_at: null }])
 * ```
 */
export async function insertRows<T extends keyof Database & string>(
  db: Kysely<Database>,
  table: T,
  rows: ReadonlyArray<Insertable<Database[T]>>,
): Promise<void> {
  const first = rows[0]
  if (first === undefined) return
  const columns = Object.keys(first)
  const values: unknown[] = []
  for (const row of rows) {
    const record = row as Record<string, unknown>
    const keys = Object.keys(record)
    if (keys.length !== columns.length || keys.some((key, index) => key !== columns[index])) {
      throw new TypeError(`insertRows(${table}): every row must have the columns ${columns.join(', ')} in that order`)
    }
    for (const column of columns) values.push(record[column])
  }
  await runSql(db, statementFor(table, columns, rows.length), values)
}

function statementFor(table: string, columns: string[], rowCount: number): string {
  const known = statements.get(table) ?? []
  // Comparing column names one by one is cheaper than joining them into a key for every insert.
  const found = known.find((entry) => entry.rowCount === rowCount && sameColumns(entry.columns, columns))
  if (found !== undefined) return found.text
  for (const name of [table, ...columns]) {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new TypeError(`insertRows: ${JSON.stringify(name)} is not a plain identifier`)
  }
  const tuple = `(${columns.map(() => '?').join(', ')})`
  const text = `insert into "${table}" (${columns.map((column) => `"${column}"`).join(', ')}) values ${Array(rowCount).fill(tuple).join(', ')}`
  if (known.length >= MAX_STATEMENTS_PER_TABLE) known.length = 0
  known.push({ columns, rowCount, text })
  statements.set(table, known)
  return text
}

function sameColumns(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((column, index) => column === b[index])
}
