import type { Kysely, Transaction } from 'kysely'
import type { Database, Store } from '../store/index.js'
import type { AuditCheckpoint } from './audit-entry.js'
import type { AuditSigner } from './audit-signer.js'
import { lockAuditLog, readAuditTail } from './append-audit-events.js'

/** When to write a checkpoint. */
export interface CheckpointPolicy {
  /** Write one once this many entries have accumulated since the last (default 1000). */
  everyEntries: number
  /** Or once this much time has passed since the last, if at least one entry is new (default 60 s). */
  everyMs: number
}

export const DEFAULT_CHECKPOINT_POLICY: CheckpointPolicy = { everyEntries: 1000, everyMs: 60_000 }

/** Writes signed checkpoints of the audit log. */
export interface Checkpointer {
  /**
   * Writes a checkpoint inside the caller's transaction when the policy says
   * one is due. Call it after `appendAuditEvents`, and on a timer so the
   * time-based rule also fires when appends stop.
   * @returns The checkpoint written, or undefined when none was due.
   */
  maybeCheckpoint(trx: Transaction<Database>, now: number): Promise<AuditCheckpoint | undefined>
  /**
   * Checkpoints the current head at once (e.g. on shutdown or before an
   * export) unless the latest checkpoint already covers it.
   * @returns The checkpoint written, or undefined when nothing was new.
   */
  checkpointNow(store: Pick<Store, 'db'>, now: number): Promise<AuditCheckpoint | undefined>
}

/**
 * @example
 * ```ts
 * const checkpointer = createCheckpointer(loadAuditSigner({ dataDir }), { everyEntries: 500 })
 * await store.db.transaction().execute(async (trx) => {
 *   await appendAuditEvents(trx, events, now)
 *   await checkpointer.maybeCheckpoint(trx, now)
 * })
 * ```
 */
export function createCheckpointer(signer: AuditSigner, policy: Partial<CheckpointPolicy> = {}): Checkpointer {
  const { everyEntries, everyMs } = { ...DEFAULT_CHECKPOINT_POLICY, ...policy }
  if (!Number.isSafeInteger(everyEntries) || everyEntries < 1) {
    throw new TypeError(`createCheckpointer: everyEntries must be a positive integer, got ${everyEntries}`)
  }
  if (!Number.isFinite(everyMs) || everyMs < 0) {
    throw new TypeError(`createCheckpointer: everyMs must be a non-negative number of milliseconds, got ${everyMs}`)
  }

  async function checkpointIf(
    trx: Transaction<Database>,
    now: number,
    due: (newEntries: number, sinceLast: number) => boolean,
  ): Promise<AuditCheckpoint | undefined> {
    // The lock keeps the head stable while it is signed and makes checkpoint
    // sizes strictly increasing; PostgreSQL advisory locks are re-entrant
    // within a transaction, so taking it again after an append is free.
    await lockAuditLog(trx)
    const tail = await readAuditTail(trx)
    const last = await getLatestCheckpoint(trx)
    const newEntries = tail.seq - (last?.size ?? 0)
    if (newEntries <= 0) return undefined
    // Before the first checkpoint the clock runs from the first entry.
    const since = last?.ts ?? (await firstEntryTs(trx))
    if (!due(newEntries, now - since)) return undefined
    const checkpoint = signer.sign({ size: tail.seq, head_hash: tail.hash, ts: now })
    await trx.insertInto('checkpoints').values(checkpoint).execute()
    return checkpoint
  }

  return {
    maybeCheckpoint(trx, now) {
      return checkpointIf(trx, now, (newEntries, sinceLast) => newEntries >= everyEntries || sinceLast >= everyMs)
    },
    checkpointNow(store, now) {
      return store.db.transaction().execute((trx) => checkpointIf(trx, now, () => true))
    },
  }
}

async function firstEntryTs(db: Kysely<Database>): Promise<number> {
  const first = await db.selectFrom('audit_entries').select('ts').orderBy('seq').limit(1).executeTakeFirstOrThrow()
  return first.ts
}

/** The most recent checkpoint, for publishing; undefined before the first one. */
export async function getLatestCheckpoint(db: Kysely<Database>): Promise<AuditCheckpoint | undefined> {
  return db.selectFrom('checkpoints').selectAll().orderBy('size', 'desc').limit(1).executeTakeFirst()
}
