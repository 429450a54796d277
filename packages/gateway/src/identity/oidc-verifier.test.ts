import { generateKeyPair } from 'jose'
import type { JWTPayload } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CountersignError } from '../core/index.js'
import { createOidcVerifier } from './oidc-verifier.js'
import { startTestIssuer } from './test-issuer.js'
import type { TestIssuer } from './test-issuer.js'

const now = Date.UTC(2025, 5, 1, 12, 0, 0)
const nowSec = now / 1000

let idp: TestIssuer
beforeAll(async () => {
  idp = await startTestIssuer()
})
afterAll(async () => {
  await idp.close()
})

function verifier(options: Partial<Parameters<typeof createOidcVerifier>[0]> = {}) {
  return createOidcVerifier({ issuer: idp.issuer, audience: 'countersign', clockToleranceSec: 30, ...options })
}

const dana: JWTPayload = {
  sub: '00u1dana',
  aud: 'countersign',
  email: 'Dana@Example.com',
  email_verified: true,
  name: 'Dana Owner',
  groups: ['data-owners', 'sre'],
  auth_time: nowSec - 120,
}

async function refusal(promise: Promise<unknown>): Promise<CountersignError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  )
  expect(error).toBeInstanceOf(CountersignError)
  const refused = error as CountersignError
  expect(refused.code).toBe('unauthenticated')
  return refused
}

function unsignedToken(header: object, payload: object): string {
  const encode = (part: object) => Buffer.from(JSON.stringify(part)).toString('base64url')
  return `${encode(header)}.${encode(payload)}.`
}

