import { Kysely, sql } from 'kysely'
import { CountersignError, LocalError } from '../core/index.js'
import { SCHEMA_NAME, createPostgresBackend } from './postgres/postgres-backend.js'
import { migrateToLatest } from './migrations.js'
import type { Database } from './schema.js'
import { createSqliteBackend } from './sqlite/sqlite-backend.js'
import type { StoreBackend, StoreDialect } from './store-backend.js'

/** Where the data lives: an embedded SQLite file, or a PostgreSQL database shared by replicas. */
export type StoreOptions = { dataDir: string } | { databaseUrl: string; schema?: string }

/** An open, migrated database. */
export interface Store {
  db: Kysely<Database>
  dialect: StoreDialect
  /** Where the data lives, safe to print: `sqlite:/path/countersign.db` or the URL with its password masked. */
  describe: string
  close(): Promise<void>
}

/**
 * Opens the store and brings its schema up to date.
 *
 * With `dataDir` the database is `<dataDir>/countersign.db` (the directory is
 * created with mode 0700). With `databaseUrl` it is PostgreSQL; `schema`
 * confines every table to that schema, creating it if missing.
 *
 * @throws CountersignError `store_unavailable` when the database cannot be reached or opened.
 * @example
 * ```ts
 * const store = await openStore({ dataDir: './.countersign' })
 * const pending = await store.db.selectFrom('requests').selectAll().where('status', '=', 'pending').execute()
 * await store.close()
 * ```
 */
export async function openStore(options: StoreOptions): Promise<Store> {
  const backend = backendFor(options)
  const db = new Kysely<Database>({ dialect: backend.kyselyDialect })
  try {
    await connect(db, backend, 'schema' in options ? options.schema : undefined)
    await migrateToLatest(db, backend.dialect)
  } catch (error) {
    await db.destroy()
    throw error
  }
  let closed = false
  return {
    db,
    dialect: backend.dialect,
    describe: backend.describe,
    async close() {
      if (closed) return
      closed = true
      await db.destroy()
    },
  }
}

function backendFor(options: StoreOptions): StoreBackend {
  if ('dataDir' in options) return createSqliteBackend(options.dataDir)
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
    throw new LocalError(
      'config_invalid',
      `Invalid PostgreSQL schema name "${options.schema}": use lowercase letters, digits and underscores, starting with a letter or underscore.`,
      { schema: options.schema },
    )
  }
  return createPostgresBackend(options.databaseUrl, options.schema)
}

async function connect(db: Kysely<Database>, backend: StoreBackend, schema: string | undefined): Promise<void> {
  try {
    await sql`select 1`.execute(db)
    if (schema !== undefined) await sql`create schema if not exists ${sql.id(schema)}`.execute(db)
  } catch (error) {
    throw new CountersignError(
      'store_unavailable',
      `Cannot connect to the database ${backend.describe}: ${(error as Error).message}. Check that it is running and that the URL and credentials are right.`,
      { database: backend.describe },
    )
  }
}
