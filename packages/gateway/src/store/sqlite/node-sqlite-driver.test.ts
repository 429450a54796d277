import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
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

  describe('when the group COMMIT fails', () => {
    // A deferred foreign key is checked at COMMIT, not when the savepoint is released: a real COMMIT failure.
    beforeEach(async () => {
      await sql`create table parents (id text primary key)`.execute(store.db)
      await sql`create table children (id text primary key, parent text references parents (id) deferrable initially deferred)`.execute(store.db)
    })

    /** Starts `orphan` and, queued behind it, `others`; they all run before the COMMIT they share. */
    const shareOneCommit = async (others: () => Array<Promise<unknown>>) => {
      let queued: Array<Promise<unknown>> = []
      const orphan = store.db.transaction().execute(async (trx) => {
        await sql`insert into children (id, parent) values ('orphan', 'no-such-parent')`.execute(trx)
        queued = others()
      })
      const [first] = await Promise.allSettled([orphan])
      return [first, ...(await Promise.allSettled(queued))]
    }

    it('fails every transaction of the group and keeps none of them', async () => {
      const outcomes = await shareOneCommit(() => [
        store.db.transaction().execute((trx) => trx.insertInto('requests').values(row('req-innocent')).execute()),
      ])
      expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected'])
      expect(String((outcomes[0] as PromiseRejectedResult).reason)).toMatch(/FOREIGN KEY constraint failed/)
      await store.close()
      store = await openStore({ dataDir })
      expect(await store.db.selectFrom('requests').select('id').execute()).toEqual([])
      expect((await sql<{ id: string }>`select id from children`.execute(store.db)).rows).toEqual([])
    })

    it('never answers a read or a write outside a transaction with a change the failed COMMIT rolled back', async () => {
      const outcomes = await shareOneCommit(() => [
        sql<{ id: string }>`select id from children`.execute(store.db),
        store.db.insertInto('requests').values(row('req-plain-write')).execute(),
      ])
      expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected'])
      for (const outcome of outcomes) expect(String((outcome as PromiseRejectedResult).reason)).toMatch(/FOREIGN KEY constraint failed/)
      expect((await sql<{ id: string }>`select id from children`.execute(store.db)).rows).toEqual([])
      expect(await store.db.selectFrom('requests').select('id').execute()).toEqual([])
    })

    it('goes on committing afterwards', async () => {
      await shareOneCommit(() => [])
      await store.db.transaction().execute(async (trx) => {
        await sql`insert into parents (id) values ('p')`.execute(trx)
        await sql`insert into children (id, parent) values ('c', 'p')`.execute(trx)
      })
      expect((await sql<{ id: string }>`select id from children`.execute(store.db)).rows).toEqual([{ id: 'c' }])
    })
  })
})
