import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { AuditEntry } from './audit-entry.js'
import { canonicalJson } from '../core/index.js'
import { GENESIS_HASH, checkpointSigningInput, hashAuditEntry, hashCanonicalParts } from './audit-hash.js'

const entry: Omit<AuditEntry, 'hash'> = {
  seq: 1,
  ts: 1_767_225_600_000,
  type: 'request.created',
  actor: { id: 'agent-7', kind: 'agent', via: 'api' },
  request_id: 'req_1',
  data: { action: 'db.export', params: { limit: 10, table: 'customers' } },
  prev_hash: GENESIS_HASH,
}

describe('hashAuditEntry', () => {
  it('starts the chain from sixty-four zeros', () => {
    expect(GENESIS_HASH).toBe('0000000000000000000000000000000000000000000000000000000000000000')
  })

  it('hashes prev_hash followed by the RFC 8785 canonical JSON of every other field', () => {
    const canonical =
      '{"actor":{"id":"agent-7","kind":"agent","via":"api"},' +
      '"data":{"action":"db.export","params":{"limit":10,"table":"customers"}},' +
      `"prev_hash":"${GENESIS_HASH}","request_id":"req_1","seq":1,"ts":1767225600000,"type":"request.created"}`
    const expected = createHash('sha256').update(GENESIS_HASH + canonical).digest('hex')
    expect(hashAuditEntry(entry)).toBe(expected)
  })

  it('ignores the order in which object keys were written', () => {
    const reordered = { ...entry, data: { params: { table: 'customers', limit: 10 }, action: 'db.export' } }
    expect(hashAuditEntry(reordered)).toBe(hashAuditEntry(entry))
  })

  it('ignores a stale hash field passed along with the entry', () => {
    expect(hashAuditEntry({ ...entry, hash: 'f'.repeat(64) } as AuditEntry)).toBe(hashAuditEntry(entry))
  })

  it('changes when any field changes', () => {
    const base = hashAuditEntry(entry)
    fc.assert(
      fc.property(
        fc.constantFrom('seq', 'ts', 'type', 'actor', 'request_id', 'data', 'prev_hash'),
        fc.string({ minLength: 1 }),
        (field, noise) => {
          const changed = {
            ...entry,
            seq: field === 'seq' ? entry.seq + noise.length : entry.seq,
            ts: field === 'ts' ? entry.ts + noise.length : entry.ts,
            type: field === 'type' ? entry.type + noise : entry.type,
            actor: field === 'actor' ? { ...entry.actor, via: entry.actor.via + noise } : entry.actor,
            request_id: field === 'request_id' ? `${entry.request_id}${noise}` : entry.request_id,
            data: field === 'data' ? { ...entry.data, extra: noise } : entry.data,
            prev_hash: field === 'prev_hash' ? createHash('sha256').update(noise).digest('hex') : entry.prev_hash,
          }
          expect(hashAuditEntry(changed)).not.toBe(base)
        },
      ),
    )
  })

  it('refuses values JSON cannot carry instead of hashing them ambiguously', () => {
    const entry = { seq: 1, ts: 0, type: 't', actor: { id: 'a', kind: 'system', via: 'test' }, request_id: null, data: { ratio: Number.NaN }, prev_hash: GENESIS_HASH }
    expect(() => hashAuditEntry(entry as never)).toThrow(Error)
  })
})

describe('checkpointSigningInput', () => {
  it('is the canonical JSON of size, head_hash and ts only', () => {
    const input = checkpointSigningInput({ ts: 5, size: 3, head_hash: 'ab', signature: 'x', key_id: 'y' } as never)
    expect(input.toString('utf8')).toBe('{"head_hash":"ab","size":3,"ts":5}')
  })
})

describe('hashCanonicalParts', () => {
  it('gives exactly the hash of hashAuditEntry for any entry', () => {
    const json = fc.jsonValue().filter((value) => value !== null && typeof value === 'object' && !Array.isArray(value))
    fc.assert(
      fc.property(
        fc.record({
          seq: fc.nat(),
          ts: fc.nat(),
          type: fc.string({ unit: 'binary' }).filter((t) => canonicalJsonAccepts(t)),
          request_id: fc.option(fc.string(), { nil: null }),
          prev_hash: fc.stringMatching(/^[0-9a-f]{64}$/),
          actor: fc.record({ id: fc.string(), kind: fc.constantFrom('human', 'agent', 'service', 'system'), via: fc.string() }),
          data: json,
        }),
        (entry) => {
          const typed = entry as unknown as Omit<AuditEntry, 'hash'>
          expect(hashCanonicalParts(typed, canonicalJson(typed.actor), canonicalJson(typed.data))).toBe(hashAuditEntry(typed))
        },
      ),
      { numRuns: 300 },
    )
  })
})

function canonicalJsonAccepts(text: string): boolean {
  try {
    canonicalJson(text)
    return true
  } catch {
    return false
  }
}
