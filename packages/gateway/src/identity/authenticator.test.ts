import { generateKeyPair } from 'jose'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CountersignError } from '../core/index.js'
import type { Store } from '../store/index.js'
import { BACKENDS } from '../store/test-backends.js'
import { ApiKeyRepository } from './api-key-repository.js'
import { Authenticator } from './authenticator.js'
import { createGitHubActionsVerifier } from './github-actions-verifier.js'
import type { JwtVerifier } from './jwt-verifier.js'
import { createOidcVerifier } from './oidc-verifier.js'
import { startTestIssuer } from './test-issuer.js'
import type { TestIssuer } from './test-issuer.js'

const now = Date.UTC(2025, 5, 1, 12, 0, 0)

let store: Store
let keys: ApiKeyRepository
let okta: TestIssuer
let github: TestIssuer
let authenticator: Authenticator
let agentToken: string

beforeAll(async () => {
  const sqlite = BACKENDS.find((backend) => backend.name === 'sqlite')
  if (sqlite === undefined) throw new Error('the sqlite test backend is missing')
  store = await sqlite.open()
  keys = new ApiKeyRepository(store.db)
  okta = await startTestIssuer()
  github = await startTestIssuer()
  authenticator = new Authenticator({
    apiKeys: keys,
    jwtVerifiers: [
      createOidcVerifier({ issuer: okta.issuer, audience: 'countersign' }),
      createGitHubActionsVerifier({ issuer: github.issuer, audience: 'countersign' }),
    ],
  })
  const created = await keys.create(
    { kind: 'agent', principalId: 'deploy-bot', displayName: 'Deploy bot', groups: [], createdBy: 'admin' },
    now,
  )
  agentToken = created.token
})
afterAll(async () => {
  await Promise.all([store.close(), okta.close(), github.close()])
})

async function refusal(promise: Promise<unknown>): Promise<CountersignError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  )
  expect(error).toBeInstanceOf(CountersignError)
  expect((error as CountersignError).code).toBe('unauthenticated')
  return error as CountersignError
}

const human = { sub: 'u-dana', aud: 'countersign', email: 'dana@example.com', groups: ['sre'] }
const run = {
  sub: 'repo:acme/infra:ref:refs/heads/main',
  aud: 'countersign',
  repository: 'acme/infra',
  workflow: 'Deploy',
  workflow_ref: 'acme/infra/.github/workflows/deploy.yml@refs/heads/main',
  actor: 'octocat',
}

