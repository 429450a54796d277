import { afterEach, beforeEach, expect, it } from 'vitest'
import { insertRows } from './insert-rows.js'
import type { Store } from './open-store.js'
import { describeEachBackend } from './test-backends.js'
import { requestRow } from './test-rows.js'

const NOW = 1_767_225_600_000

describeEachBackend('insertRows', (backend) => {
  let store: Store

  beforeEach(async () => {
    store = await backend.open()
  })

  afterEach(async () => {
    await store.close()
  })

  it('inserts several rows in one statement and reads them back as written', async () => {
    await insertRows(store.db, 'requests', [requestRow('req_1', NOW), requestRow('req_2', NOW + 1)])
    const rows = await store.db.selectFrom('requests').selectAll().orderBy('id').execute()
    expect(rows).toEqual([requestRow('req_1', NOW), requestRow('req_2', NOW + 1)])
  })

  it('binds values, so text that looks like SQL is stored as text', async () => {
    const reason = `x'); drop table requests; --`
    await insertRows(store.db, 'requests', [{ ...requestRow('req_1', NOW), reason }])
    await insertRows(store.db, 'requests', [{ ...requestRow('req_2', NOW), reason }])
    const rows = await store.db.selectFrom('requests').select('reason').execute()
    expect(rows).toEqual([{ reason }, { reason }])
  })

  it('writes nothing when one row of the batch breaks a constraint', async () => {
    await expect(insertRows(store.db, 'requests', [requestRow('req_1', NOW), requestRow('req_1', NOW)])).rejects.toThrow()
    expect(await store.db.selectFrom('requests').select('id').execute()).toEqual([])
  })

  it('refuses rows whose columns differ, before touching the database', async () => {
    const { reason: _omitted, ...withoutReason } = requestRow('req_2', NOW)
    await expect(insertRows(store.db, 'requests', [requestRow('req_1', NOW), withoutReason])).rejects.toThrow(
      /every row must have the columns/,
    )
    expect(await store.db.selectFrom('requests').select('id').execute()).toEqual([])
  })

  it('refuses a column name that is not a plain identifier', async () => {
    const row = { ...requestRow('req_1', NOW), 'id" text, "x': 'y' }
    await expect(insertRows(store.db, 'requests', [row])).rejects.toThrow(/not a plain identifier/)
    expect(await store.db.selectFrom('requests').select('id').execute()).toEqual([])
  })

  it('does nothing for no rows', async () => {
    await insertRows(store.db, 'requests', [])
    expect(await store.db.selectFrom('requests').select('id').execute()).toEqual([])
  })
})
