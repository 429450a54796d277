import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { CountersignError } from '../../core/index.js'
import type { StoreBackend } from '../store-backend.js'
import { NodeSqliteDialect } from './node-sqlite-dialect.js'

/** The database file inside a data directory. */
export const SQLITE_FILE_NAME = 'countersign.db'

/**
 * Opens (creating if needed) `<dataDir>/countersign.db`.
 *
 * `synchronous=FULL` fsyncs the write-ahead log on every commit. With `NORMAL`
 * a power cut may roll back the last few commits; here that could forget a
 * grant redemption (letting a single-use grant be redeemed twice) or an audit
 * entry for an action that already ran. One fsync per commit is the price.
 */
export function createSqliteBackend(dataDir: string): StoreBackend {
  const directory = resolve(dataDir)
  const file = join(directory, SQLITE_FILE_NAME)
  let database: DatabaseSync
  try {
    mkdirSync(directory, { recursive: true, mode: 0o700 })
    database = new DatabaseSync(file)
  } catch (error) {
    throw new CountersignError(
      'store_unavailable',
      `Cannot open the SQLite database ${file}: ${(error as Error).message}. Check that the data directory is writable.`,
      { database: `sqlite:${file}` },
    )
  }
  try {
    database.exec('pragma journal_mode = wal')
    database.exec('pragma synchronous = full')
    // Another process (a CLI next to the server) may hold the write lock; wait
    // for it instead of failing at once.
    database.exec('pragma busy_timeout = 5000')
    database.exec('pragma foreign_keys = on')
  } catch (error) {
    database.close()
    throw new CountersignError(
      'store_unavailable',
      `Cannot use the SQLite database ${file}: ${(error as Error).message}. Is it a Countersign database, and not locked by another program?`,
      { database: `sqlite:${file}` },
    )
  }
  return { dialect: 'sqlite', kyselyDialect: new NodeSqliteDialect(database), describe: `sqlite:${file}` }
}
