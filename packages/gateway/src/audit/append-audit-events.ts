import { sql } from 'kysely'
import type { Insertable, Kysely, Transaction } from 'kysely'
import type { AuditEvent } from '../core/index.js'
import { dialectOf, insertRows, runSql } from '../store/index.js'
import type { Database } from '../store/index.js'
import type { AuditEntry } from './audit-entry.js'
import { canonicalJson } from '../core/index.js'
import { GENESIS_HASH, hashCanonicalParts } from './audit-hash.js'

/** First key of the two-key advisory lock that serializes appends ("CSAU"). */
const AUDIT_LOCK_CLASS = 0x43534155
/** Rows per INSERT: 8 parameters each stays far below both dialects' parameter limits. */
const INSERT_CHUNK = 500

export interface AuditTail {
  /** The seq of the last entry, 0 for an empty log. */
  seq: number
  /** The hash of the last entry, or the genesis hash for an empty log. */
  hash: string
}

/**
 * Makes the caller the only writer of the audit log until its transaction
 * ends. On PostgreSQL this is a transaction-scoped advisory lock keyed by the
 * current schema, so logs in different schemas do not wait for each other. On
 * SQLite every transaction starts with BEGIN IMMEDIATE and already holds the
 * database's single write lock.
 */
export async function lockAuditLog(trx: Transaction<Database>): Promise<void> {
  if (dialectOf(trx) === 'postgres') {
    await sql`select pg_advisory_xact_lock(${sql.lit(AUDIT_LOCK_CLASS)}, hashtext(current_schema()))`.execute(trx)
  }
}

const TAIL_SQL = 'select "seq", "hash" from "audit_entries" where "seq" = (select max("seq") from "audit_entries")'

/** The last entry's seq and hash. */
export async function readAuditTail(db: Kysely<Database>): Promise<AuditTail> {
  // max() reads the last key of the seq index directly; both databases answer it without a sort or a scan.
  const { rows } = await runSql<AuditTail>(db, TAIL_SQL, [])
  const last = rows[0]
  return last ?? { seq: 0, hash: GENESIS_HASH }
}

/**
 * Appends events to the hash-chained audit log inside the caller's
 * transaction, so a state change and its audit entries commit or roll back
 * together. Appends are serialized per log; the primary key on `seq` is the
 * last line of defence should two writers ever race.
 *
 * Call it after the transaction's other writes: it holds the log's lock until
 * commit, and a transaction that appends and then locks more rows can
 * deadlock with one that holds those rows and waits to append. Use the
 * default READ COMMITTED isolation; under REPEATABLE READ the snapshot may
 * predate the previous append and the insert fails on the `seq` key.
 *
 * @param events Events whose `data` is already redacted.
 * @param now The time recorded on every entry (ms since the epoch).
 * @returns The entries as stored, in order.
 * @example
 * ```ts
 * await store.db.transaction().execute(async (trx) => {
 *   await trx.updateTable('requests').set({ status: 'approved' }).where('id', '=', id).execute()
 *   await appendAuditEvents(trx, [{ type: 'request.approved', actor, requestId: id, data: {} }], now)
 * })
 * ```
 */
export async function appendAuditEvents(
  trx: Transaction<Database>,
  events: readonly AuditEvent[],
  now: number,
): Promise<AuditEntry[]> {
  if (!trx.isTransaction) {
    throw new TypeError('appendAuditEvents must run inside a transaction: pass the trx of db.transaction().execute()')
  }
  if (!Number.isSafeInteger(now)) throw new TypeError(`appendAuditEvents: now must be integer milliseconds, got ${now}`)
  if (events.length === 0) return []

  await lockAuditLog(trx)
  const tail = await readAuditTail(trx)

  const entries: AuditEntry[] = []
  const rows: Insertable<Database['audit_entries']>[] = []
  let prevHash = tail.hash
  for (const [index, event] of events.entries()) {
    const actorJson = canonicalJson({ id: event.actor.id, kind: event.actor.kind, via: event.actor.via })
    const dataJson = jsonOf(event)
    const content = {
      seq: tail.seq + index + 1,
      ts: now,
      type: event.type,
      actor: JSON.parse(actorJson) as AuditEntry['actor'],
      request_id: event.requestId ?? null,
      data: JSON.parse(dataJson) as AuditEntry['data'],
      prev_hash: prevHash,
    }
    const hash = hashCanonicalParts(content, actorJson, dataJson)
    entries.push({ ...content, hash })
    rows.push({ ...content, actor: actorJson, data: dataJson, hash })
    prevHash = hash
  }
  for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
    await insertRows(trx, 'audit_entries', rows.slice(start, start + INSERT_CHUNK))
  }
  return entries
}

function jsonOf(event: AuditEvent): string {
  try {
    return canonicalJson(event.data)
  } catch (error) {
    throw new TypeError(`Audit event ${event.type} has data that JSON cannot represent: ${(error as Error).message}`, { cause: error })
  }
}