describe('createOidcVerifier', () => {
  it('maps a valid token to a human principal with its groups, email and sign-in time', async () => {
    const principal = await verifier().verify(await idp.sign(dana, { now }), now)
    expect(principal).toEqual({
      id: 'dana@example.com',
      kind: 'human',
      displayName: 'Dana Owner',
      email: 'dana@example.com',
      groups: ['data-owners', 'sre'],
      claims: { iss: idp.issuer, sub: '00u1dana' },
      authTime: (nowSec - 120) * 1000,
    })
  })

  it('finds the signing keys through discovery once and reuses them', async () => {
    const fresh = await startTestIssuer()
    try {
      const okta = createOidcVerifier({ issuer: fresh.issuer, audience: 'countersign' })
      await okta.verify(await fresh.sign(dana, { now }), now)
      await okta.verify(await fresh.sign(dana, { now }), now)
      expect(fresh.hits.get('/.well-known/openid-configuration')).toBe(1)
      expect(fresh.hits.get('/jwks')).toBe(1)
    } finally {
      await fresh.close()
    }
  })

  it('uses a configured jwksUrl without asking for discovery', async () => {
    const fresh = await startTestIssuer()
    try {
      const okta = createOidcVerifier({ issuer: fresh.issuer, audience: 'countersign', jwksUrl: fresh.jwksUrl })
      await okta.verify(await fresh.sign(dana, { now }), now)
      expect(fresh.hits.get('/.well-known/openid-configuration')).toBeUndefined()
    } finally {
      await fresh.close()
    }
  })

  it('reads groups and email from the configured claims', async () => {
    const token = await idp.sign({ sub: 'u1', aud: 'countersign', upn: 'omar@example.com', roles: 'sre' }, { now })
    const principal = await verifier({ groupsClaim: 'roles', emailClaim: 'upn' }).verify(token, now)
    expect(principal.id).toBe('omar@example.com')
    expect(principal.groups).toEqual(['sre'])
  })

  it('uses sub as the id when the token has no email', async () => {
    const token = await idp.sign({ sub: 'u1', aud: 'countersign' }, { now })
    const principal = await verifier().verify(token, now)
    expect(principal).toMatchObject({ id: 'u1', displayName: 'u1', groups: [] })
    expect(principal.email).toBeUndefined()
    expect(principal.authTime).toBeUndefined()
  })

  it('does not take an email the provider marks unverified as the identity', async () => {
    const token = await idp.sign({ ...dana, sub: 'mallory', email_verified: false }, { now })
    const principal = await verifier().verify(token, now)
    expect(principal.id).toBe('mallory')
    expect(principal.email).toBeUndefined()
  })

  it('ignores group entries that are not strings', async () => {
    const token = await idp.sign({ ...dana, groups: ['sre', 7, null, { name: 'admins' }, ''] }, { now })
    expect((await verifier().verify(token, now)).groups).toEqual(['sre'])
  })

  it('can map tokens of a service issuer to service principals', async () => {
    const token = await idp.sign({ sub: 'billing-svc', aud: 'countersign' }, { now })
    expect((await verifier({ kind: 'service' }).verify(token, now)).kind).toBe('service')
  })

  it('refuses a token issued for another audience', async () => {
    const token = await idp.sign({ ...dana, aud: 'some-other-app' }, { now })
    const error = await refusal(verifier().verify(token, now))
    expect(error.message).toBe('Bearer token refused: claim "aud" is not accepted.')
  })

  it('refuses a token whose iss is not the configured issuer, even when signed with the right key', async () => {
    const token = await idp.sign({ ...dana, iss: 'https://evil.example.com' }, { now })
    const error = await refusal(verifier().verify(token, now))
    expect(error.message).toBe('Bearer token refused: claim "iss" is not accepted.')
  })

  it('refuses an expired token once the clock tolerance has passed', async () => {
    const token = await idp.sign(dana, { now: now - 10 * 60_000 })
    const error = await refusal(verifier().verify(token, now))
    expect(error.message).toBe('Bearer token refused: it has expired.')
  })

  it('accepts a token that expired within the clock tolerance', async () => {
    const token = await idp.sign({ ...dana, exp: nowSec - 10 }, { now })
    expect((await verifier().verify(token, now)).id).toBe('dana@example.com')
  })

  it('refuses a token used before its nbf', async () => {
    const token = await idp.sign({ ...dana, nbf: nowSec + 600 }, { now })
    await refusal(verifier().verify(token, now))
  })

  it('refuses a token without an expiry', async () => {
    const token = await idp.sign({ ...dana, exp: undefined }, { now })
    const error = await refusal(verifier().verify(token, now))
    expect(error.message).toBe('Bearer token refused: claim "exp" is missing.')
  })

  it('refuses a token signed by a key the issuer does not publish, even under the published kid', async () => {
    const { privateKey } = await generateKeyPair('ES256')
    const token = await idp.sign(dana, { now, key: privateKey })
    const error = await refusal(verifier().verify(token, now))
    expect(error.message).toBe("Bearer token refused: its signature does not verify with the issuer's keys.")
  })

  it('refuses a validly signed token whose payload was altered', async () => {
    const token = await idp.sign(dana, { now })
    const [header, , signature] = token.split('.')
    const payload = Buffer.from(JSON.stringify({ ...dana, iss: idp.issuer, exp: nowSec + 300, groups: ['admins'] }))
    await refusal(verifier().verify(`${header}.${payload.toString('base64url')}.${signature}`, now))
  })

  it('refuses an unsigned token with alg none', async () => {
    const token = unsignedToken({ alg: 'none', typ: 'JWT' }, { ...dana, iss: idp.issuer, exp: nowSec + 300 })
    await refusal(verifier().verify(token, now))
  })

  it('refuses an HMAC token keyed with the public JWKS', async () => {
    const jwks = await (await fetch(idp.jwksUrl)).text()
    const token = await idp.sign(dana, { now, alg: 'HS256', key: new TextEncoder().encode(jwks) })
    const error = await refusal(verifier().verify(token, now))
    expect(error.message).toBe('Bearer token refused: its signing algorithm is not accepted.')
  })

  it('refuses strings that are not JWTs', async () => {
    for (const token of ['', 'abc', 'a.b.c', 'a.b']) await refusal(verifier().verify(token, now))
  })

  it('refuses every token when discovery names a different issuer', async () => {
    const liar = await startTestIssuer({ announcedIssuer: 'https://someone-else.example.com' })
    try {
      const okta = createOidcVerifier({ issuer: liar.issuer, audience: 'countersign' })
      const error = await refusal(okta.verify(await liar.sign(dana, { now }), now))
      expect(error.message).toBe("Bearer token refused: the issuer's signing keys could not be fetched or used.")
      expect(liar.hits.get('/jwks')).toBeUndefined()
    } finally {
      await liar.close()
    }
  })

  it('refuses tokens while the identity provider is down and accepts them once it is back', async () => {
    const flaky = await startTestIssuer()
    try {
      const okta = createOidcVerifier({ issuer: flaky.issuer, audience: 'countersign' })
      const token = await flaky.sign(dana, { now })
      flaky.available = false
      const error = await refusal(okta.verify(token, now))
      expect(error.message).toBe("Bearer token refused: the issuer's signing keys could not be fetched or used.")
      flaky.available = true
      expect((await okta.verify(token, now)).id).toBe('dana@example.com')
    } finally {
      await flaky.close()
    }
  })

  it('refuses at construction an issuer or jwksUrl reached over plain http off the loopback interface', () => {
    expect(() => createOidcVerifier({ issuer: 'http://idp.example.com', audience: 'countersign' })).toThrow(TypeError)
    expect(() =>
      createOidcVerifier({ issuer: 'https://idp.example.com', audience: 'countersign', jwksUrl: 'http://idp.example.com/jwks' }),
    ).toThrow(TypeError)
    expect(() => createOidcVerifier({ issuer: 'not a url', audience: 'countersign' })).toThrow(TypeError)
  })

  describe('with an RFC 8693 act claim', () => {
    it('makes the actor an agent acting for the subject, verified, without the subject’s groups or sign-in time', async () => {
      const token = await idp.sign({ ...dana, act: { sub: 'copilot-agent' } }, { now })
      const principal = await verifier().verify(token, now)
      expect(principal).toEqual({
        id: 'copilot-agent',
        kind: 'agent',
        displayName: 'copilot-agent',
        groups: [],
        onBehalfOf: { id: 'dana@example.com', verified: true },
        claims: { iss: idp.issuer, sub: '00u1dana', priorActors: [] },
      })
    })

    it('records earlier actors of a delegation chain', async () => {
      const token = await idp.sign({ ...dana, act: { sub: 'sub-agent', act: { sub: 'orchestrator' } } }, { now })
      const principal = await verifier().verify(token, now)
      expect(principal.id).toBe('sub-agent')
      expect(principal.claims?.priorActors).toEqual(['orchestrator'])
    })

    it.each([
      ['a string', 'copilot-agent'],
      ['an object without sub', { client_id: 'copilot-agent' }],
      ['an empty sub', { sub: '' }],
      ['a malformed nested actor', { sub: 'a', act: 'b' }],
      ['a chain deeper than any real exchange', nestedActors(20)],
    ])('refuses the token rather than treating it as the human when act is %s', async (_label, act) => {
      const token = await idp.sign({ ...dana, act }, { now })
      const error = await refusal(verifier().verify(token, now))
      expect(error.message).toBe('Bearer token refused: its "act" claim is malformed.')
    })
  })
})

function nestedActors(depth: number): object {
  let act: object = { sub: 'agent-0' }
  for (let i = 1; i < depth; i++) act = { sub: `agent-${i}`, act }
  return act
}
