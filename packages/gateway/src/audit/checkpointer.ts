import type { Kysely, Transaction } from 'kysely'
import type { Database, Store } from '../store/index.js'
import type { AuditCheckpoint } from './audit-entry.js'
import type { AuditSigner } from './audit-signer.js'
import { type AuditTail, lockAuditLog, readAuditTail } from './append-audit-events.js'

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
   * @param head The entry just appended, when the caller has it: if what
   *   this checkpointer last read already shows that no checkpoint is due,
   *   it answers without reading the log.
   * @returns The checkpoint written, or undefined when none was due.
   */
  maybeCheckpoint(trx: Transaction<Database>, now: number, head?: AuditTail): Promise<AuditCheckpoint | undefined>
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

  /**
   * The latest checkpoint as last read (size 0 and the first entry's time
   * before there is one). Checkpoints only ever grow, so this never overstates
   * how recent the real latest is: when it says none is due, none is.
   */
  let lastSeen: { size: number; ts: number } | undefined

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
    // Only what was read is remembered: a checkpoint written below may still roll back with its transaction.
    lastSeen = { size: last?.size ?? 0, ts: since }
    if (!due(newEntries, now - since)) return undefined
    const checkpoint = signer.sign({ size: tail.seq, head_hash: tail.hash, ts: now })
    await trx.insertInto('checkpoints').values(checkpoint).execute()
    return checkpoint
  }

  return {
    async maybeCheckpoint(trx, now, head) {
      const due = (newEntries: number, sinceLast: number): boolean => newEntries >= everyEntries || sinceLast >= everyMs
      if (head && lastSeen && !due(head.seq - lastSeen.size, now - lastSeen.ts)) return undefined
      return checkpointIf(trx, now, due)
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
