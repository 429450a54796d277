import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { CountersignError, LocalError } from '../core/index.js'
import { isUniqueViolation, openStore } from './index.js'
import type { Store } from './index.js'
import { migrateToLatest } from './migrations.js'
import { TEST_POSTGRES_URL, describeEachBackend } from './test-backends.js'
import { requestRow } from './test-rows.js'

const NOW = 1_767_225_600_000

async function insertRequest(store: Store, id: string): Promise<void> {
  await store.db.insertInto('requests').values(requestRow(id, NOW)).execute()
}

function vote(requestId: string, decision: string) {
  return {
    request_id: requestId,
    version: 1,
    voter_id: 'dana@example.com',
    voter: '{"id":"dana@example.com"}',
    decision,
    reason: null,
    via: 'console',
    created_at: NOW,
  }
}

function grant(jti: string, requestId: string) {
  return {
    jti,
    request_id: requestId,
    digest: 'd'.repeat(64),
    subject: 'agent-1',
    status: 'issued',
    issued_at: NOW,
    expires_at: NOW + 300_000,
    redeemed_at: null,
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected the operation to fail')
}

describeEachBackend('store', (backend) => {
  let store: Store

  beforeEach(async () => {
    store = await backend.open()
  })

  afterEach(async () => {
    await store.close()
  })

  it('reports which dialect it runs on', () => {
    expect(store.dialect).toBe(backend.name)
  })

  it('runs migrations again without changing anything', async () => {
    await insertRequest(store, 'req-1')
    await migrateToLatest(store.db, store.dialect)
    const migrations = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(store.db)
    expect(migrations.rows.map((row) => row.name)).toEqual(['0001_initial', '0002_lookup_indexes', '0003_pending_indexes', '0004_human_bootstrap_admin'])
    expect(await store.db.selectFrom('requests').select('id').execute()).toEqual([{ id: 'req-1' }])
  })

  it('introspects exactly the tables of its own store', async () => {
    const tables = await store.db.introspection.getTables()
    expect(tables.map((table) => table.name).sort()).toEqual([
      'api_keys',
      'audit_entries',
      'checkpoints',
      'grants',
      'idempotency_keys',
      'outbox',
      'request_versions',
      'requests',
      'votes',
    ])
    const outboxId = tables.find((table) => table.name === 'outbox')?.columns.find((column) => column.name === 'id')
    expect(outboxId).toMatchObject({ isAutoIncrementing: true })
  })

  it('rejects a second vote by the same voter on the same version and keeps only the first', async () => {
    await insertRequest(store, 'req-1')
    await store.db.insertInto('votes').values(vote('req-1', 'approve')).execute()
    const error = await rejection(store.db.insertInto('votes').values(vote('req-1', 'deny')).execute())
    expect(isUniqueViolation(error)).toBe(true)
    const votes = await store.db.selectFrom('votes').select('decision').execute()
    expect(votes).toEqual([{ decision: 'approve' }])
  })

  it('accepts the same voter again on a new version of the request', async () => {
    await insertRequest(store, 'req-1')
    await store.db.insertInto('votes').values(vote('req-1', 'approve')).execute()
    await store.db.insertInto('votes').values({ ...vote('req-1', 'approve'), version: 2 }).execute()
    const votes = await store.db.selectFrom('votes').select('version').orderBy('version').execute()
    expect(votes).toEqual([{ version: 1 }, { version: 2 }])
  })

  it('rejects a second grant for the same request', async () => {
    await insertRequest(store, 'req-1')
    await store.db.insertInto('grants').values(grant('jti-1', 'req-1')).execute()
    const error = await rejection(store.db.insertInto('grants').values(grant('jti-2', 'req-1')).execute())
    expect(isUniqueViolation(error)).toBe(true)
    const grants = await store.db.selectFrom('grants').select('jti').execute()
    expect(grants).toEqual([{ jti: 'jti-1' }])
  })

  it('rejects a second idempotency key with the same requester and key', async () => {
    await insertRequest(store, 'req-1')
    await insertRequest(store, 'req-2')
    const key = { requester_id: 'agent-1', key: 'retry-1', created_at: NOW }
    await store.db.insertInto('idempotency_keys').values({ ...key, request_id: 'req-1' }).execute()
    const error = await rejection(store.db.insertInto('idempotency_keys').values({ ...key, request_id: 'req-2' }).execute())
    expect(isUniqueViolation(error)).toBe(true)
  })

  it('rejects two API keys with the same prefix', async () => {
    const apiKey = {
      prefix: 'cs_abc',
      hash: 'scrypt$...',
      kind: 'agent',
      principal_id: 'agent-1',
      display_name: 'Agent',
      email: null,
      groups: '[]',
      on_behalf_of: null,
      created_at: NOW,
      created_by: 'admin',
      revoked_at: null,
    }
    await store.db.insertInto('api_keys').values({ ...apiKey, id: 'key-1' }).execute()
    const error = await rejection(store.db.insertInto('api_keys').values({ ...apiKey, id: 'key-2' }).execute())
    expect(isUniqueViolation(error)).toBe(true)
  })

  it('rejects a vote for a request that does not exist', async () => {
    const error = await rejection(store.db.insertInto('votes').values(vote('missing', 'approve')).execute())
    expect(error).toBeInstanceOf(Error)
    expect(isUniqueViolation(error)).toBe(false)
  })

  it('returns a JSON text byte for byte as it was written', async () => {
    const json = '{"z":1,  "a":[1.0,2e3,-0],"name":"Zoë \\u0000 \\ud83d\\ude00 😀","big":12345678901234567890}'
    await insertRequest(store, 'req-1')
    await store.db
      .insertInto('request_versions')
      .values({ request_id: 'req-1', version: 1, params: json, redacted_params: json, digest: 'x', created_at: NOW, created_by: 'agent-1' })
      .execute()
    const row = await store.db.selectFrom('request_versions').select('params').executeTakeFirstOrThrow()
    expect(row.params).toBe(json)
  })

  it('reads BIGINT milliseconds back as JavaScript numbers', async () => {
    await insertRequest(store, 'req-1')
    const big = Number.MAX_SAFE_INTEGER
    await store.db.updateTable('requests').set({ decided_at: big }).execute()
    const row = await store.db.selectFrom('requests').select(['created_at', 'decided_at']).executeTakeFirstOrThrow()
    expect(row).toEqual({ created_at: NOW, decided_at: big })
    expect(typeof row.created_at).toBe('number')
    const count = await store.db.selectFrom('requests').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
    expect(count.n).toBe(1)
  })

  it('numbers outbox rows automatically', async () => {
    const message = { topic: 'slack', request_id: null, payload: '{}', created_at: NOW, attempts: 0, next_attempt_at: NOW }
    const inserted = await store.db.insertInto('outbox').values([message, message]).returning('id').execute()
    expect(inserted).toEqual([{ id: 1 }, { id: 2 }])
  })

  it('reports the number of rows an update changed', async () => {
    await insertRequest(store, 'req-1')
    await insertRequest(store, 'req-2')
    const result = await store.db.updateTable('requests').set({ status: 'expired' }).where('deadline_at', '<', NOW + 1_000_000).executeTakeFirst()
    expect(result.numUpdatedRows).toBe(2n)
  })

  it('rolls back every statement of a failed transaction', async () => {
    const failure = rejection(
      store.db.transaction().execute(async (trx) => {
        await trx.insertInto('outbox').values({ topic: 't', request_id: null, payload: '{}', created_at: NOW, attempts: 0, next_attempt_at: NOW }).execute()
        throw new Error('boom')
      }),
    )
    expect(await failure).toHaveProperty('message', 'boom')
    expect(await store.db.selectFrom('outbox').select('id').execute()).toEqual([])
  })

  it('runs concurrent read-then-write transactions one after another without losing an update', async () => {
    await insertRequest(store, 'req-1')
    await Promise.all(
      Array.from({ length: 10 }, () =>
        store.db.transaction().execute(async (trx) => {
          const lockedRead = trx.selectFrom('requests').select('current_version').where('id', '=', 'req-1')
          const row = await (store.dialect === 'postgres' ? lockedRead.forUpdate() : lockedRead).executeTakeFirstOrThrow()
          await trx.updateTable('requests').set({ current_version: row.current_version + 1 }).where('id', '=', 'req-1').execute()
        }),
      ),
    )
    const row = await store.db.selectFrom('requests').select('current_version').executeTakeFirstOrThrow()
    expect(row.current_version).toBe(11)
  })

})

describe('openStore on SQLite', () => {
  let parent: string

  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'countersign-store-'))
  })

  afterEach(async () => {
    await rm(parent, { recursive: true, force: true })
  })

  it('creates the data directory with mode 0700 and keeps data across reopen', async () => {
    const dataDir = join(parent, 'data')
    const first = await openStore({ dataDir })
    expect(first.describe).toBe(`sqlite:${join(dataDir, 'countersign.db')}`)
    await first.db.insertInto('outbox').values({ topic: 't', request_id: null, payload: '{}', created_at: NOW, attempts: 0, next_attempt_at: NOW }).execute()
    await first.close()
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700)

    const second = await openStore({ dataDir })
    expect(await second.db.selectFrom('outbox').select('topic').execute()).toEqual([{ topic: 't' }])
    await second.close()
  })

  it('uses WAL with full fsync, a busy timeout and foreign keys', async () => {
    const store = await openStore({ dataDir: parent })
    const pragma = async (name: string): Promise<unknown> =>
      Object.values((await sql.raw(`pragma ${name}`).execute(store.db)).rows[0] as object)[0]
    expect(await pragma('journal_mode')).toBe('wal')
    expect(await pragma('synchronous')).toBe(2)
    expect(await pragma('busy_timeout')).toBe(5000)
    expect(await pragma('foreign_keys')).toBe(1)
    await store.close()
  })

  it('fails with store_unavailable when the data directory cannot be created', async () => {
    const blocker = join(parent, 'a-file')
    await writeFile(blocker, '')
    const error = await rejection(openStore({ dataDir: join(blocker, 'data') }))
    expect(error).toBeInstanceOf(CountersignError)
    expect((error as CountersignError).code).toBe('store_unavailable')
    expect((error as CountersignError).message).toContain(join(blocker, 'data', 'countersign.db'))
  })

  it('streams the rows of a select', async () => {
    const store = await openStore({ dataDir: parent })
    const message = { topic: 't', request_id: null, payload: '{}', created_at: NOW, attempts: 0, next_attempt_at: NOW }
    await store.db.insertInto('outbox').values([message, message, message]).execute()
    const ids: number[] = []
    for await (const row of store.db.selectFrom('outbox').select('id').orderBy('id').stream(2)) ids.push(row.id)
    expect(ids).toEqual([1, 2, 3])
    await store.close()
  })
})

