import { generateKeyPairSync } from 'node:crypto'
import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { AuditEvent } from '../core/index.js'
import type { Store } from '../store/index.js'
import { describeEachBackend } from '../store/test-backends.js'
import { appendAuditEvents } from './append-audit-events.js'
import { GENESIS_HASH, hashAuditEntry } from './audit-hash.js'
import { loadAuditSigner } from './audit-signer.js'
import { createCheckpointer } from './checkpointer.js'
import { verifyAuditLog } from './verify-audit-log.js'

const NOW = 1_767_225_600_000
const signer = loadAuditSigner({
  privateKeyPem:
    '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n',
})
const otherSigner = loadAuditSigner({
  privateKeyPem: generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
})
const publicKey = signer.publicKey

function events(from: number, count: number): AuditEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    type: 'vote.cast',
    actor: { id: 'dana@example.com', kind: 'human', via: 'api' },
    requestId: `req-${from + i}`,
    data: { version: from + i, digest: 'ab', decision: 'approve', reason: 'a, "quoted"\nline' },
  }))
}

/** Appends `count` entries in transactions of `batch`, checkpointing every `checkpointEvery`. */
async function seed(store: Store, count: number, checkpointEvery: number, batch = 10): Promise<void> {
  const checkpointer = createCheckpointer(signer, { everyEntries: checkpointEvery, everyMs: Number.MAX_SAFE_INTEGER })
  for (let from = 1; from <= count; from += batch) {
    await store.db.transaction().execute(async (trx) => {
      await appendAuditEvents(trx, events(from, Math.min(batch, count - from + 1)), NOW + from)
      await checkpointer.maybeCheckpoint(trx, NOW + from)
    })
  }
}

async function tamper(store: Store, statement: ReturnType<typeof sql>): Promise<void> {
  await statement.execute(store.db)
}

