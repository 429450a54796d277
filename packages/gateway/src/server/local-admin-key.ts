import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { LocalError, type Principal } from '../core/index.js'
import { ApiKeyRepository, type ApiKeyRecord } from '../identity/index.js'
import { SQLITE_FILE_NAME, openStore } from '../store/index.js'
import { createAuditAppender } from './audit-appender.js'
import { lockDataDir } from './data-dir-lock.js'
import { mintAdminKey } from './gateway.js'
import type { GatewayConfig } from './gateway-config.js'
import { KeyAdmin } from './key-admin.js'

/** Who the audit log names for a key made with direct access to the store rather than over HTTP. */
export const LOCAL_OPERATOR: Principal = {
  id: 'local-operator',
  kind: 'human',
  displayName: 'local operator (direct access to the data directory)',
  groups: [],
}

/**
 * Creates a new admin key straight in the store, for when the printed one is lost: no HTTP and
 * no token, only access to the data directory (or the PostgreSQL store) and its signing keys.
 * Audited like any key creation, as `local-operator` via `local`. On SQLite it takes the data
 * directory's lock first, so it refuses while a gateway runs on it (stop the gateway, then run it).
 */
export async function createLocalAdminKey(config: GatewayConfig, now: () => number = Date.now): Promise<{ record: ApiKeyRecord; token: string }> {
  if (config.databaseUrl === undefined && !existsSync(join(config.dataDir, SQLITE_FILE_NAME))) {
    // Opening a store creates it; a typo in --data-dir must not mint a key for a store nobody uses.
    throw new LocalError(
      'config_invalid',
      `No Countersign store at ${join(config.dataDir, SQLITE_FILE_NAME)}: pass --data-dir with the gateway's data directory, or --database.`,
      { data_dir: config.dataDir },
    )
  }
  const lock = config.databaseUrl === undefined ? lockDataDir(config.dataDir, '`keys create --admin`') : undefined
  try {
    const store = await openStore(
      config.databaseUrl !== undefined
        ? { databaseUrl: config.databaseUrl, ...(config.databaseSchema !== undefined ? { schema: config.databaseSchema } : {}) }
        : { dataDir: config.dataDir },
    )
    try {
      const audit = createAuditAppender({
        store,
        dataDir: config.dataDir,
        everyEntries: config.checkpointEvery,
        everyMs: config.checkpointIntervalMs,
      })
      const keyAdmin = new KeyAdmin({ store, keys: new ApiKeyRepository(store.db), audit, now })
      const created = await mintAdminKey(keyAdmin, LOCAL_OPERATOR, 'local')
      // Sign the head now, so the entry is covered by a checkpoint without waiting for a gateway.
      await audit.checkpointNow(now())
      return created
    } finally {
      await store.close()
    }
  } finally {
    lock?.release()
  }
}
