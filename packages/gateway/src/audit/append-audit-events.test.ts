import { sql } from 'kysely'
import { afterEach, beforeEach, expect, it } from 'vitest'
import type { AuditEvent } from '../core/index.js'
import { isUniqueViolation } from '../store/index.js'
import type { Store } from '../store/index.js'
import { describeEachBackend } from '../store/test-backends.js'
import { appendAuditEvents } from './append-audit-events.js'
import { GENESIS_HASH, hashAuditEntry } from './audit-hash.js'
import { loadAuditSigner } from './audit-signer.js'
import { verifyAuditLog } from './verify-audit-log.js'

const NOW = 1_767_225_600_000
const signer = loadAuditSigner({
  privateKeyPem:
    '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n',
})

function event(n: number): AuditEvent {
  return { type: 'grant.expired', actor: { id: 'agent-1', kind: 'agent', via: 'api' }, requestId: `req-${n}`, data: { jti: `grt_${n}` } }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected the operation to fail')
}

describeEachBackend('appendAuditEvents', (backend) => {
  let store: Store

  beforeEach(async () => {
    store = await backend.open()
  })

  afterEach(async () => {
    await store.close()
  })

  it('links the first entry to the genesis hash and each next entry to the one before', async () => {
    const entries = await store.db.transaction().execute((trx) => appendAuditEvents(trx, [event(1), event(2), event(3)], NOW))
    expect(entries.map((entry) => entry.seq)).toEqual([1, 2, 3])
    expect(entries[0]?.prev_hash).toBe(GENESIS_HASH)
    expect(entries[1]?.prev_hash).toBe(entries[0]?.hash)
    expect(entries[2]?.prev_hash).toBe(entries[1]?.hash)
    for (const { hash, ...content } of entries) expect(hashAuditEntry(content)).toBe(hash)
  })

  it('continues the chain across transactions', async () => {
    const [first] = await store.db.transaction().execute((trx) => appendAuditEvents(trx, [event(1)], NOW))
    const [second] = await store.db.transaction().execute((trx) => appendAuditEvents(trx, [event(2)], NOW + 1))
    expect(second).toMatchObject({ seq: 2, prev_hash: first?.hash, ts: NOW + 1 })
  })

  it('stores what it returns, with actor and data as canonical JSON', async () => {
    const [entry] = await store.db.transaction().execute((trx) =>
      appendAuditEvents(trx, [{ type: 'vote.cast', actor: { via: 'slack', kind: 'human', id: 'dana@example.com' }, data: { version: 1, reason: null, digest: 'ab', decision: 'approve' } }], NOW),
    )
    const row = await store.db.selectFrom('audit_entries').selectAll().executeTakeFirstOrThrow()
    expect(row).toEqual({
      seq: 1,
      ts: NOW,
      type: 'vote.cast',
      actor: '{"id":"dana@example.com","kind":"human","via":"slack"}',
      request_id: null,
      data: '{"decision":"approve","digest":"ab","reason":null,"version":1}',
      prev_hash: GENESIS_HASH,
      hash: entry?.hash,
    })
  })

  it('writes nothing when the surrounding transaction rolls back, and the next append reuses the seq', async () => {
    const failure = await rejection(
      store.db.transaction().execute(async (trx) => {
        await appendAuditEvents(trx, [event(1)], NOW)
        throw new Error('state change failed')
      }),
    )
    expect(failure).toHaveProperty('message', 'state change failed')
    expect(await store.db.selectFrom('audit_entries').select('seq').execute()).toEqual([])
    const [entry] = await store.db.transaction().execute((trx) => appendAuditEvents(trx, [event(2)], NOW))
    expect(entry).toMatchObject({ seq: 1, prev_hash: GENESIS_HASH })
  })

  it('refuses to run outside a transaction', async () => {
    const error = await rejection(appendAuditEvents(store.db as never, [event(1)], NOW))
    expect(error).toBeInstanceOf(TypeError)
    expect((error as Error).message).toContain('inside a transaction')
  })

  it('refuses data JSON cannot represent and writes nothing', async () => {
    const error = await rejection(
      store.db.transaction().execute((trx) => appendAuditEvents(trx, [event(1), { type: 'vote.cast', actor: { id: 'dana@example.com', kind: 'human', via: 'api' }, data: { version: Number.NaN, digest: 'ab', decision: 'deny', reason: null } }], NOW)),
    )
    expect(error).toBeInstanceOf(TypeError)
    expect((error as Error).message).toContain('vote.cast')
    expect(await store.db.selectFrom('audit_entries').select('seq').execute()).toEqual([])
  })

  it('returns nothing and writes nothing for an empty batch', async () => {
    expect(await store.db.transaction().execute((trx) => appendAuditEvents(trx, [], NOW))).toEqual([])
    expect(await store.db.selectFrom('audit_entries').select('seq').execute()).toEqual([])
  })

  it('rejects a second entry with an existing seq at the database level', async () => {
    await store.db.transaction().execute((trx) => appendAuditEvents(trx, [event(1)], NOW))
    const row = await store.db.selectFrom('audit_entries').selectAll().executeTakeFirstOrThrow()
    const error = await rejection(store.db.insertInto('audit_entries').values({ ...row, hash: 'f'.repeat(64) }).execute())
    expect(isUniqueViolation(error)).toBe(true)
  })

  it('gives 20 concurrent transactions of 5 events each the seqs 1 to 100 on one intact chain', async () => {
    await Promise.all(
      Array.from({ length: 20 }, (_, t) =>
        store.db.transaction().execute(async (trx) => {
          // A state change before the append, as real callers do, widens the window for a race.
          await sql`select 1`.execute(trx)
          return appendAuditEvents(trx, Array.from({ length: 5 }, (_, i) => event(t * 5 + i)), NOW + t)
        }),
      ),
    )
    const seqs = await store.db.selectFrom('audit_entries').select('seq').orderBy('seq').execute()
    expect(seqs.map((row) => row.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
    const result = await verifyAuditLog(store, { publicKey: signer.publicKey })
    expect(result).toMatchObject({ ok: true, entries: 100 })
  })
})
