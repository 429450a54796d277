import type { DatabaseSync } from 'node:sqlite'
import { SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from 'kysely'
import type { DatabaseIntrospector, Dialect, DialectAdapter, Driver, Kysely, QueryCompiler } from 'kysely'
import { NodeSqliteDriver } from './node-sqlite-driver.js'

/**
 * Kysely dialect for Node's built-in `node:sqlite`: the SQL, adapter and
 * introspection are Kysely's own SQLite ones; only the driver differs.
 */
export class NodeSqliteDialect implements Dialect {
  readonly #database: DatabaseSync

  constructor(database: DatabaseSync) {
    this.#database = database
  }

  createDriver(): Driver {
    return new NodeSqliteDriver(this.#database)
  }

  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler()
  }

  createAdapter(): DialectAdapter {
    return new SqliteAdapter()
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kysely's own signature takes Kysely<any>; the introspector works on any schema
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new SqliteIntrospector(db)
  }
}
