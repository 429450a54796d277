import { PostgresAdapter } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database } from './schema.js'
import type { StoreDialect } from './store-backend.js'

/**
 * Which database a Kysely instance or transaction talks to, for the few
 * statements that differ (advisory locks, `for update`).
 */
export function dialectOf(db: Kysely<Database>): StoreDialect {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite'
}
