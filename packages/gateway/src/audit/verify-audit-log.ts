import type { KeyObject } from 'node:crypto'
import type { Kysely, Selectable } from 'kysely'
import type { AuditEntriesTable, Database, Store } from '../store/index.js'
import type { AuditCheckpoint, AuditEntry } from './audit-entry.js'
import { GENESIS_HASH, hashAuditEntry, hashCanonicalParts } from './audit-hash.js'
import { signingKeyId } from '../signing-keys/index.js'
import { parseAuditPublicKey, verifyCheckpointSignature } from './audit-signer.js'
import { readAuditTail } from './append-audit-events.js'
import { getLatestCheckpoint } from './checkpointer.js'

/** What can be wrong with an audit log, named after what was done to it. */
export type AuditProblem =
  | 'modified'
  | 'missing'
  | 'reordered'
  | 'truncated'
  | 'bad_checkpoint_signature'
  | 'checkpoint_mismatch'

export type AuditVerification =
  | { ok: true; entries: number; checkpoints: number; headHash: string }
  | { ok: false; seq: number; problem: AuditProblem; message: string }

export interface AuditVerifyProgress {
  verified: number
  /** The number of entries when verification started. */
  total: number
}

type Failure = Extract<AuditVerification, { ok: false }>
type EntryRow = Selectable<AuditEntriesTable>

const PAGE_SIZE = 2000

/**
 * Verifies the whole audit log in constant memory: every entry's hash against
 * its content, every link against the entry before, every checkpoint's
 * signature, each checkpoint's head against the entry at its size, and that
 * the log still reaches the latest checkpoint. Stops at the first problem, in
 * seq order.
 *
 * The log is checked as it stood when verification began; entries appended
 * meanwhile are left for the next run.
 *
 * @param options.publicKey The checkpoint key (a KeyObject, or PEM / JWK text). Take it from the
 *   operator's published key, not from the store being verified.
 * @example
 * ```ts
 * const result = await verifyAuditLog(store, { publicKey: readFileSync('audit-public-key.pem', 'utf8') })
 * if (!result.ok) console.error(`seq ${result.seq}: ${result.message}`)
 * ```
 */
export async function verifyAuditLog(
  store: Pick<Store, 'db'>,
  options: { publicKey: KeyObject | string },
  onProgress?: (progress: AuditVerifyProgress) => void,
): Promise<AuditVerification> {
  const publicKey = typeof options.publicKey === 'string' ? parseAuditPublicKey(options.publicKey) : options.publicKey
  const keyId = signingKeyId(publicKey)
  const { db } = store

  // Read the checkpoint bound first: every checkpoint that exists now was
  // committed with its entries, so the tail read next is at least that long
  // unless entries were removed.
  const latest = await getLatestCheckpoint(db)
  const total = (await readAuditTail(db)).seq
  const checkpoints = checkpointsUpTo(db, latest?.size ?? 0)
  let checkpoint = await checkpoints.next()
  let verifiedCheckpoints = 0
  let expectedSeq = 1
  let headHash = GENESIS_HASH

  for await (const page of entryPages(db, total)) {
    for (const row of page) {
      const failure = await checkEntry(db, row, expectedSeq, headHash)
      if (failure) return failure
      headHash = row.hash
      expectedSeq += 1
      while (!checkpoint.done && checkpoint.value.size <= row.seq) {
        const problem = checkCheckpoint(checkpoint.value, row, publicKey, keyId)
        if (problem) return problem
        verifiedCheckpoints += 1
        checkpoint = await checkpoints.next()
      }
    }
    onProgress?.({ verified: expectedSeq - 1, total })
  }

  const entries = expectedSeq - 1
  if (!checkpoint.done) {
    const beyond = checkpoint.value
    if (!verifyCheckpointSignature(beyond, publicKey)) return badSignature(beyond, keyId)
    return {
      ok: false,
      seq: entries + 1,
      problem: 'truncated',
      message:
        `audit log truncated after checkpoint at size ${beyond.size} (signed ${iso(beyond.ts)}): ` +
        `the log ends at seq ${entries}, so ${isOrAre(entries + 1, beyond.size)} gone`,
    }
  }
  return { ok: true, entries, checkpoints: verifiedCheckpoints, headHash }
}

