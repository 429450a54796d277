import type { Principal } from '../core/index.js'
import { type ApiKeyRecord, ApiKeyRepository, type NewApiKey } from '../identity/index.js'
import type { AuditAppender } from '../requests/index.js'
import type { Store } from '../store/index.js'

/** Creates and revokes API keys, each change audited in the same transaction. */
export class KeyAdmin {
  readonly #store: Store
  readonly #keys: ApiKeyRepository
  readonly #audit: AuditAppender
  readonly #now: () => number

  constructor(options: { store: Store; keys: ApiKeyRepository; audit: AuditAppender; now: () => number }) {
    this.#store = options.store
    this.#keys = options.keys
    this.#audit = options.audit
    this.#now = options.now
  }

  async create(by: Principal, input: NewApiKey, via: string): Promise<{ record: ApiKeyRecord; token: string }> {
    const now = this.#now()
    return this.#store.db.transaction().execute(async (trx) => {
      const created = await new ApiKeyRepository(trx, { cache: this.#keys.cache }).create(input, now)
      const { record } = created
      await this.#audit.append(
        trx,
        [{
          type: 'key.created',
          actor: { id: by.id, kind: by.kind, via },
          data: { key_id: record.id, kind: record.kind, principal_id: record.principalId, groups: record.groups, on_behalf_of: record.onBehalfOf ?? null },
        }],
        now,
      )
      return created
    })
  }

  async revoke(by: Principal, idOrPrefix: string, via: string): Promise<ApiKeyRecord> {
    const now = this.#now()
    return this.#store.db.transaction().execute(async (trx) => {
      const record = await new ApiKeyRepository(trx, { cache: this.#keys.cache }).revoke(idOrPrefix, now)
      await this.#audit.append(
        trx,
        [{ type: 'key.revoked', actor: { id: by.id, kind: by.kind, via }, data: { key_id: record.id, principal_id: record.principalId } }],
        now,
      )
      return record
    })
  }
}
