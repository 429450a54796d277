import type { ColumnType, Generated } from 'kysely'

/*
 * One schema for SQLite and PostgreSQL. Timestamps are milliseconds since the
 * epoch (BIGINT, read back as numbers); JSON is stored as TEXT so both
 * dialects hand back exactly the bytes that were written.
 * `ColumnType<S, I, never>` marks columns that must never be updated.
 * votes, request_versions, grants and idempotency_keys reference requests(id),
 * so the request row is inserted first. A duplicate key on either dialect is
 * recognised by `isUniqueViolation`.
 */
type Immutable<T> = ColumnType<T, T, never>
type Json = string

export interface RequestsTable {
  id: Immutable<string>
  requester_id: Immutable<string>
  requester_kind: Immutable<string>
  /** JSON Principal snapshot of the requester at request time. */
  requester: Immutable<Json>
  on_behalf_of_id: Immutable<string | null>
  on_behalf_of_verified: Immutable<number>
  action: Immutable<string>
  resource: Immutable<string>
  environment: Immutable<string>
  reason: Immutable<string | null>
  context: Immutable<Json>
  bind: Immutable<Json>
  idempotency_key: Immutable<string | null>
  current_version: number
  digest: string
  status: string
  effect: Immutable<string>
  /** JSON: matched rules, risk, explain, policy sha256. */
  decision: Immutable<Json>
  /** JSON: review requirements and options, or null when no review applies. An edit can make it stricter. */
  review: Json | null
  created_at: Immutable<number>
  updated_at: number
  deadline_at: number | null
  escalate_at: number | null
  escalated_at: number | null
  decided_at: number | null
  /** JSON: {outcome, exit_code, detail} once the requester reports it. */
  result: Json | null
}

/** Primary key (request_id, version). */
export interface RequestVersionsTable {
  request_id: Immutable<string>
  version: Immutable<number>
  params: Immutable<Json>
  redacted_params: Immutable<Json>
  digest: Immutable<string>
  created_at: Immutable<number>
  created_by: Immutable<string>
}

/** Primary key (request_id, version, voter_id): one vote per person per version. */
export interface VotesTable {
  request_id: Immutable<string>
  version: Immutable<number>
  voter_id: Immutable<string>
  /** JSON Principal snapshot of the voter, so eligibility can be re-derived. */
  voter: Immutable<Json>
  decision: Immutable<string>
  reason: Immutable<string | null>
  via: Immutable<string>
  created_at: Immutable<number>
}

/** Primary key jti; unique request_id: one grant per request. */
export interface GrantsTable {
  jti: Immutable<string>
  request_id: Immutable<string>
  digest: Immutable<string>
  subject: Immutable<string>
  status: string
  issued_at: Immutable<number>
  expires_at: Immutable<number>
  redeemed_at: number | null
}

/** Primary key seq. Append only through `appendAuditEvents`. */
export interface AuditEntriesTable {
  seq: Immutable<number>
  ts: Immutable<number>
  type: Immutable<string>
  /** JSON AuditActor. */
  actor: Immutable<Json>
  request_id: Immutable<string | null>
  /** JSON, already redacted. */
  data: Immutable<Json>
  prev_hash: Immutable<string>
  hash: Immutable<string>
}

/** Primary key size. */
export interface CheckpointsTable {
  size: Immutable<number>
  head_hash: Immutable<string>
  ts: Immutable<number>
  signature: Immutable<string>
  key_id: Immutable<string>
}

/** Primary key id; unique prefix. */
export interface ApiKeysTable {
  id: Immutable<string>
  /** The visible part of the key (`cs_` + id), for lookup and display. */
  prefix: Immutable<string>
  /** scrypt hash of the secret part; the key itself is never stored. */
  hash: Immutable<string>
  kind: Immutable<string>
  principal_id: Immutable<string>
  display_name: Immutable<string>
  email: Immutable<string | null>
  groups: Immutable<Json>
  on_behalf_of: Immutable<string | null>
  created_at: Immutable<number>
  created_by: Immutable<string>
  revoked_at: number | null
}

/** Primary key (requester_id, key). */
export interface IdempotencyKeysTable {
  requester_id: Immutable<string>
  key: Immutable<string>
  request_id: Immutable<string>
  created_at: Immutable<number>
}

export interface OutboxTable {
  id: Generated<number>
  topic: Immutable<string>
  request_id: Immutable<string | null>
  payload: Immutable<Json>
  created_at: Immutable<number>
  attempts: number
  next_attempt_at: number
  delivered_at: number | null
  last_error: string | null
}

export interface Database {
  requests: RequestsTable
  request_versions: RequestVersionsTable
  votes: VotesTable
  grants: GrantsTable
  audit_entries: AuditEntriesTable
  checkpoints: CheckpointsTable
  api_keys: ApiKeysTable
  idempotency_keys: IdempotencyKeysTable
  outbox: OutboxTable
}
