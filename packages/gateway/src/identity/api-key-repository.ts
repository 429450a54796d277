import type { Kysely, Selectable } from 'kysely'
import { z } from 'zod'
import { CountersignError } from '../core/index.js'
import type { Principal, PrincipalKind } from '../core/index.js'
import { type ApiKeysTable, type Database, runSql } from '../store/index.js'
import type { SecretCheckBudget } from './authenticator.js'
import { API_KEY_PREFIX, generateApiKey, hashApiKeySecret, parseApiKeyToken, verifyApiKeySecret } from './api-key.js'
import { operatorRightsProblem } from './operator-rights.js'
import { VerifiedKeyCache } from './verified-key-cache.js'

const PRINCIPAL_KINDS = ['human', 'agent', 'service'] as const satisfies readonly PrincipalKind[]

const nonEmptyText = z.string().trim().min(1).max(256)

/** What an operator supplies to mint a key. Parsed again on `create`, since it ends up in every principal the key yields. */
export const newApiKeySchema = z
  .strictObject({
    kind: z.enum(PRINCIPAL_KINDS),
    principalId: nonEmptyText,
    displayName: nonEmptyText,
    email: z.email().max(256).optional(),
    groups: z.array(nonEmptyText).max(100),
    onBehalfOf: nonEmptyText.optional(),
    createdBy: nonEmptyText,
  })
  .refine((key) => key.onBehalfOf === undefined || key.kind === 'agent', {
    message: 'only an agent key can act on behalf of someone',
    path: ['onBehalfOf'],
  })
  .superRefine((key, context) => {
    const problem = operatorRightsProblem(key.kind, key.groups)
    if (problem !== undefined) context.addIssue({ code: 'custom', message: `${problem}; create a human key for the operator, or leave the group out`, path: ['groups'] })
  })

export type NewApiKey = z.input<typeof newApiKeySchema>

/** A stored API key as shown to operators. It never includes the secret or its hash. */
export interface ApiKeyRecord {
  id: string
  /** `cs_<id>`: the part of the token that is safe to show. */
  prefix: string
  kind: PrincipalKind
  principalId: string
  displayName: string
  email?: string
  groups: string[]
  /** The human this agent says it acts for; claimed, not proven. */
  onBehalfOf?: string
  createdAt: number
  createdBy: string
  revokedAt?: number
}

/**
 * API keys for agents, services and scripted humans, stored as scrypt hashes
 * in the `api_keys` table.
 *
 * Creating or revoking a key is a state change that must be audited in the
 * same transaction: construct the repository over that `Transaction` and pass
 * the long-lived repository's `cache` so a revocation also clears it.
 *
 * @example
 * const keys = new ApiKeyRepository(db)
 * const { record, token } = await keys.create(
 *   { kind: 'agent', principalId: 'deploy-bot', displayName: 'Deploy bot', groups: [], createdBy: 'admin@example.com' },
 *   Date.now(),
 * )
 * const principal = await keys.authenticate(token, Date.now())
 * await keys.revoke(record.prefix, Date.now())
 */
export class ApiKeyRepository {
  readonly #db: Kysely<Database>
  /** Shared with repositories built over a transaction, so their revocations clear it too. */
  readonly cache: VerifiedKeyCache

  constructor(db: Kysely<Database>, options: { cache?: VerifiedKeyCache } = {}) {
    this.#db = db
    this.cache = options.cache ?? new VerifiedKeyCache()
  }

  /**
   * Mints a key. The returned `token` is the only copy that will ever exist:
   * show it to the operator once.
   */
  async create(input: NewApiKey, now: number): Promise<{ record: ApiKeyRecord; token: string }> {
    const parsed = newApiKeySchema.safeParse(input)
    if (!parsed.success) {
      // Same shape as the server's invalid_request errors, so clients read one format.
      const issues = parsed.error.issues.map((issue) => ({
        path: issue.path.map(String).join('.') || '(root)',
        message: issue.message,
      }))
      const summary = issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')
      throw new CountersignError('invalid_request', `Invalid API key: ${summary}`, { issues })
    }
    const key = parsed.data
    const generated = generateApiKey()
    const row: Selectable<ApiKeysTable> = {
      id: generated.id,
      prefix: generated.prefix,
      hash: await hashApiKeySecret(generated.secret),
      kind: key.kind,
      principal_id: key.principalId,
      display_name: key.displayName,
      email: key.email ?? null,
      groups: JSON.stringify(key.groups),
      on_behalf_of: key.onBehalfOf ?? null,
      created_at: now,
      created_by: key.createdBy,
      revoked_at: null,
    }
    await this.#db.insertInto('api_keys').values(row).execute()
    return { record: recordFromRow(row), token: generated.token }
  }

