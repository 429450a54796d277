import { createServer } from 'node:net'
import { sql } from 'kysely'
import pg from 'pg'
import { afterEach, beforeEach, expect, it } from 'vitest'
import type { Store } from './open-store.js'
import { isConnectionLost } from './connection-lost.js'
import { describeEachBackend, TEST_POSTGRES_URL } from './test-backends.js'
import { requestRow } from './test-rows.js'

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  return typeof address === 'object' && address ? address.port : 0
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => expect.unreachable('the call should have failed'), (error: unknown) => error)
}

describeEachBackend('telling a lost database connection from a refused query', (backend) => {
  let store: Store

  beforeEach(async () => {
    store = await backend.open()
  })

  afterEach(async () => {
    await store.close()
  })

  it('does not take a syntax error or a unique violation for a lost connection', async () => {
    expect(isConnectionLost(await rejection(sql`selec 1`.execute(store.db)))).toBe(false)
    await store.db.insertInto('requests').values(requestRow('req-1', 1)).execute()
    expect(isConnectionLost(await rejection(store.db.insertInto('requests').values(requestRow('req-1', 1)).execute()))).toBe(false)
  })

  if (backend.name !== 'postgres') return

  it('recognises a connection its backend was terminated under, and the next query gets a fresh connection', async () => {
    const error = await rejection(sql`select pg_terminate_backend(pg_backend_pid())`.execute(store.db))
    expect(isConnectionLost(error)).toBe(true)
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(store.db)
    expect(rows).toEqual([{ one: 1 }])
  })

  it('survives a connection terminated while its transaction is open between queries, and rolls the transaction back', async () => {
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL })
    await admin.connect()
    try {
      const error = await rejection(store.db.transaction().execute(async (trx) => {
        await trx.insertInto('requests').values(requestRow('req-lost', 1)).execute()
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)
        await admin.query('select pg_terminate_backend($1)', [rows[0]?.pid])
        // The server's FATAL reaches the idle client as an `error` event, with no query to fail.
        while ((await admin.query('select 1 from pg_stat_activity where pid = $1', [rows[0]?.pid])).rowCount) await new Promise((resolve) => setTimeout(resolve, 10))
        await new Promise((resolve) => setTimeout(resolve, 50))
        await trx.insertInto('requests').values(requestRow('req-after', 1)).execute()
      }))
      expect(isConnectionLost(error)).toBe(true)
      expect(await store.db.selectFrom('requests').select('id').execute()).toEqual([])
    } finally {
      await admin.end()
    }
  })

  it('recognises a refused connection', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: await closedPort(), user: 'postgres' })
    const error = await rejection(client.connect())
    expect((error as { code?: string }).code).toBe('ECONNREFUSED')
    expect(isConnectionLost(error)).toBe(true)
  })
})
