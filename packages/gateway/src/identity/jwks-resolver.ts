import { createRemoteJWKSet } from 'jose'
import type { JWTVerifyGetKey } from 'jose'

const DISCOVERY_TIMEOUT_MS = 5_000

/**
 * Returns the key lookup for an issuer's signing keys. With `jwksUrl` it is
 * used as given; without, the issuer's OpenID discovery document names it.
 *
 * Discovery happens on first use, not here, so the gateway starts while the
 * identity provider is briefly unreachable; a failed discovery is retried on
 * the next token instead of being remembered.
 */
export function createJwksResolver(issuer: string, jwksUrl?: string): JWTVerifyGetKey {
  requireSecureUrl(issuer, 'issuer')
  if (jwksUrl !== undefined) return createRemoteJWKSet(requireSecureUrl(jwksUrl, 'jwksUrl'))

  let pending: Promise<JWTVerifyGetKey> | undefined
  const load = (): Promise<JWTVerifyGetKey> => {
    pending ??= discoverJwksUrl(issuer).then(
      (url) => createRemoteJWKSet(url),
      (error: unknown) => {
        pending = undefined
        throw error
      },
    )
    return pending
  }
  return async (protectedHeader, token) => (await load())(protectedHeader, token)
}

async function discoverJwksUrl(issuer: string): Promise<URL> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`
  const response = await fetch(url, {
    headers: { accept: 'application/json' },
    // A redirect could lead anywhere, including to plain http.
    redirect: 'manual',
    signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS),
  })
  if (response.status !== 200) throw new Error(`OpenID discovery at ${url} answered ${response.status}`)
  const document: unknown = await response.json()
  if (typeof document !== 'object' || document === null) throw new Error(`OpenID discovery at ${url} is not a JSON object`)
  const { issuer: announced, jwks_uri: jwksUri } = document as Record<string, unknown>
  // OpenID Connect Discovery 1.0 section 4.3: the document must name the issuer
  // it was fetched for, or it may be describing someone else's keys.
  if (announced !== issuer) throw new Error(`OpenID discovery at ${url} names issuer ${String(announced)}, not ${issuer}`)
  if (typeof jwksUri !== 'string') throw new Error(`OpenID discovery at ${url} has no jwks_uri`)
  return requireSecureUrl(jwksUri, 'jwks_uri')
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

/**
 * Keys fetched over plain http could be swapped by anyone on the path, so only
 * https is accepted, except on the loopback interface (a local IdP in
 * development and tests).
 */
function requireSecureUrl(value: string, label: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new TypeError(`${label} must be an absolute URL, got ${JSON.stringify(value)}`)
  }
  const secure = url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))
  if (!secure) throw new TypeError(`${label} must use https (http is only allowed on localhost), got ${value}`)
  return url
}
