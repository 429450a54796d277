import type { AuditActor } from '../core/index.js'

/**
 * One link of the audit chain, exactly as it is hashed and exported.
 * Field names are snake_case because this is the wire and evidence format.
 */
export interface AuditEntry {
  /** 1, 2, 3, ... with no gaps. */
  seq: number
  /** Milliseconds since the epoch. */
  ts: number
  type: string
  actor: AuditActor
  request_id: string | null
  /** Event details, already redacted by whoever recorded the event. */
  data: Record<string, unknown>
  /** `hash` of the entry before this one; 64 zeros for the first entry. */
  prev_hash: string
  /** SHA-256 hex of `prev_hash` followed by the canonical JSON of every other field. */
  hash: string
}

/** A signed statement that the log had `size` entries ending in `head_hash` at time `ts`. */
export interface AuditCheckpoint {
  size: number
  head_hash: string
  ts: number
  /** Ed25519 signature (base64url) over the canonical JSON of `{size, head_hash, ts}`. */
  signature: string
  /** First 16 hex digits of the SHA-256 of the raw public key. */
  key_id: string
}