  /**
   * Keys in use that give a non-human operator rights. Only a store written
   * before that was refused, or by hand, holds any; the gateway refuses to
   * start until they are revoked.
   */
  async nonHumanOperators(): Promise<ApiKeyRecord[]> {
    const rows = await this.#db.selectFrom('api_keys').selectAll().where('revoked_at', 'is', null).where('kind', '!=', 'human').execute()
    return rows.map(recordFromRow).filter((record) => operatorRightsProblem(record.kind, record.groups) !== undefined)
  }

  /** Every key, revoked ones included, oldest first. */
  async list(): Promise<ApiKeyRecord[]> {
    const rows = await this.#db.selectFrom('api_keys').selectAll().orderBy('created_at').orderBy('id').execute()
    return rows.map(recordFromRow)
  }

  /**
   * Revokes a key by id or by its `cs_<id>` prefix. Revoking a revoked key
   * changes nothing and returns it with its original revocation time.
   * An unknown key is `not_found`.
   */
  async revoke(idOrPrefix: string, now: number): Promise<ApiKeyRecord> {
    const id = idOrPrefix.startsWith(API_KEY_PREFIX) ? idOrPrefix.slice(API_KEY_PREFIX.length) : idOrPrefix
    await this.#db
      .updateTable('api_keys')
      .set({ revoked_at: now })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute()
    this.cache.forgetKey(id)
    const row = await this.#db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst()
    if (row === undefined) throw new CountersignError('not_found', `No API key ${idOrPrefix}.`)
    return recordFromRow(row)
  }

  /**
   * Turns a `cs_...` token into the principal its key was created for.
   * Anything else (a malformed token, an unknown id, a wrong secret, a revoked
   * key, a secret `budget` does not allow checking) is refused with the same
   * `unauthenticated` error, so a caller learns nothing about which part was wrong.
   */
  async authenticate(token: string, now: number, budget?: SecretCheckBudget): Promise<Principal> {
    const parsed = parseApiKeyToken(token)
    if (parsed === undefined) throw unknownOrRevoked()
    // Every authenticated call runs this; a prepared statement skips building the query each time.
    const row = (await runSql<Selectable<ApiKeysTable>>(this.#db, KEY_BY_ID_SQL, [parsed.id])).rows[0]
    if (row === undefined || row.revoked_at !== null) throw unknownOrRevoked()
    // A token verified a moment ago costs nothing to accept; only a scrypt check is counted against the budget.
    if (budget !== undefined && !this.cache.has(token, row.id, row.hash, now) && !budget.allows(row.id)) throw unknownOrRevoked()
    const verified = await this.cache.verify(token, row.id, row.hash, now, async () => {
      const right = await verifyApiKeySecret(parsed.secret, row.hash)
      if (!right) budget?.spent(row.id)
      return right
    })
    if (!verified) throw unknownOrRevoked()
    return principalFromRecord(recordFromRow(row))
  }
}

function unknownOrRevoked(): CountersignError {
  return new CountersignError('unauthenticated', 'Unknown or revoked API key.')
}

function principalFromRecord(record: ApiKeyRecord): Principal {
  const principal: Principal = {
    id: record.principalId,
    kind: record.kind,
    displayName: record.displayName,
    groups: record.groups,
    // Lets policy and audit tell which of a principal's keys was used.
    claims: { apiKeyId: record.id },
    // A key minted by the requester's side never counts on the requester's requests.
    keyCreatedBy: record.createdBy,
  }
  if (record.email !== undefined) principal.email = record.email
  // An operator typed this link in; nothing proves the human asked for it.
  if (record.onBehalfOf !== undefined) principal.onBehalfOf = { id: record.onBehalfOf, verified: false }
  return principal
}

const KEY_BY_ID_SQL = 'select * from "api_keys" where "id" = ?'

const storedGroupsSchema = z.array(z.string())
const storedKindSchema = z.enum(PRINCIPAL_KINDS)

function recordFromRow(row: Selectable<ApiKeysTable>): ApiKeyRecord {
  // Rows are only written by `create`; a row that does not parse is damage,
  // and failing loudly beats guessing a principal's kind or groups.
  const kind = storedKindSchema.parse(row.kind)
  const groups = storedGroupsSchema.parse(JSON.parse(row.groups))
  const record: ApiKeyRecord = {
    id: row.id,
    prefix: row.prefix,
    kind,
    principalId: row.principal_id,
    displayName: row.display_name,
    groups,
    createdAt: Number(row.created_at),
    createdBy: row.created_by,
  }
  if (row.email !== null) record.email = row.email
  if (row.on_behalf_of !== null) record.onBehalfOf = row.on_behalf_of
  if (row.revoked_at !== null) record.revokedAt = Number(row.revoked_at)
  return record
}
