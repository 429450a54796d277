import { sql } from 'kysely'
import { afterEach, beforeEach, expect, it } from 'vitest'
import type { Store } from '../store/index.js'
import { describeEachBackend } from '../store/test-backends.js'
import { appendAuditEvents } from './append-audit-events.js'
import type { AuditEntry } from './audit-entry.js'
import { GENESIS_HASH, hashAuditEntry } from './audit-hash.js'
import { exportAuditLog } from './export-audit-log.js'

const NOW = 1_767_225_600_000

async function exported(store: Store, options: Parameters<typeof exportAuditLog>[1]): Promise<{ text: string; count: number }> {
  let text = ''
  const count = await exportAuditLog(store, options, async (chunk) => {
    text += chunk
  })
  return { text, count }
}

describeEachBackend('exportAuditLog', (backend) => {
  let store: Store

  beforeEach(async () => {
    store = await backend.open()
    for (const [i, ts] of [NOW, NOW + 1000, NOW + 2000].entries()) {
      await store.db.transaction().execute((trx) =>
        appendAuditEvents(
          trx,
          [
            {
              type: 'vote.cast',
              actor: { id: `reviewer-${i}@example.com`, kind: 'human', via: 'slack' },
              requestId: i === 0 ? undefined : `req-${i}`,
              data: { reason: 'looks fine, "ship it"\nthanks', version: i, digest: 'ab', decision: 'approve' },
            },
          ],
          ts,
        ),
      )
    }
  })

  afterEach(async () => {
    await store.close()
  })

  it('writes one JSON entry per line that can be re-hashed on its own', async () => {
    const { text, count } = await exported(store, { format: 'jsonl' })
    expect(count).toBe(3)
    const lines = text.split('\n')
    expect(lines.at(-1)).toBe('')
    const entries = lines.slice(0, -1).map((line) => JSON.parse(line) as AuditEntry)
    expect(entries.map((entry) => entry.seq)).toEqual([1, 2, 3])
    expect(Object.keys(entries[0]!)).toEqual(['seq', 'ts', 'type', 'actor', 'request_id', 'data', 'prev_hash', 'hash'])
    let prevHash = GENESIS_HASH
    for (const { hash, ...content } of entries) {
      expect(content.prev_hash).toBe(prevHash)
      expect(hashAuditEntry(content)).toBe(hash)
      prevHash = hash
    }
  })

  it('writes RFC 4180 CSV with a header row and quotes cells that need it', async () => {
    const { text } = await exported(store, { format: 'csv' })
    const rows = text.split('\r\n')
    expect(rows[0]).toBe('seq,ts,time,type,actor_id,actor_kind,actor_via,request_id,data,prev_hash,hash')
    expect(text.startsWith('seq,ts,time,type,actor_id,actor_kind,actor_via,request_id,data,prev_hash,hash\r\n1,1767225600000,2026-01-01T00:00:00.000Z,vote.cast,reviewer-0@example.com,human,slack,,"{""decision"":""approve"",""digest"":""ab"",""reason"":""looks fine, \\""ship it\\""\\nthanks"",""version"":0}",' + GENESIS_HASH + ',')).toBe(true)
    expect(text.endsWith('\r\n')).toBe(true)
    expect(rows).toHaveLength(5)
  })

  it('writes only entries at or after since', async () => {
    const { text, count } = await exported(store, { format: 'jsonl', since: NOW + 1000 })
    expect(count).toBe(2)
    expect(text.split('\n').slice(0, -1).map((line) => (JSON.parse(line) as AuditEntry).seq)).toEqual([2, 3])
  })

  it('writes only the header when nothing matches', async () => {
    const { text, count } = await exported(store, { format: 'csv', since: NOW + 10_000 })
    expect(count).toBe(0)
    expect(text).toBe('seq,ts,time,type,actor_id,actor_kind,actor_via,request_id,data,prev_hash,hash\r\n')
  })

  it('fails with audit_verify_failed naming the entry when stored JSON was corrupted', async () => {
    await sql`update audit_entries set data = '{broken' where seq = 2`.execute(store.db)
    await expect(exported(store, { format: 'jsonl' })).rejects.toMatchObject({ code: 'audit_verify_failed', details: { seq: 2 } })
  })
})
