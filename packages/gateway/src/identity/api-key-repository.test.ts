import { afterEach, beforeEach, expect, it } from 'vitest'
import { CountersignError } from '../core/index.js'
import type { Store } from '../store/index.js'
import { describeEachBackend } from '../store/test-backends.js'
import { generateApiKey, parseApiKeyToken } from './api-key.js'
import { ApiKeyRepository } from './api-key-repository.js'
import type { NewApiKey } from './api-key-repository.js'

const now = Date.UTC(2025, 5, 1, 12, 0, 0)

const deployBot: NewApiKey = {
  kind: 'agent',
  principalId: 'deploy-bot',
  displayName: 'Deploy bot',
  groups: ['pipelines'],
  onBehalfOf: 'dana@example.com',
  createdBy: 'admin@example.com',
}

async function refusal(promise: Promise<unknown>, code: CountersignError['code']): Promise<CountersignError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  )
  expect(error).toBeInstanceOf(CountersignError)
  expect((error as CountersignError).code).toBe(code)
  return error as CountersignError
}

describeEachBackend('ApiKeyRepository', (backend) => {
  let store: Store
  let keys: ApiKeyRepository
  beforeEach(async () => {
    store = await backend.open()
    keys = new ApiKeyRepository(store.db)
  })
  afterEach(async () => {
    await store.close()
  })

  async function storedRows() {
    return store.db.selectFrom('api_keys').selectAll().execute()
  }

  it('creates a key whose token authenticates as the principal it was made for', async () => {
    const { record, token } = await keys.create(deployBot, now)
    expect(token.startsWith(`${record.prefix}_`)).toBe(true)
    expect(record).toEqual({
      id: record.id,
      prefix: `cs_${record.id}`,
      kind: 'agent',
      principalId: 'deploy-bot',
      displayName: 'Deploy bot',
      groups: ['pipelines'],
      onBehalfOf: 'dana@example.com',
      createdAt: now,
      createdBy: 'admin@example.com',
    })
    expect(await keys.authenticate(token, now)).toEqual({
      id: 'deploy-bot',
      kind: 'agent',
      displayName: 'Deploy bot',
      groups: ['pipelines'],
      onBehalfOf: { id: 'dana@example.com', verified: false },
      claims: { apiKeyId: record.id },
      keyCreatedBy: 'admin@example.com',
    })
  })

  it('stores only a scrypt hash, never the token or its secret', async () => {
    const { token } = await keys.create(deployBot, now)
    const [row] = await storedRows()
    expect(row?.hash).toMatch(/^scrypt\$/)
    expect(JSON.stringify(row)).not.toContain(parseApiKeyToken(token)?.secret)
  })

  it('keeps the email of a human key on its principal', async () => {
    const { token } = await keys.create(
      { kind: 'human', principalId: 'omar@example.com', displayName: 'Omar', email: 'omar@example.com', groups: [], createdBy: 'admin' },
      now,
    )
    expect(await keys.authenticate(token, now)).toMatchObject({ kind: 'human', email: 'omar@example.com' })
  })

  it('names every bad field when it refuses to create a key', async () => {
    const error = await refusal(keys.create({ ...deployBot, kind: 'human', principalId: '' }, now), 'invalid_request')
    expect(error.message).toBe(
      'Invalid API key: principalId: Too small: expected string to have >=1 characters; onBehalfOf: only an agent key can act on behalf of someone',
    )
  })

  it.each([
    ['a human key acting on behalf of someone', { ...deployBot, kind: 'human' as const }],
    ['an unknown kind', { ...deployBot, kind: 'robot' as 'agent' }],
    ['an empty principal id', { ...deployBot, principalId: '  ' }],
    ['a malformed email', { ...deployBot, email: 'not-an-email' }],
    ['an unexpected field', { ...deployBot, admin: true } as NewApiKey],
  ])('refuses to create %s and stores nothing', async (_label, input) => {
    await refusal(keys.create(input, now), 'invalid_request')
    expect(await storedRows()).toEqual([])
  })

  it.each([
    ['an agent', 'agent' as const],
    ['a service', 'service' as const],
  ])('refuses to give %s operator rights, and stores nothing', async (_label, kind) => {
    const error = await refusal(
      keys.create({ kind, principalId: 'etl-bot', displayName: 'ETL bot', groups: ['countersign:admins'], createdBy: 'admin' }, now),
      'invalid_request',
    )
    expect(error.message).toBe(
      `Invalid API key: groups: operator rights (countersign:admins) belong to humans only, and this is a${kind === 'agent' ? 'n' : ''} ${kind}; create a human key for the operator, or leave the group out`,
    )
    expect(await storedRows()).toEqual([])
  })

  it('finds the non-human operator keys a store written before the rule still holds, and only those in use', async () => {
    const human = await keys.create({ kind: 'human', principalId: 'ops@example.com', displayName: 'Ops', groups: ['countersign:admins'], createdBy: 'admin' }, now)
    const legacy = { prefix: 'cs_legacy', hash: 'x', kind: 'agent', principal_id: 'etl-bot', display_name: 'ETL bot', email: null, on_behalf_of: null, created_at: now, created_by: 'admin' }
    await store.db.insertInto('api_keys').values([
      { ...legacy, id: 'legacy1', groups: JSON.stringify(['countersign:admins']), revoked_at: null },
      { ...legacy, id: 'legacy2', prefix: 'cs_legacy2', groups: JSON.stringify(['countersign:admins']), revoked_at: now },
      { ...legacy, id: 'legacy3', prefix: 'cs_legacy3', groups: JSON.stringify(['pipelines']), revoked_at: null },
    ]).execute()
    expect((await keys.nonHumanOperators()).map((key) => key.id)).toEqual(['legacy1'])
    expect(human.record.kind).toBe('human')
  })

  it('lists every key, revoked ones included, oldest first, without hashes', async () => {
    const first = await keys.create(deployBot, now)
    const second = await keys.create({ ...deployBot, principalId: 'billing', onBehalfOf: undefined }, now + 1)
    await keys.revoke(first.record.id, now + 2)
    const listed = await keys.list()
    expect(listed).toEqual([{ ...first.record, revokedAt: now + 2 }, second.record])
    expect(JSON.stringify(listed)).not.toContain('scrypt')
  })

  it('refuses a token with the right id and a wrong secret, and remembers nothing', async () => {
    const { record } = await keys.create(deployBot, now)
    const forged = `${record.prefix}_${generateApiKey().secret}`
    const error = await refusal(keys.authenticate(forged, now), 'unauthenticated')
    expect(error.message).toBe('Unknown or revoked API key.')
    expect(keys.cache.size).toBe(0)
  })

  it('refuses an unknown key and a malformed token with the same message as a wrong secret', async () => {
    await keys.create(deployBot, now)
    for (const token of [generateApiKey().token, 'cs_nope', 'cs_', '', 'Bearer cs_x']) {
      const error = await refusal(keys.authenticate(token, now), 'unauthenticated')
      expect(error.message).toBe('Unknown or revoked API key.')
    }
  })

  it('refuses a revoked key at once, although it was verified and cached a moment before', async () => {
    const { record, token } = await keys.create(deployBot, now)
    await keys.authenticate(token, now)
    expect(keys.cache.size).toBe(1)
    await keys.revoke(record.prefix, now + 1)
    expect(keys.cache.size).toBe(0)
    const error = await refusal(keys.authenticate(token, now + 2), 'unauthenticated')
    expect(error.message).toBe('Unknown or revoked API key.')
  })

  it('refuses a key revoked by another replica even while this replica still has it cached', async () => {
    const { record, token } = await keys.create(deployBot, now)
    await keys.authenticate(token, now)
    const otherReplica = new ApiKeyRepository(store.db)
    await otherReplica.revoke(record.id, now + 1)
    expect(keys.cache.size).toBe(1)
    await refusal(keys.authenticate(token, now + 2), 'unauthenticated')
  })

  it('keeps the first revocation time when a key is revoked twice', async () => {
    const { record } = await keys.create(deployBot, now)
    await keys.revoke(record.id, now + 1)
    expect((await keys.revoke(record.prefix, now + 5)).revokedAt).toBe(now + 1)
  })

  it('answers not_found when revoking a key that does not exist', async () => {
    const error = await refusal(keys.revoke('cs_aaaaaaaaaaaa', now), 'not_found')
    expect(error.message).toBe('No API key cs_aaaaaaaaaaaa.')
  })

  it('keeps the key usable when a revocation inside a transaction is rolled back', async () => {
    const { record, token } = await keys.create(deployBot, now)
    await keys.authenticate(token, now)
    await store.db
      .transaction()
      .execute(async (trx) => {
        await new ApiKeyRepository(trx, { cache: keys.cache }).revoke(record.id, now + 1)
        throw new Error('audit append failed')
      })
      .catch(() => undefined)
    expect(keys.cache.size).toBe(0)
    expect((await keys.authenticate(token, now + 2)).id).toBe('deploy-bot')
    expect((await keys.list())[0]?.revokedAt).toBeUndefined()
  })

  it('verifies a token again with scrypt once its cache entry has expired', async () => {
    const { record, token } = await keys.create(deployBot, now)
    await keys.authenticate(token, now)
    const [row] = await storedRows()
    expect(keys.cache.has(token, record.id, row?.hash ?? '', now + 59_000)).toBe(true)
    expect(keys.cache.has(token, record.id, row?.hash ?? '', now + 61_000)).toBe(false)
    expect((await keys.authenticate(token, now + 61_000)).id).toBe('deploy-bot')
    expect(keys.cache.has(token, record.id, row?.hash ?? '', now + 61_000)).toBe(true)
  })
})
