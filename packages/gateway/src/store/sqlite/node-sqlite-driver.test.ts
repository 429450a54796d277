import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openStore, type Store } from '../open-store.js'
import { requestRow } from '../test-rows.js'

const row = (id: string) => requestRow(id, 1)

describe('the node:sqlite driver with group commit', () => {
  let dataDir: string
  let store: Store

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'countersign-group-'))
    store = await openStore({ dataDir })
  })

  afterEach(async () => {
    await store.close()
    await rm(dataDir, { recursive: true, force: true })
  })

  it('keeps every committed transaction of a concurrent burst and none of the failed one', async () => {
    const outcomes = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        store.db.transaction().execute(async (trx) => {
          await trx.insertInto('requests').values(row(`req-${i}`)).execute()
          await trx.insertInto('idempotency_keys').values({ requester_id: 'agent', key: `k-${i}`, request_id: `req-${i}`, created_at: 1 }).execute()
          if (i === 7) throw new Error('this one fails')
        }),
      ),
    )
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(1)
    await store.close()
    store = await openStore({ dataDir })
    const ids = (await store.db.selectFrom('requests').select('id').execute()).map((r) => r.id)
    expect(ids).toHaveLength(39)
    expect(ids).not.toContain('req-7')
    const keys = await store.db.selectFrom('idempotency_keys').select('key').where('key', '=', 'k-7').execute()
    expect(keys).toEqual([])
  })

  it('answers a commit only once it is on disk: a second connection sees the row at once', async () => {
    const other = await openStore({ dataDir })
    try {
      await store.db.transaction().execute((trx) => trx.insertInto('requests').values(row('req-durable')).execute())
      const seen = await other.db.selectFrom('requests').select('id').where('id', '=', 'req-durable').execute()
      expect(seen).toEqual([{ id: 'req-durable' }])
    } finally {
      await other.close()
    }
  })

  it('lets reads and transactions interleave under load without deadlocking', async () => {
    const work = Array.from({ length: 60 }, (_, i) =>
      i % 3 === 0
        ? store.db.selectFrom('requests').select('id').execute().then(() => undefined)
        : store.db.transaction().execute(async (trx) => {
            await trx.insertInto('requests').values(row(`req-${i}`)).execute()
          }),
    )
    await Promise.all(work)
    expect(await store.db.selectFrom('requests').select('id').execute()).toHaveLength(40)
  })
})