async function checkEntry(db: Kysely<Database>, row: EntryRow, expectedSeq: number, prevHash: string): Promise<Failure | undefined> {
  if (row.seq !== expectedSeq) {
    return {
      ok: false,
      seq: expectedSeq,
      problem: 'missing',
      message:
        `${isOrAre(expectedSeq, row.seq - 1)} missing: ` +
        (expectedSeq === 1 ? `the log starts at seq ${row.seq}` : `the log jumps from seq ${expectedSeq - 1} to ${row.seq}`),
    }
  }
  const selfConsistent = recomputedHash(row) === row.hash
  if (row.prev_hash !== prevHash) {
    const linkedTo = await db
      .selectFrom('audit_entries')
      .select('seq')
      .where('hash', '=', row.prev_hash)
      .where('seq', '<>', row.seq)
      .orderBy('seq')
      .limit(1)
      .executeTakeFirst()
    if (linkedTo) {
      return {
        ok: false,
        seq: row.seq,
        problem: 'reordered',
        message: `entry ${row.seq} is out of order: it follows the entry now stored at seq ${linkedTo.seq} instead of ${predecessor(row.seq)}`,
      }
    }
    if (selfConsistent && row.seq > 1) {
      // The entry itself is intact and points at a hash no entry has any
      // more: its predecessor was rewritten and given a fresh hash.
      return {
        ok: false,
        seq: row.seq - 1,
        problem: 'modified',
        message: `entry ${row.seq - 1} was modified and re-hashed: entry ${row.seq} still links to its original hash`,
      }
    }
    return {
      ok: false,
      seq: row.seq,
      problem: 'modified',
      message: `entry ${row.seq} was modified: its prev_hash does not match ${predecessor(row.seq)}`,
    }
  }
  if (!selfConsistent) {
    return { ok: false, seq: row.seq, problem: 'modified', message: `entry ${row.seq} was modified: its hash does not match its content` }
  }
  return undefined
}

/**
 * The hash of a row. `actor` and `data` were written as canonical JSON, so the
 * stored bytes are hashed first: no re-serialization and no recursion, however
 * deep the data. Only when that does not match is the content parsed and
 * canonicalized again, to tell an entry rewritten in another JSON form but
 * re-hashed consistently from one whose content no longer matches its hash.
 */
function recomputedHash(row: EntryRow): string | undefined {
  const entry = { seq: row.seq, ts: row.ts, type: row.type, request_id: row.request_id, prev_hash: row.prev_hash }
  const direct = hashCanonicalParts(entry, row.actor, row.data)
  if (direct === row.hash) return direct
  try {
    return hashAuditEntry({
      ...entry,
      actor: JSON.parse(row.actor) as AuditEntry['actor'],
      data: JSON.parse(row.data) as AuditEntry['data'],
    })
  } catch {
    // Stored JSON that no longer parses (or holds values JSON cannot carry) was edited.
    return undefined
  }
}

function checkCheckpoint(checkpoint: AuditCheckpoint, row: EntryRow, publicKey: KeyObject, keyId: string): Failure | undefined {
  if (!verifyCheckpointSignature(checkpoint, publicKey)) return badSignature(checkpoint, keyId)
  if (checkpoint.size !== row.seq || checkpoint.head_hash !== row.hash) {
    return {
      ok: false,
      seq: checkpoint.size,
      problem: 'checkpoint_mismatch',
      message:
        checkpoint.size === row.seq
          ? `the signed checkpoint at size ${checkpoint.size} (${iso(checkpoint.ts)}) records head ${short(checkpoint.head_hash)} but entry ${row.seq} hashes to ${short(row.hash)}: entries up to seq ${checkpoint.size} were rewritten`
          : `the signed checkpoint at size ${checkpoint.size} names no entry of the log`,
    }
  }
  return undefined
}

function badSignature(checkpoint: AuditCheckpoint, keyId: string): Failure {
  const otherKey = checkpoint.key_id === keyId ? '' : ` (it names key ${checkpoint.key_id}; verifying with key ${keyId})`
  return {
    ok: false,
    seq: checkpoint.size,
    problem: 'bad_checkpoint_signature',
    message: `the checkpoint at size ${checkpoint.size} (${iso(checkpoint.ts)}) has an invalid signature${otherKey}`,
  }
}

/** Keyset pagination: each page is one short query, so memory stays flat and writers are never blocked for long. */
async function* entryPages(db: Kysely<Database>, upToSeq: number): AsyncGenerator<EntryRow[]> {
  let after = 0
  while (after < upToSeq) {
    const page = await db
      .selectFrom('audit_entries')
      .selectAll()
      .where('seq', '>', after)
      .where('seq', '<=', upToSeq)
      .orderBy('seq')
      .limit(PAGE_SIZE)
      .execute()
    const last = page.at(-1)
    if (!last) return
    yield page
    after = last.seq
  }
}

async function* checkpointsUpTo(db: Kysely<Database>, upToSize: number): AsyncGenerator<AuditCheckpoint, undefined> {
  let after = Number.MIN_SAFE_INTEGER
  for (;;) {
    const page = await db
      .selectFrom('checkpoints')
      .selectAll()
      .where('size', '>', after)
      .where('size', '<=', upToSize)
      .orderBy('size')
      .limit(PAGE_SIZE)
      .execute()
    const last = page.at(-1)
    if (!last) return undefined
    yield* page
    after = last.size
  }
}

function predecessor(seq: number): string {
  return seq === 1 ? 'the genesis hash' : `entry ${seq - 1}`
}

function isOrAre(from: number, to: number): string {
  return from === to ? `entry ${from} is` : `entries ${from} to ${to} are`
}

function short(hash: string): string {
  return hash.slice(0, 12)
}

function iso(ts: number): string {
  const date = new Date(ts)
  return Number.isNaN(date.getTime()) ? `ts ${ts}` : date.toISOString()
}
