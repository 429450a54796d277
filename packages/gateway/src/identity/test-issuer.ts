import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import type { CryptoKey, JWTPayload } from 'jose'

/**
 * A real OpenID provider on 127.0.0.1 for tests: it serves a discovery
 * document and a JWKS over HTTP, and signs tokens with the matching key.
 */
export interface TestIssuer {
  /** `http://127.0.0.1:<port>`, the value of `iss`. */
  issuer: string
  jwksUrl: string
  /** How many times each path was fetched, to check what verifiers cache. */
  hits: Map<string, number>
  /** While false every request is answered 503, as by a provider that is down. */
  available: boolean
  /** Signs `claims` (issuer, iat and a 5-minute exp filled in unless given) with the published key. */
  sign(claims: JWTPayload, options?: { now?: number; key?: CryptoKey | Uint8Array; alg?: string; kid?: string }): Promise<string>
  close(): Promise<void>
}

/** Starts a {@link TestIssuer}; `announcedIssuer` makes the discovery document lie about who it is. */
export async function startTestIssuer(options: { announcedIssuer?: string } = {}): Promise<TestIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'ES256', use: 'sig' }
  const hits = new Map<string, number>()
  let issuer = ''
  const state = { available: true }

  const server = createServer((request, response) => {
    const path = request.url ?? '/'
    hits.set(path, (hits.get(path) ?? 0) + 1)
    if (!state.available) {
      response.writeHead(503).end()
      return
    }
    const body =
      path === '/.well-known/openid-configuration'
        ? { issuer: options.announcedIssuer ?? issuer, jwks_uri: `${issuer}/jwks` }
        : path === '/jwks'
          ? { keys: [jwk] }
          : undefined
    response.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' })
    response.end(JSON.stringify(body ?? { error: 'not found' }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    hits,
    get available() {
      return state.available
    },
    set available(value: boolean) {
      state.available = value
    },
    async sign(claims, signOptions = {}) {
      const nowSec = Math.floor((signOptions.now ?? Date.now()) / 1000)
      return new SignJWT({ iss: issuer, iat: nowSec, exp: nowSec + 300, ...claims })
        .setProtectedHeader({ alg: signOptions.alg ?? 'ES256', kid: signOptions.kid ?? 'test-key' })
        .sign(signOptions.key ?? privateKey)
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((error) => (error ? reject(error) : resolve()))
      }),
  }
}
