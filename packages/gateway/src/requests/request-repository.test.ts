import { afterEach, beforeEach, expect, it } from 'vitest'
import type { Store } from '../store/index.js'
import { describeEachBackend } from '../store/test-backends.js'
import { requestRow } from '../store/test-rows.js'
import { requestRepository } from './request-repository.js'

const NOW = 1_767_225_600_000
const MINUTE = 60_000

describeEachBackend('requestRepository', (backend) => {
  let store: Store
  beforeEach(async () => {
    store = await backend.open()
  })
  afterEach(async () => {
    await store.close()
  })

  it('reads a review stored before it kept its durations and channels, taking the durations from the stored deadlines', async () => {
    const legacy = {
      requirements: [{ rule: 'owners', approvers: ['group:owners'], quorum: 1, denyQuorum: 1 }],
      allowEdit: true,
      requireReason: false,
      escalateTo: ['group:security'],
      onTimeout: 'deny',
      policyGroups: { owners: ['dana@example.com'] },
    }
    await store.db
      .insertInto('requests')
      .values({ ...requestRow('req_legacy', NOW), review: JSON.stringify(legacy), deadline_at: NOW + 30 * MINUTE, escalate_at: NOW + 10 * MINUTE })
      .execute()
    await store.db
      .insertInto('request_versions')
      .values({ request_id: 'req_legacy', version: 1, params: '{}', redacted_params: '{}', digest: 'd'.repeat(64), created_at: NOW, created_by: 'agent-1' })
      .execute()
    const record = await store.db.transaction().execute((trx) => requestRepository.load(trx, 'req_legacy', { lock: false }))
    expect(record?.state.review).toEqual({ ...legacy, timeoutMs: 30 * MINUTE, escalateAfterMs: 10 * MINUTE, notify: [] })
  })

  it('refuses a listing cursor it did not issue with invalid_request', async () => {
    const listed = store.db.transaction().execute((trx) => requestRepository.listPage(trx, { limit: 10, cursor: 'bm90LWEtY3Vyc29y' }))
    await expect(listed).rejects.toMatchObject({
      code: 'invalid_request',
      message: 'The cursor is not one this gateway issued; start again without it.',
    })
  })
})