describeEachBackend('verifyAuditLog', (backend) => {
  let store: Store

  beforeEach(async () => {
    store = await backend.open()
  })

  afterEach(async () => {
    await store.close()
  })

  it('accepts an empty log', async () => {
    expect(await verifyAuditLog(store, { publicKey })).toEqual({ ok: true, entries: 0, checkpoints: 0, headHash: GENESIS_HASH })
  })

  it('accepts an untouched log and counts its entries and checkpoints', async () => {
    await seed(store, 50, 20)
    const head = await store.db.selectFrom('audit_entries').select('hash').where('seq', '=', 50).executeTakeFirstOrThrow()
    expect(await verifyAuditLog(store, { publicKey })).toEqual({ ok: true, entries: 50, checkpoints: 2, headHash: head.hash })
  })

  it('accepts the public key as PEM text', async () => {
    await seed(store, 20, 10)
    expect(await verifyAuditLog(store, { publicKey: signer.publicKeyPem })).toMatchObject({ ok: true, checkpoints: 2 })
  })

  it.each([
    ['data', sql`update audit_entries set data = '{"n":17,"action":"db.drop"}' where seq = 17`],
    ['type', sql`update audit_entries set type = 'request.cancelled' where seq = 17`],
    ['ts', sql`update audit_entries set ts = ts + 1 where seq = 17`],
    ['actor', sql`update audit_entries set actor = '{"id":"someone-else","kind":"human","via":"api"}' where seq = 17`],
    ['request_id', sql`update audit_entries set request_id = null where seq = 17`],
    ['hash', sql`update audit_entries set hash = ${'e'.repeat(64)} where seq = 17`],
    ['data (to invalid JSON)', sql`update audit_entries set data = '{not json' where seq = 17`],
  ])('reports the entry as modified when its %s column is changed', async (_column, statement) => {
    await seed(store, 30, 100)
    await tamper(store, statement)
    const result = await verifyAuditLog(store, { publicKey })
    expect(result).toMatchObject({ ok: false, seq: 17, problem: 'modified' })
    if (!result.ok) expect(result.message).toContain('entry 17')
  })

  it('reports the earlier entry as modified when it was rewritten and re-hashed', async () => {
    await seed(store, 30, 100)
    const row = await store.db.selectFrom('audit_entries').selectAll().where('seq', '=', 12).executeTakeFirstOrThrow()
    const data = '{"n":12,"action":"nothing to see"}'
    const hash = hashAuditEntry({ ...row, actor: JSON.parse(row.actor), data: JSON.parse(data) })
    await tamper(store, sql`update audit_entries set data = ${data}, hash = ${hash} where seq = 12`)
    const result = await verifyAuditLog(store, { publicKey })
    expect(result).toMatchObject({ ok: false, seq: 12, problem: 'modified' })
    if (!result.ok) expect(result.message).toBe('entry 12 was modified and re-hashed: entry 13 still links to its original hash')
  })

  it('reports a deleted entry as missing', async () => {
    await seed(store, 30, 100)
    await tamper(store, sql`delete from audit_entries where seq = 9`)
    expect(await verifyAuditLog(store, { publicKey })).toEqual({
      ok: false,
      seq: 9,
      problem: 'missing',
      message: 'entry 9 is missing: the log jumps from seq 8 to 10',
    })
  })

  it('reports deleted first entries as missing', async () => {
    await seed(store, 10, 100)
    await tamper(store, sql`delete from audit_entries where seq <= 2`)
    expect(await verifyAuditLog(store, { publicKey })).toMatchObject({
      ok: false,
      seq: 1,
      problem: 'missing',
      message: 'entries 1 to 2 are missing: the log starts at seq 3',
    })
  })

  it('reports two entries whose contents were swapped as reordered', async () => {
    await seed(store, 30, 10)
    const [a, b] = await store.db.selectFrom('audit_entries').selectAll().where('seq', 'in', [14, 15]).orderBy('seq').execute()
    for (const [target, source] of [[a!, b!], [b!, a!]] as const) {
      await tamper(
        store,
        sql`update audit_entries set ts = ${source.ts}, type = ${source.type}, actor = ${source.actor}, request_id = ${source.request_id},
            data = ${source.data}, prev_hash = ${source.prev_hash}, hash = ${source.hash} where seq = ${target.seq}`,
      )
    }
    const result = await verifyAuditLog(store, { publicKey })
    expect(result).toEqual({
      ok: false,
      seq: 14,
      problem: 'reordered',
      message: 'entry 14 is out of order: it follows the entry now stored at seq 15 instead of entry 13',
    })
  })

  it('reports a log cut back below its latest checkpoint as truncated after that checkpoint', async () => {
    await seed(store, 40, 20)
    await tamper(store, sql`delete from audit_entries where seq > 35`)
    const result = await verifyAuditLog(store, { publicKey })
    expect(result).toMatchObject({ ok: false, seq: 36, problem: 'truncated' })
    if (!result.ok) {
      expect(result.message).toContain('truncated after checkpoint at size 40')
      expect(result.message).toContain('the log ends at seq 35, so entries 36 to 40 are gone')
    }
  })

  it('reports a log emptied below its checkpoints as truncated', async () => {
    await seed(store, 20, 10)
    await tamper(store, sql`delete from audit_entries`)
    expect(await verifyAuditLog(store, { publicKey })).toMatchObject({ ok: false, seq: 1, problem: 'truncated' })
  })

  it('reports a checkpoint whose signature was altered', async () => {
    await seed(store, 30, 10)
    const checkpoint = await store.db.selectFrom('checkpoints').selectAll().where('size', '=', 20).executeTakeFirstOrThrow()
    const flipped = (checkpoint.signature.startsWith('A') ? 'B' : 'A') + checkpoint.signature.slice(1)
    await tamper(store, sql`update checkpoints set signature = ${flipped} where size = 20`)
    const result = await verifyAuditLog(store, { publicKey })
    expect(result).toMatchObject({ ok: false, seq: 20, problem: 'bad_checkpoint_signature' })
    if (!result.ok) expect(result.message).toContain('the checkpoint at size 20')
  })

  it('reports a checkpoint signed with another key, naming both keys', async () => {
    await seed(store, 30, 10)
    const forged = otherSigner.sign({ size: 40, head_hash: 'a'.repeat(64), ts: NOW })
    await store.db.insertInto('checkpoints').values(forged).execute()
    await tamper(store, sql`delete from checkpoints where size = 20`)
    await store.db.insertInto('checkpoints').values(otherSigner.sign({ size: 20, head_hash: 'b'.repeat(64), ts: NOW })).execute()
    const result = await verifyAuditLog(store, { publicKey })
    expect(result).toMatchObject({ ok: false, seq: 20, problem: 'bad_checkpoint_signature' })
    if (!result.ok) expect(result.message).toContain(`it names key ${otherSigner.keyId}; verifying with key ${signer.keyId}`)
  })

  it('reports a forged checkpoint beyond the end of the log as a bad signature, not a truncation', async () => {
    await seed(store, 10, 100)
    await store.db.insertInto('checkpoints').values(otherSigner.sign({ size: 50, head_hash: 'a'.repeat(64), ts: NOW })).execute()
    expect(await verifyAuditLog(store, { publicKey })).toMatchObject({ ok: false, seq: 50, problem: 'bad_checkpoint_signature' })
  })

  it('reports a checkpoint mismatch when the entries before it were rewritten and the whole chain re-hashed', async () => {
    await seed(store, 30, 10)
    const rows = await store.db.selectFrom('audit_entries').selectAll().where('seq', '>=', 5).orderBy('seq').execute()
    const before = await store.db.selectFrom('audit_entries').select('hash').where('seq', '=', 4).executeTakeFirstOrThrow()
    let prevHash = before.hash
    for (const row of rows) {
      const data = row.seq === 5 ? '{"n":5,"action":"db.read"}' : row.data
      const hash = hashAuditEntry({ ...row, actor: JSON.parse(row.actor), data: JSON.parse(data), prev_hash: prevHash })
      await tamper(store, sql`update audit_entries set data = ${data}, prev_hash = ${prevHash}, hash = ${hash} where seq = ${row.seq}`)
      prevHash = hash
    }
    const result = await verifyAuditLog(store, { publicKey })
    expect(result).toMatchObject({ ok: false, seq: 10, problem: 'checkpoint_mismatch' })
    if (!result.ok) expect(result.message).toContain('entries up to seq 10 were rewritten')
  })

  it('reports progress page by page up to the total', async () => {
    await seed(store, 30, 100, 30)
    const progress: Array<{ verified: number; total: number }> = []
    await verifyAuditLog(store, { publicKey }, (p) => progress.push(p))
    expect(progress.at(-1)).toEqual({ verified: 30, total: 30 })
  })
})

describeEachBackend('verifyAuditLog at scale', (backend) => {
  it('verifies an untouched log of 100,000 entries', { timeout: 120_000 }, async () => {
    const store = await backend.open()
    try {
      const checkpointer = createCheckpointer(signer, { everyEntries: 10_000, everyMs: Number.MAX_SAFE_INTEGER })
      const batch = 5000
      for (let from = 1; from <= 100_000; from += batch) {
        await store.db.transaction().execute(async (trx) => {
          await appendAuditEvents(trx, events(from, batch), NOW + from)
          await checkpointer.maybeCheckpoint(trx, NOW + from)
        })
      }
      const started = performance.now()
      const result = await verifyAuditLog(store, { publicKey })
      expect(result).toMatchObject({ ok: true, entries: 100_000, checkpoints: 10 })
      expect(performance.now() - started).toBeLessThan(60_000)
    } finally {
      await store.close()
    }
  })
})

describe('verifyAuditLog input', () => {
  it('refuses a public key that is not Ed25519', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' }).toString()
    await expect(verifyAuditLog({ db: undefined as never }, { publicKey: rsa })).rejects.toMatchObject({ code: 'config_invalid' })
  })
})
