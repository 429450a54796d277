import { join } from 'node:path'
import { errors as joseErrors, type JWK, jwtVerify, SignJWT } from 'jose'
import { CountersignError } from '../core/index.js'
import { loadSigningKey, type SigningKey, signingKeyFromPem } from '../signing-keys/index.js'

/** The claims a grant carries. `dig` binds it to one exact action. */
export interface GrantClaims {
  jti: string
  /** The requester the grant was issued to. */
  sub: string
  /** The action name. */
  act: string
  /** The digest of the approved version of the action. */
  dig: string
  /** The request the grant belongs to. */
  rid: string
  /** Expiry, seconds since the epoch. */
  exp: number
  aud: string
}

/** The grant signing key's file name inside the data directory. */
export const GRANT_SIGNING_KEY_FILE = 'grant-signing-key.pem'

/**
 * Signs and verifies grant tokens (EdDSA JWTs). The key pair lives in the data
 * directory, created on first use with mode 0600, or comes from configuration.
 * Ed25519 signatures are deterministic, so signing the same grant twice gives
 * the same token: the gateway never needs to store tokens.
 */
export class GrantSigner {
  /** The RFC 7638 JWK thumbprint of the public key, sent as `kid`. */
  readonly keyId: string
  readonly audience: string
  readonly issuer: string
  readonly #key: SigningKey

  constructor(key: SigningKey, options: { audience: string; issuer: string }) {
    this.#key = key
    this.keyId = key.keyId
    this.audience = options.audience
    this.issuer = options.issuer
  }

  /**
   * Loads the key from `pem`, or from the data directory (creating it on first use).
   *
   * @throws LocalError `config_invalid` when the key cannot be read or created, or is not an Ed25519 private key.
   */
  static load(options: ({ dataDir: string } | { pem: string }) & { audience: string; issuer: string }): GrantSigner {
    const key = 'pem' in options
      ? signingKeyFromPem(options.pem, 'The configured grant signing key')
      : loadSigningKey(join(options.dataDir, GRANT_SIGNING_KEY_FILE), 'grant signing key')
    return new GrantSigner(key, options)
  }

  async sign(claims: Omit<GrantClaims, 'aud'>, issuedAtMs: number): Promise<string> {
    return new SignJWT({ act: claims.act, dig: claims.dig, rid: claims.rid })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: this.keyId })
      .setJti(claims.jti)
      .setSubject(claims.sub)
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt(Math.floor(issuedAtMs / 1000))
      .setExpirationTime(claims.exp)
      .sign(this.#key.privateKey)
  }

  /**
   * Verifies a grant's signature, audience and issuer. Expiry is checked
   * against `now` so callers decide between `grant_expired` and other refusals.
   */
  async verify(token: string, now: number): Promise<GrantClaims> {
    try {
      const { payload } = await jwtVerify(token, this.#key.publicKey, {
        algorithms: ['EdDSA'],
        audience: this.audience,
        issuer: this.issuer,
        currentDate: new Date(now),
      })
      const { jti, sub, act, dig, rid, exp, aud } = payload
      if (typeof jti !== 'string' || typeof sub !== 'string' || typeof act !== 'string' ||
          typeof dig !== 'string' || typeof rid !== 'string' || typeof exp !== 'number') {
        throw new CountersignError('grant_invalid', 'The grant token lacks required claims (jti, sub, act, dig, rid, exp).')
      }
      return { jti, sub, act, dig, rid, exp, aud: typeof aud === 'string' ? aud : this.audience }
    } catch (error) {
      if (error instanceof CountersignError) throw error
      if (error instanceof joseErrors.JWTExpired) {
        // jwtVerify checks the signature before the claims, so the request id of an expired grant can be trusted.
        const rid = error.payload.rid
        throw new CountersignError('grant_expired', 'The grant has expired; request the action again.', typeof rid === 'string' ? { request_id: rid } : {})
      }
      throw new CountersignError('grant_invalid', 'The grant token is not a valid grant issued by this gateway.', {
        reason: error instanceof joseErrors.JOSEError ? error.code : 'malformed',
      })
    }
  }

  /** The public key set verifiers use to check grants offline. */
  async jwks(): Promise<{ keys: JWK[] }> {
    return { keys: [{ ...this.#key.publicJwk, kid: this.keyId, alg: 'EdDSA', use: 'sig' }] }
  }
}

