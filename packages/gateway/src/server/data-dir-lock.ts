import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { LocalError } from '../core/index.js'

/** The lock file a process holds in the data directory while it uses the SQLite store. */
export const DATA_DIR_LOCK_FILE = 'countersign.lock'

export interface DataDirLock {
  readonly file: string
  /** Removes the lock file; safe to call more than once. */
  release(): void
}

/**
 * Takes the data directory for this process: one process per SQLite store, or a waiter on one
 * would never hear of a decision made through the other. The lock file holding the pid is created
 * atomically (O_EXCL); a lock left by a process that no longer runs is stale and taken over.
 * Refuses with `config_invalid`, naming the pid, while another live process holds it.
 */
export function lockDataDir(dataDir: string, what = 'a gateway'): DataDirLock {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const file = join(dataDir, DATA_DIR_LOCK_FILE)
  for (let attempt = 0; ; attempt += 1) {
    let fd: number
    try {
      fd = openSync(file, 'wx', 0o600)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw lockFailure(file, error)
      const holder = lockHolder(file)
      if (holder !== undefined && isAlive(holder)) {
        throw new LocalError(
          'config_invalid',
          `The data directory ${dataDir} is in use by another countersign process (pid ${holder}); stop it first, or pass another --data-dir. ` +
            `One process per data directory: ${what} cannot share it.`,
          { dataDir, pid: holder },
        )
      }
      // Stale: its process is gone (or the file is unreadable garbage). Take it over once.
      try {
        unlinkSync(file)
      } catch (unlinkError) {
        if ((unlinkError as NodeJS.ErrnoException).code !== 'ENOENT') throw lockFailure(file, unlinkError)
      }
      continue
    }
    try {
      writeSync(fd, `${process.pid}\n`)
    } finally {
      closeSync(fd)
    }
    let released = false
    return {
      file,
      release() {
        if (released) return
        released = true
        // Only our own lock: a stale-lock takeover by someone else must not be undone.
        if (lockHolder(file) === process.pid) unlinkSync(file)
      },
    }
  }
}

function lockHolder(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim())
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists but belongs to someone else, which still counts as running.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function lockFailure(file: string, error: unknown): LocalError {
  return new LocalError('config_invalid', `Cannot take the lock file ${file}: ${(error as Error).message}`, { file })
}
