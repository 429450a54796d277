import { errors, jwtVerify } from 'jose'
import type { JWTPayload, JWTVerifyGetKey } from 'jose'
import { CountersignError } from '../core/index.js'
import type { Principal } from '../core/index.js'

/** Verifies bearer JWTs from one issuer and turns them into principals. */
export interface JwtVerifier {
  /** The exact `iss` this verifier accepts; the authenticator routes tokens by it. */
  readonly issuer: string
  /** Resolves to the token's principal, or rejects with `unauthenticated`. */
  verify(token: string, now: number): Promise<Principal>
}

/**
 * Only asymmetric algorithms: an issuer's JWKS is public, so accepting an HMAC
 * algorithm would let anyone who can read it mint tokens. `none` is never
 * accepted by `jwtVerify` in the first place.
 */
export const ASYMMETRIC_JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]

export const DEFAULT_CLOCK_TOLERANCE_SEC = 30

export interface JwtCheck {
  issuer: string
  audience: string | string[]
  clockToleranceSec: number
}

/**
 * Verifies a JWT's signature, issuer, audience and lifetime at `now`, and
 * rejects every failure, whatever its cause (a bad token, an unreachable
 * identity provider, a bug), with `unauthenticated`: nothing gets through by
 * way of an unexpected error.
 */
export async function verifyJwt(token: string, keys: JWTVerifyGetKey, check: JwtCheck, now: number): Promise<JWTPayload> {
  try {
    const { payload } = await jwtVerify(token, keys, {
      issuer: check.issuer,
      audience: check.audience,
      clockTolerance: check.clockToleranceSec,
      currentDate: new Date(now),
      algorithms: ASYMMETRIC_JWT_ALGORITHMS,
      // jose checks `exp` only when present; a token that never expires is refused.
      requiredClaims: ['exp', 'sub'],
    })
    return payload
  } catch (error) {
    throw new CountersignError('unauthenticated', `Bearer token refused: ${refusalReason(error)}.`, {
      issuer: check.issuer,
    })
  }
}

function refusalReason(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'it has expired'
  if (error instanceof errors.JWTClaimValidationFailed) return `claim "${error.claim}" ${error.reason === 'missing' ? 'is missing' : 'is not accepted'}`
  if (error instanceof errors.JWSSignatureVerificationFailed || error instanceof errors.JWKSNoMatchingKey) {
    return "its signature does not verify with the issuer's keys"
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return 'its signing algorithm is not accepted'
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'it is not a well-formed signed JWT'
  return "the issuer's signing keys could not be fetched or used"
}

/** Reads a string claim, or `undefined` when it is absent or not a non-empty string. */
export function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const value = payload[name]
  return typeof value === 'string' && value !== '' ? value : undefined
}
