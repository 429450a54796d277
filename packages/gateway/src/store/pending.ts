import { sql } from 'kysely'

/**
 * The pending status as a literal, for queries that look only at pending
 * requests. SQLite uses a partial index of pending requests for a bound
 * parameter too, but only by planning the statement again on every run; with
 * the literal, the prepared plan is kept.
 */
export const PENDING = sql.lit('pending')
