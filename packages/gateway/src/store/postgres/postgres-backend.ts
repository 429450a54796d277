import pg from 'pg'
import { PostgresDialect } from 'kysely'
import type { DatabaseIntrospector, Kysely, PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely'
import type { CustomTypesConfig } from 'pg'
import { isConnectionLost } from '../connection-lost.js'
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
  // A server connection can die at any time (restart, failover, pg_terminate_backend). An idle client that
  // loses it is dropped by the pool, which reports it here. A checked-out client reports it on itself: the
  // query in flight, or the next one, fails (and is answered store_unavailable), and the pool discards the
  // client when it comes back. Without these listeners the `error` event would crash the process.
  pool.on('error', () => {})
  pool.on('connect', (client) => client.on('error', () => {}))
  const describe = maskDatabaseUrl(databaseUrl) + (schema === undefined ? '' : ` (schema ${schema})`)
  return { dialect: 'postgres', kyselyDialect: new SchemaScopedPostgresDialect({ pool: discardingLostConnections(pool) }), describe }
}

/**
 * The pool as Kysely sees it, except that a client whose connection was lost
 * under a query goes back to the pool as broken and is closed, not lent out
 * again. Kysely releases clients without saying why, and a client whose
 * backend was terminated can look usable for a moment after the query failed.
 */
function discardingLostConnections(pool: pg.Pool): PostgresPool {
  // Kysely keys its connection objects by client, so each pg client keeps one wrapper.
  const wrappers = new WeakMap<pg.PoolClient, LostConnectionAwareClient>()
  return {
    async connect() {
      const client = await pool.connect()
      let wrapper = wrappers.get(client)
      if (wrapper === undefined) {
        wrapper = new LostConnectionAwareClient(client)
        wrappers.set(client, wrapper)
      }
      return wrapper
    },
    end: () => pool.end(),
  }
}

class LostConnectionAwareClient implements PostgresPoolClient {
  readonly #client: pg.PoolClient
  #lost = false

  constructor(client: pg.PoolClient) {
    this.#client = client
  }

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>
  query<R>(sql: string | PostgresCursor<R>, parameters: ReadonlyArray<unknown> = []): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    // Kysely passes a cursor only when its dialect is given a cursor class, and this one is not.
    if (typeof sql !== 'string') throw new TypeError('The Countersign PostgreSQL store does not stream through cursors.')
    return this.#run<R>(sql, parameters)
  }

  release(): void {
    const lost = this.#lost
    this.#lost = false
    this.#client.release(lost || undefined)
  }

  async #run<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
    try {
      // pg types `command` as any string and rows as plain records; Kysely's narrower view of the same result.
      return (await this.#client.query(sql, [...parameters])) as unknown as PostgresQueryResult<R>
    } catch (error) {
      if (isConnectionLost(error)) this.#lost = true
      throw error
    }
  }
}
