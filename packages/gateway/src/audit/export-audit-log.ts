import { LocalError } from '../core/index.js'
import type { AuditEntriesTable, Store } from '../store/index.js'
import type { Selectable } from 'kysely'
import type { AuditEntry } from './audit-entry.js'

export type AuditExportFormat = 'jsonl' | 'csv'

export interface AuditExportOptions {
  format: AuditExportFormat
  /** Only entries with `ts >= since` (ms since the epoch). */
  since?: number
}

const PAGE_SIZE = 2000

const CSV_COLUMNS = ['seq', 'ts', 'time', 'type', 'actor_id', 'actor_kind', 'actor_via', 'request_id', 'data', 'prev_hash', 'hash']

/**
 * Streams the audit log in seq order, one page at a time.
 *
 * `jsonl`: one entry per line with exactly the fields that are hashed, so a
 * line can be checked on its own. `csv`: RFC 4180 (CRLF line ends, quoted
 * where needed) with a header row, the actor split into columns, an ISO-8601
 * `time` column, and `data` as JSON text.
 *
 * @param write Receives each chunk; return a promise to apply backpressure.
 * @returns The number of entries written.
 * @example
 * ```ts
 * await exportAuditLog(store, { format: 'jsonl' }, (chunk) => { process.stdout.write(chunk) })
 * ```
 */
export async function exportAuditLog(
  store: Pick<Store, 'db'>,
  options: AuditExportOptions,
  write: (chunk: string) => void | Promise<void>,
): Promise<number> {
  const format = options.format
  if (format !== 'jsonl' && format !== 'csv') throw new TypeError(`exportAuditLog: unknown format ${String(format)}`)
  if (format === 'csv') await write(CSV_COLUMNS.join(',') + '\r\n')
  let after = 0
  let written = 0
  for (;;) {
    let query = store.db.selectFrom('audit_entries').selectAll().where('seq', '>', after)
    if (options.since !== undefined) query = query.where('ts', '>=', options.since)
    const page = await query.orderBy('seq').limit(PAGE_SIZE).execute()
    const last = page.at(-1)
    if (!last) return written
    const entries = page.map(entryFromRow)
    await write(entries.map(format === 'jsonl' ? jsonlLine : csvLine).join(''))
    written += page.length
    after = last.seq
  }
}

function entryFromRow(row: Selectable<AuditEntriesTable>): AuditEntry {
  try {
    return {
      seq: row.seq,
      ts: row.ts,
      type: row.type,
      actor: JSON.parse(row.actor) as AuditEntry['actor'],
      request_id: row.request_id,
      data: JSON.parse(row.data) as AuditEntry['data'],
      prev_hash: row.prev_hash,
      hash: row.hash,
    }
  } catch (error) {
    throw new LocalError(
      'audit_verify_failed',
      `Audit entry ${row.seq} holds JSON that no longer parses (${(error as Error).message}); run countersign audit verify to see what was changed.`,
      { seq: row.seq },
    )
  }
}

function jsonlLine(entry: AuditEntry): string {
  return JSON.stringify(entry) + '\n'
}

function csvLine(entry: AuditEntry): string {
  const cells = [
    String(entry.seq),
    String(entry.ts),
    new Date(entry.ts).toISOString(),
    entry.type,
    entry.actor.id,
    entry.actor.kind,
    entry.actor.via,
    entry.request_id ?? '',
    JSON.stringify(entry.data),
    entry.prev_hash,
    entry.hash,
  ]
  return cells.map(csvCell).join(',') + '\r\n'
}

function csvCell(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value
}
