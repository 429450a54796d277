import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { sql } from 'kysely'
import { describe } from 'vitest'
import { openStore } from './open-store.js'
import type { Store } from './open-store.js'
import { maskDatabaseUrl } from './postgres/postgres-backend.js'

/*
 * Test support: every storage test runs once per backend, each test on a
 * fresh empty store. PostgreSQL tests use a uniquely named schema that is
 * dropped on close, so parallel test files never see each other's rows.
 */

export interface TestBackend {
  name: 'sqlite' | 'postgres'
  /** A fresh, empty, migrated store; `close()` deletes it. */
  open(): Promise<Store>
}

const POSTGRES_URL = process.env.COUNTERSIGN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const IN_CI = process.env.CI === 'true'

async function postgresProblem(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('select 1')
    return undefined
  } catch (error) {
    return (error as Error).message || String(error)
  } finally {
    await client.end().catch(() => {})
  }
}

const postgresUnreachable = await postgresProblem()
if (postgresUnreachable !== undefined && !IN_CI) {
  console.warn(
    `PostgreSQL at ${maskDatabaseUrl(POSTGRES_URL)} is unreachable (${postgresUnreachable}): skipping the postgres storage tests. Set COUNTERSIGN_TEST_POSTGRES_URL to run them.`,
  )
}

const sqliteBackend: TestBackend = {
  name: 'sqlite',
  async open() {
    const dataDir = await mkdtemp(join(tmpdir(), 'countersign-test-'))
    const store = await openStore({ dataDir })
    return {
      ...store,
      async close() {
        await store.close()
        await rm(dataDir, { recursive: true, force: true })
      },
    }
  },
}

const postgresBackend: TestBackend = {
  name: 'postgres',
  async open() {
    if (postgresUnreachable !== undefined) {
      throw new Error(
        `PostgreSQL at ${maskDatabaseUrl(POSTGRES_URL)} is unreachable (${postgresUnreachable}); CI=true requires the postgres storage tests to run.`,
      )
    }
    const schema = `cs_test_${randomBytes(6).toString('hex')}`
    let store: Store
    try {
      store = await openStore({ databaseUrl: POSTGRES_URL, schema })
    } catch (error) {
      await dropSchema(schema)
      throw error
    }
    return {
      ...store,
      async close() {
        await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(store.db)
        await store.close()
      },
    }
  },
}

/** Removes a schema left behind when opening the store failed half-way. */
async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query(`drop schema if exists "${schema}" cascade`)
  } finally {
    await client.end().catch(() => {})
  }
}

/** Every backend storage tests must pass on. */
export const BACKENDS: TestBackend[] = [sqliteBackend, postgresBackend]

/** The PostgreSQL URL the postgres backend uses, for tests that need a second connection. */
export const TEST_POSTGRES_URL = POSTGRES_URL

/**
 * Declares one `describe` block per backend. The postgres block is skipped
 * (with a notice) when PostgreSQL is unreachable, except under `CI=true`,
 * where its tests fail instead.
 *
 * @example
 * ```ts
 * describeEachBackend('votes', (backend) => {
 *   it('rejects a second vote by the same voter', async () => {
 *     const store = await backend.open()
 *     ...
 *   })
 * })
 * ```
 */
export function describeEachBackend(name: string, fn: (backend: TestBackend) => void): void {
  for (const backend of BACKENDS) {
    const skip = backend.name === 'postgres' && postgresUnreachable !== undefined && !IN_CI
    describe.skipIf(skip)(`${name} (${backend.name})`, () => fn(backend))
  }
}
