import { createHash } from 'node:crypto'
import { canonicalJson } from '../core/index.js'
import type { AuditCheckpoint, AuditEntry } from './audit-entry.js'

/** The `prev_hash` of the first entry. */
export const GENESIS_HASH = '0'.repeat(64)

/**
 * The hash of an entry: SHA-256 hex of `prev_hash` followed by the canonical
 * JSON of the entry without its `hash` (so `prev_hash` is covered twice, once
 * as the chain link and once as a field).
 *
 * @example
 * ```ts
 * const hash = hashAuditEntry({ seq: 1, ts: 0, type: 'request.created', actor, request_id: 'r1', data: {}, prev_hash: GENESIS_HASH })
 * ```
 */
export function hashAuditEntry(entry: Omit<AuditEntry, 'hash'>): string {
  const { seq, ts, type, actor, request_id, data, prev_hash } = entry
  const content = canonicalJson({ seq, ts, type, actor, request_id, data, prev_hash })
  return createHash('sha256').update(prev_hash).update(content).digest('hex')
}

/**
 * The same hash as {@link hashAuditEntry}, from `actor` and `data` already in
 * canonical JSON. Appending builds each entry's canonical text from its parts
 * instead of canonicalizing `data` a second time; RFC 8785 orders the keys
 * `actor, data, prev_hash, request_id, seq, ts, type`, and serializes strings
 * and safe integers exactly as `JSON.stringify` does.
 */
export function hashCanonicalParts(
  entry: Pick<AuditEntry, 'seq' | 'ts' | 'type' | 'request_id' | 'prev_hash'>,
  actorJson: string,
  dataJson: string,
): string {
  if (!Number.isSafeInteger(entry.seq) || !Number.isSafeInteger(entry.ts)) {
    throw new TypeError('audit entries need integer seq and ts')
  }
  const content =
    `{"actor":${actorJson},"data":${dataJson},"prev_hash":${JSON.stringify(entry.prev_hash)},` +
    `"request_id":${JSON.stringify(entry.request_id)},"seq":${entry.seq},"ts":${entry.ts},"type":${JSON.stringify(entry.type)}}`
  return createHash('sha256').update(entry.prev_hash).update(content).digest('hex')
}

/** The exact bytes a checkpoint signature covers: canonical JSON of `{size, head_hash, ts}`. */
export function checkpointSigningInput(checkpoint: Pick<AuditCheckpoint, 'size' | 'head_hash' | 'ts'>): Buffer {
  const { size, head_hash, ts } = checkpoint
  return Buffer.from(canonicalJson({ size, head_hash, ts }), 'utf8')
}
