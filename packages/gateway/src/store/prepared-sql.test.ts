import { afterEach, beforeEach, expect, it } from 'vitest'
import { insertRows } from './insert-rows.js'
import type { Store } from './open-store.js'
import { runSql } from './prepared-sql.js'
import { describeEachBackend } from './test-backends.js'
import { requestRow } from './test-rows.js'

const NOW = 1_767_225_600_000
const BY_REQUESTER_AND_STATUS = 'select "id" from "requests" where "requester_id" = ? and "status" = ? order by "id"'

describeEachBackend('runSql', (backend) => {
  let store: Store

  beforeEach(async () => {
    store = await backend.open()
    await insertRows(store.db, 'requests', [
      requestRow('req_1', NOW),
      { ...requestRow('req_2', NOW), status: 'approved' },
      { ...requestRow('req_3', NOW), requester_id: 'agent-2' },
    ])
  })

  afterEach(async () => {
    await store.close()
  })

  it('binds each value to its placeholder, in order', async () => {
    expect((await runSql(store.db, BY_REQUESTER_AND_STATUS, ['agent-1', 'pending'])).rows).toEqual([{ id: 'req_1' }])
    expect((await runSql(store.db, BY_REQUESTER_AND_STATUS, ['agent-2', 'pending'])).rows).toEqual([{ id: 'req_3' }])
    expect((await runSql(store.db, BY_REQUESTER_AND_STATUS, ['pending', 'agent-1'])).rows).toEqual([])
  })

  it('treats a value that looks like SQL as a value', async () => {
    expect((await runSql(store.db, BY_REQUESTER_AND_STATUS, [`agent-1' or '1'='1`, 'pending'])).rows).toEqual([])
    expect(await store.db.selectFrom('requests').select('id').execute()).toHaveLength(3)
  })

  it('refuses a statement whose placeholders and values do not match, without running it', async () => {
    await expect(runSql(store.db, 'delete from "requests" where "id" = ?', [])).rejects.toThrow(/1 placeholders but 0 values/)
    await expect(runSql(store.db, 'delete from "requests"', ['req_1'])).rejects.toThrow(/0 placeholders but 1 values/)
    expect(await store.db.selectFrom('requests').select('id').execute()).toHaveLength(3)
  })

  it('runs inside the transaction it is given', async () => {
    await expect(
      store.db.transaction().execute(async (trx) => {
        await runSql(trx, 'delete from "requests" where "id" = ?', ['req_1'])
        expect((await runSql(trx, BY_REQUESTER_AND_STATUS, ['agent-1', 'pending'])).rows).toEqual([])
        throw new Error('roll back')
      }),
    ).rejects.toThrow('roll back')
    expect((await runSql(store.db, BY_REQUESTER_AND_STATUS, ['agent-1', 'pending'])).rows).toEqual([{ id: 'req_1' }])
  })
})
