import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { errors as joseErrors, exportJWK, type JWK, jwtVerify, SignJWT } from 'jose'
import { CountersignError, LocalError } from '../core/index.js'

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

const KEY_FILE = 'grant-signing-key.pem'

/**
 * Signs and verifies grant tokens (EdDSA JWTs). The key pair lives in the data
 * directory, created on first use with mode 0600, or comes from configuration.
 * Ed25519 signatures are deterministic, so signing the same grant twice gives
 * the same token: the gateway never needs to store tokens.
 */
export class GrantSigner {
  readonly keyId: string
  readonly audience: string
  readonly issuer: string
  readonly #privateKey: KeyObject
  readonly #publicKey: KeyObject

  constructor(privateKey: KeyObject, options: { audience: string; issuer: string }) {
    if (privateKey.asymmetricKeyType !== 'ed25519') {
      throw new LocalError(
        'config_invalid',
        `The grant signing key is a ${privateKey.asymmetricKeyType ?? 'unknown'} key; grants are signed with Ed25519 (openssl genpkey -algorithm ed25519).`,
      )
    }
    this.#privateKey = privateKey
    this.#publicKey = createPublicKey(privateKey)
    const raw = this.#publicKey.export({ format: 'der', type: 'spki' })
    this.keyId = createHash('sha256').update(raw).digest('hex').slice(0, 16)
    this.audience = options.audience
    this.issuer = options.issuer
  }

  /** Loads the key from `pem`, or from the data directory (creating it on first use). */
  static load(options: { dataDir?: string; pem?: string; audience: string; issuer: string }): GrantSigner {
    if (options.pem) return new GrantSigner(privateKeyFrom(options.pem, 'the configured grant signing key'), options)
    if (!options.dataDir) throw new LocalError('config_invalid', 'The grant signer needs a data directory or a PEM key; give one of them.')
    const file = join(options.dataDir, KEY_FILE)
    if (!existsSync(file)) {
      mkdirSync(options.dataDir, { recursive: true, mode: 0o700 })
      const { privateKey } = generateKeyPairSync('ed25519')
      writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' })
      chmodSync(file, 0o600)
    }
    return new GrantSigner(privateKeyFrom(readKeyFile(file), file), options)
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
      .sign(this.#privateKey)
  }

  /**
   * Verifies a grant's signature, audience and issuer. Expiry is checked
   * against `now` so callers decide between `grant_expired` and other refusals.
   */
  async verify(token: string, now: number): Promise<GrantClaims> {
    try {
      const { payload } = await jwtVerify(token, this.#publicKey, {
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
    const jwk = await exportJWK(this.#publicKey)
    return { keys: [{ ...jwk, kid: this.keyId, alg: 'EdDSA', use: 'sig' }] }
  }
}

function readKeyFile(file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (error) {
    throw new LocalError('config_invalid', `Cannot read the grant signing key ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}); check the data directory's permissions.`, { file })
  }
}

function privateKeyFrom(pem: string | Buffer, source: string): KeyObject {
  try {
    return createPrivateKey(pem)
  } catch (error) {
    throw new LocalError('config_invalid', `${source} is not a PEM private key: ${(error as Error).message}.`, { source })
  }
}