describe('openStore on PostgreSQL', () => {
  it('fails with store_unavailable naming the URL with its password masked', async () => {
    const error = await rejection(openStore({ databaseUrl: 'postgres://alice:s3cret@127.0.0.1:1/countersign' }))
    expect(error).toBeInstanceOf(CountersignError)
    expect((error as CountersignError).code).toBe('store_unavailable')
    expect((error as CountersignError).message).toContain('postgres://alice:****@127.0.0.1:1/countersign')
    expect((error as CountersignError).message).not.toContain('s3cret')
    expect((error as CountersignError).details).toEqual({ database: 'postgres://alice:****@127.0.0.1:1/countersign' })
  })

  it('refuses a schema name that is not a plain identifier', async () => {
    const error = await rejection(openStore({ databaseUrl: TEST_POSTGRES_URL, schema: 'x"; drop table y; --' }))
    expect(error).toBeInstanceOf(LocalError)
    expect((error as LocalError).code).toBe('config_invalid')
  })
})

describeEachBackend('openStore reopening', (backend) => {
  it('applies migrations once when the same database is opened twice', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'countersign-reopen-'))
    const schema = `cs_test_${randomBytes(6).toString('hex')}`
    const options = backend.name === 'sqlite' ? { dataDir: parent } : { databaseUrl: TEST_POSTGRES_URL, schema }
    const first = await openStore(options)
    await first.close()
    const second = await openStore(options)
    const migrations = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(second.db)
    expect(migrations.rows.map((row) => row.name)).toEqual(['0001_initial', '0002_lookup_indexes', '0003_pending_indexes', '0004_human_bootstrap_admin'])
    if (backend.name === 'postgres') await sql`drop schema ${sql.id(schema)} cascade`.execute(second.db)
    await second.close()
    await rm(parent, { recursive: true, force: true })
  })

  it('turns the admin key of the first start, stored as a service, into the human key it always was, and leaves other keys alone', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'countersign-reopen-'))
    const schema = `cs_test_${randomBytes(6).toString('hex')}`
    const options = backend.name === 'sqlite' ? { dataDir: parent } : { databaseUrl: TEST_POSTGRES_URL, schema }
    const first = await openStore(options)
    const key = { hash: 'x', display_name: 'k', email: null, on_behalf_of: null, created_at: NOW, revoked_at: null }
    const admins = JSON.stringify(['countersign:admins'])
    await first.db.insertInto('api_keys').values([
      { ...key, id: 'boot', prefix: 'cs_boot', kind: 'service', principal_id: 'admin', groups: admins, created_by: 'countersign' },
      { ...key, id: 'rogue', prefix: 'cs_rogue', kind: 'service', principal_id: 'rogue', groups: admins, created_by: 'admin' },
      { ...key, id: 'bot', prefix: 'cs_bot', kind: 'agent', principal_id: 'admin', groups: admins, created_by: 'countersign' },
    ]).execute()
    // As if the store had been written before the migration existed.
    await sql`delete from kysely_migration where name = '0004_human_bootstrap_admin'`.execute(first.db)
    await first.close()
    const second = await openStore(options)
    const kinds = await second.db.selectFrom('api_keys').select(['id', 'kind']).orderBy('id').execute()
    expect(kinds).toEqual([{ id: 'boot', kind: 'human' }, { id: 'bot', kind: 'agent' }, { id: 'rogue', kind: 'service' }])
    if (backend.name === 'postgres') await sql`drop schema ${sql.id(schema)} cascade`.execute(second.db)
    await second.close()
    await rm(parent, { recursive: true, force: true })
  })
})