describe('Authenticator', () => {
  it('authenticates an API key sent as a bearer token, whatever the scheme’s letter case', async () => {
    expect((await authenticator.authenticate(`Bearer ${agentToken}`, now)).id).toBe('deploy-bot')
    expect((await authenticator.authenticate(`bearer ${agentToken}`, now)).id).toBe('deploy-bot')
  })

  it('sends a token to the verifier of the issuer it names', async () => {
    const person = await authenticator.authenticate(`Bearer ${await okta.sign(human, { now })}`, now)
    expect(person).toMatchObject({ id: 'dana@example.com', kind: 'human', groups: ['sre'] })
    const pipeline = await authenticator.authenticate(`Bearer ${await github.sign(run, { now })}`, now)
    expect(pipeline).toMatchObject({ id: 'github:acme/infra:.github/workflows/deploy.yml', kind: 'agent' })
  })

  it('refuses a non-human key with operator rights, left in the store from before the rule, with forbidden', async () => {
    const { record, token } = await keys.create({ kind: 'agent', principalId: 'old-bot', displayName: 'Old bot', groups: [], createdBy: 'admin' }, now)
    // Groups are immutable through the schema; a store from before the rule is written by hand here.
    await sql`update api_keys set groups = ${JSON.stringify(['countersign:admins'])} where id = ${record.id}`.execute(store.db)
    const error = await authenticator.authenticate(`Bearer ${token}`, now).then(() => undefined, (reason: unknown) => reason)
    expect(error).toBeInstanceOf(CountersignError)
    expect((error as CountersignError).code).toBe('forbidden')
    expect((error as CountersignError).message).toBe(
      'old-bot is refused: operator rights (countersign:admins) belong to humans only, and this is an agent. Revoke its key and give the operator a human key.',
    )
  })

  it('refuses a request without an Authorization header', async () => {
    for (const header of [undefined, '', '   ']) {
      const error = await refusal(authenticator.authenticate(header, now))
      expect(error.message).toBe('Missing Authorization header; send "Authorization: Bearer <token>".')
    }
  })

  // The table is built before any key exists, so a well-formed stand-in token will do.
  const someKey = `cs_abcdefgh2345_${'a'.repeat(43)}`
  it.each([
    ['another scheme', `Basic ${Buffer.from('admin:admin').toString('base64')}`],
    ['the scheme alone', 'Bearer'],
    ['the token alone', someKey],
    ['two tokens', `Bearer ${someKey} ${someKey}`],
    ['a token with a control character', `Bearer ${someKey}\u0000`],
  ])('refuses a malformed header: %s', async (_label, header) => {
    const error = await refusal(authenticator.authenticate(header, now))
    expect(error.message).toBe('Malformed Authorization header; send "Authorization: Bearer <token>".')
  })

  it('refuses a token from an issuer it was not configured to trust', async () => {
    const stranger = await startTestIssuer()
    try {
      const error = await refusal(authenticator.authenticate(`Bearer ${await stranger.sign(human, { now })}`, now))
      expect(error.message).toBe('Bearer token refused: it is not an API key or a token from a trusted issuer.')
    } finally {
      await stranger.close()
    }
  })

  it('does not trust a token because it names a trusted issuer: the signature must be that issuer’s', async () => {
    const { privateKey } = await generateKeyPair('ES256')
    const forged = await okta.sign({ ...human, groups: ['admins'] }, { now, key: privateKey })
    await refusal(authenticator.authenticate(`Bearer ${forged}`, now))
    const signedByGitHub = await github.sign({ ...human, iss: okta.issuer }, { now })
    await refusal(authenticator.authenticate(`Bearer ${signedByGitHub}`, now))
  })

  it('refuses an unsigned token naming a trusted issuer', async () => {
    const encode = (part: object) => Buffer.from(JSON.stringify(part)).toString('base64url')
    const token = `${encode({ alg: 'none' })}.${encode({ ...human, iss: okta.issuer, exp: now / 1000 + 300 })}.`
    await refusal(authenticator.authenticate(`Bearer ${token}`, now))
  })

  it('refuses garbage that is neither an API key nor a JWT', async () => {
    for (const token of ['hello', 'a.b.c', 'cs_', 'cs_short']) await refusal(authenticator.authenticate(`Bearer ${token}`, now))
  })

  it('refuses every API key when no key store is configured', async () => {
    const jwtOnly = new Authenticator({ jwtVerifiers: [] })
    const error = await refusal(jwtOnly.authenticate(`Bearer ${agentToken}`, now))
    expect(error.message).toBe('Unknown or revoked API key.')
  })

  it('refuses the token when a verifier fails in an unexpected way', async () => {
    const broken: JwtVerifier = {
      issuer: okta.issuer,
      verify: () => Promise.reject(new TypeError('cannot read properties of undefined')),
    }
    const error = await refusal(new Authenticator({ jwtVerifiers: [broken] }).authenticate(`Bearer ${await okta.sign(human, { now })}`, now))
    expect(error.message).toBe('Bearer token refused: it could not be verified.')
  })

  it('rejects two verifiers for the same issuer at construction', () => {
    const a = createOidcVerifier({ issuer: okta.issuer, audience: 'a' })
    const b = createOidcVerifier({ issuer: okta.issuer, audience: 'b' })
    expect(() => new Authenticator({ jwtVerifiers: [a, b] })).toThrow(TypeError)
  })
})
