import pg from 'pg'
import { PostgresDialect } from 'kysely'
import type { DatabaseIntrospector, Kysely } from 'kysely'
import type { CustomTypesConfig } from 'pg'
import type { StoreBackend } from '../store-backend.js'
import { SchemaScopedIntrospector } from './schema-scoped-introspector.js'

const INT8_OID = 20

/**
 * BIGINT columns hold millisecond timestamps and sequence numbers; reading
 * them as JS numbers keeps one row shape on both dialects. A value past 2^53
 * would silently lose precision, so it fails loudly instead.
 */
function parseInt8(value: string): number {
  const parsed = Number(value)
  if (!Number.isSafeInteger(parsed)) {
    throw new RangeError(`BIGINT value ${value} does not fit a JavaScript number without losing precision`)
  }
  return parsed
}

const typeParsers: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? parseInt8
      : pg.types.getTypeParser(oid, format)) as CustomTypesConfig['getTypeParser'],
}

/** Kysely's PostgreSQL dialect, introspecting only the schema the store lives in. */
class SchemaScopedPostgresDialect extends PostgresDialect {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kysely's own signature takes Kysely<any>; the introspector works on any schema
  override createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new SchemaScopedIntrospector(db)
  }
}

/** A schema name that is safe to splice into `search_path` and DDL unquoted. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

/** Hides the password of a connection URL so it can appear in errors and logs. */
export function maskDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '****'
    return parsed.toString()
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:****@')
  }
}

/**
 * A pooled PostgreSQL connection. With `schema`, every connection starts with
 * that schema alone on its `search_path`, so several stores can share one
 * database without seeing each other's tables.
 */
export function createPostgresBackend(databaseUrl: string, schema: string | undefined): StoreBackend {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    types: typeParsers,
    connectionTimeoutMillis: 10_000,
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  })
  // An idle client whose server connection dies is dropped by the pool and the
  // next query opens a new one; without a listener the error would crash the process.
  pool.on('error', () => {})
  const describe = maskDatabaseUrl(databaseUrl) + (schema === undefined ? '' : ` (schema ${schema})`)
  return { dialect: 'postgres', kyselyDialect: new SchemaScopedPostgresDialect({ pool }), describe }
}
