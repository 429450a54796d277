import { afterEach, beforeEach, expect, it } from 'vitest'
import type { AuditEvent } from '../core/index.js'
import type { Store } from '../store/index.js'
import { describeEachBackend } from '../store/test-backends.js'
import { appendAuditEvents } from './append-audit-events.js'
import { loadAuditSigner, verifyCheckpointSignature } from './audit-signer.js'
import { createCheckpointer, getLatestCheckpoint } from './checkpointer.js'

const NOW = 1_767_225_600_000
const signer = loadAuditSigner({
  privateKeyPem:
    '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n',
})

function events(count: number): AuditEvent[] {
  return Array.from({ length: count }, (_, n) => ({ type: 'grant.expired', actor: { id: 'system', kind: 'system', via: 'scheduler' }, data: { jti: `grt_${n}` } }))
}

describeEachBackend('createCheckpointer', (backend) => {
  let store: Store

  beforeEach(async () => {
    store = await backend.open()
  })

  afterEach(async () => {
    await store.close()
  })

  const appendThenMaybe = (checkpointer: ReturnType<typeof createCheckpointer>, count: number, now: number, passHead = false) =>
    store.db.transaction().execute(async (trx) => {
      const entries = await appendAuditEvents(trx, events(count), now)
      return checkpointer.maybeCheckpoint(trx, now, passHead ? entries.at(-1) : undefined)
    })

  for (const passHead of [false, true]) {
    const given = passHead ? 'given the appended head' : 'reading the head'

    it(`writes a checkpoint once everyEntries new entries have accumulated (${given})`, async () => {
      const checkpointer = createCheckpointer(signer, { everyEntries: 10, everyMs: 3_600_000 })
      expect(await appendThenMaybe(checkpointer, 9, NOW, passHead)).toBeUndefined()
      expect(await appendThenMaybe(checkpointer, 2, NOW + 1, passHead)).toMatchObject({ size: 11 })
      expect(await appendThenMaybe(checkpointer, 9, NOW + 2, passHead)).toBeUndefined()
      expect(await appendThenMaybe(checkpointer, 1, NOW + 3, passHead)).toMatchObject({ size: 21 })
    })

    it(`writes a checkpoint once everyMs has passed since the last one (${given})`, async () => {
      const checkpointer = createCheckpointer(signer, { everyEntries: 1000, everyMs: 60_000 })
      expect(await appendThenMaybe(checkpointer, 1, NOW, passHead)).toBeUndefined()
      expect(await appendThenMaybe(checkpointer, 1, NOW + 59_999, passHead)).toBeUndefined()
      expect(await appendThenMaybe(checkpointer, 1, NOW + 60_000, passHead)).toMatchObject({ size: 3, ts: NOW + 60_000 })
      expect(await appendThenMaybe(checkpointer, 1, NOW + 60_001, passHead)).toBeUndefined()
      expect(await appendThenMaybe(checkpointer, 1, NOW + 120_000, passHead)).toMatchObject({ size: 5 })
    })
  }

  it('does not skip a checkpoint that another writer made, or one that rolled back', async () => {
    const checkpointer = createCheckpointer(signer, { everyEntries: 5, everyMs: 3_600_000 })
    const otherReplica = createCheckpointer(signer, { everyEntries: 5, everyMs: 3_600_000 })
    expect(await appendThenMaybe(checkpointer, 4, NOW, true)).toBeUndefined()
    // Another replica checkpoints at 5; this one remembers none, so at 9 it reads again and finds none due yet.
    expect(await appendThenMaybe(otherReplica, 1, NOW + 1, true)).toMatchObject({ size: 5 })
    expect(await appendThenMaybe(checkpointer, 4, NOW + 2, true)).toBeUndefined()
    expect(await appendThenMaybe(checkpointer, 1, NOW + 3, true)).toMatchObject({ size: 10 })
    // A checkpoint whose transaction rolls back is not taken for written.
    await expect(
      store.db.transaction().execute(async (trx) => {
        const entries = await appendAuditEvents(trx, events(5), NOW + 4)
        expect(await checkpointer.maybeCheckpoint(trx, NOW + 4, entries.at(-1))).toMatchObject({ size: 15 })
        throw new Error('roll back')
      }),
    ).rejects.toThrow('roll back')
    expect(await appendThenMaybe(checkpointer, 5, NOW + 5, true)).toMatchObject({ size: 15 })
  })

  it('writes a checkpoint of the head it signs', async () => {
    const checkpointer = createCheckpointer(signer, { everyEntries: 10, everyMs: 3_600_000 })
    const checkpoint = await appendThenMaybe(checkpointer, 11, NOW + 1)
    const head = await store.db.selectFrom('audit_entries').select('hash').where('seq', '=', 11).executeTakeFirstOrThrow()
    expect(checkpoint).toMatchObject({ size: 11, head_hash: head.hash, ts: NOW + 1, key_id: signer.keyId })
    expect(verifyCheckpointSignature(checkpoint!, signer.publicKey)).toBe(true)
    expect(await getLatestCheckpoint(store.db)).toEqual(checkpoint)
  })

  it('writes no checkpoint when no entry is new, however much time has passed', async () => {
    const checkpointer = createCheckpointer(signer, { everyEntries: 1, everyMs: 1 })
    expect(await store.db.transaction().execute((trx) => checkpointer.maybeCheckpoint(trx, NOW))).toBeUndefined()
    await appendThenMaybe(checkpointer, 1, NOW)
    expect(await store.db.transaction().execute((trx) => checkpointer.maybeCheckpoint(trx, NOW + 3_600_000))).toBeUndefined()
    expect(await store.db.selectFrom('checkpoints').select('size').execute()).toEqual([{ size: 1 }])
  })

  it('checkpoints the current head on demand unless the latest checkpoint already covers it', async () => {
    const checkpointer = createCheckpointer(signer)
    expect(await checkpointer.checkpointNow(store, NOW)).toBeUndefined()
    await appendThenMaybe(checkpointer, 3, NOW)
    expect(await checkpointer.checkpointNow(store, NOW + 5)).toMatchObject({ size: 3, ts: NOW + 5 })
    expect(await checkpointer.checkpointNow(store, NOW + 6)).toBeUndefined()
  })

  it('refuses a policy that could never or always fire', () => {
    expect(() => createCheckpointer(signer, { everyEntries: 0 })).toThrow(TypeError)
    expect(() => createCheckpointer(signer, { everyMs: -1 })).toThrow(TypeError)
  })
})
