import type { Dialect } from 'kysely'

export type StoreDialect = 'sqlite' | 'postgres'

/** What each database brings to `openStore`: a Kysely dialect and how to name it. */
export interface StoreBackend {
  dialect: StoreDialect
  kyselyDialect: Dialect
  /** Where the data lives, safe to print (passwords masked). */
  describe: string
}
