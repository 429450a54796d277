import { decodeJwt } from 'jose'
import { CountersignError, isCountersignError } from '../core/index.js'
import type { Principal } from '../core/index.js'
import { API_KEY_PREFIX } from './api-key.js'
import type { JwtVerifier } from './jwt-verifier.js'
import { operatorRightsProblem } from './operator-rights.js'

/**
 * How often one caller may have an API key's secret checked (a deliberately
 * slow scrypt). Checks skipped by the verified-key cache cost nothing and are
 * not counted.
 */
export interface SecretCheckBudget {
  /** False when the secret of `keyId` must not be checked now; the token is then refused unchecked. */
  allows(keyId: string): boolean
  /** Told when a checked secret of `keyId` was wrong. */
  spent(keyId: string): void
}

/** The part of {@link ApiKeyRepository} the authenticator needs. */
export interface ApiKeyAuthentication {
  authenticate(token: string, now: number, budget?: SecretCheckBudget): Promise<Principal>
}

export interface AuthenticatorOptions {
  /** Checks `cs_...` API keys; without it every API key is refused. */
  apiKeys?: ApiKeyAuthentication
  /** One verifier per trusted JWT issuer (OIDC providers, GitHub Actions). */
  jwtVerifiers?: JwtVerifier[]
}

// RFC 6750 section 2.1: `Bearer` (any case), then a b64token.
const BEARER_PATTERN = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i

/**
 * Turns an `Authorization` header into the principal making the call, or
 * refuses with `unauthenticated`. There is no anonymous principal and no
 * fallback: whatever cannot be verified is refused.
 *
 * `cs_` tokens are API keys. Anything else must be a JWT from a configured
 * issuer; its `iss` is read before verification only to pick the verifier,
 * which then checks `iss` again along with everything else.
 *
 * @example
 * const authenticator = new Authenticator({
 *   apiKeys: new ApiKeyRepository(db),
 *   jwtVerifiers: [createOidcVerifier({ issuer, audience }), createGitHubActionsVerifier({ audience })],
 * })
 * const principal = await authenticator.authenticate(request.headers.authorization, Date.now())
 */
export class Authenticator {
  readonly #apiKeys: ApiKeyAuthentication | undefined
  readonly #verifiers = new Map<string, JwtVerifier>()

  constructor(options: AuthenticatorOptions) {
    this.#apiKeys = options.apiKeys
    for (const verifier of options.jwtVerifiers ?? []) {
      if (verifier.issuer === '') throw new TypeError('A token verifier needs an issuer')
      if (this.#verifiers.has(verifier.issuer)) {
        throw new TypeError(`Two token verifiers are configured for issuer ${verifier.issuer}`)
      }
      this.#verifiers.set(verifier.issuer, verifier)
    }
  }

  /**
   * Resolves to the caller's principal, or rejects with `unauthenticated`, or
   * `forbidden` for a non-human principal with operator rights (whatever
   * granted them, a stored key or a token's groups claim). `budget` bounds the
   * API key secrets checked.
   */
  async authenticate(authorizationHeader: string | undefined, now: number, budget?: SecretCheckBudget): Promise<Principal> {
    const principal = await this.#identify(authorizationHeader, now, budget)
    const problem = operatorRightsProblem(principal.kind, principal.groups)
    if (problem !== undefined) {
      throw new CountersignError('forbidden', `${principal.id} is refused: ${problem}. Revoke its key and give the operator a human key.`, {
        principal_id: principal.id,
        kind: principal.kind,
      })
    }
    return principal
  }

  async #identify(authorizationHeader: string | undefined, now: number, budget?: SecretCheckBudget): Promise<Principal> {
    if (authorizationHeader === undefined || authorizationHeader.trim() === '') {
      throw new CountersignError('unauthenticated', 'Missing Authorization header; send "Authorization: Bearer <token>".')
    }
    const token = BEARER_PATTERN.exec(authorizationHeader)?.[1]
    if (token === undefined) {
      throw new CountersignError('unauthenticated', 'Malformed Authorization header; send "Authorization: Bearer <token>".')
    }
    if (token.startsWith(API_KEY_PREFIX)) {
      if (this.#apiKeys === undefined) throw new CountersignError('unauthenticated', 'Unknown or revoked API key.')
      return this.#apiKeys.authenticate(token, now, budget)
    }
    const verifier = this.#verifiers.get(unverifiedIssuer(token))
    if (verifier === undefined) {
      throw new CountersignError('unauthenticated', 'Bearer token refused: it is not an API key or a token from a trusted issuer.')
    }
    try {
      return await verifier.verify(token, now)
    } catch (error) {
      if (isCountersignError(error) && error.code === 'unauthenticated') throw error
      throw new CountersignError('unauthenticated', 'Bearer token refused: it could not be verified.')
    }
  }
}

/** The `iss` of an unverified JWT, for routing only; '' when there is none. */
function unverifiedIssuer(token: string): string {
  try {
    const { iss } = decodeJwt(token)
    return typeof iss === 'string' ? iss : ''
  } catch {
    return ''
  }
}
