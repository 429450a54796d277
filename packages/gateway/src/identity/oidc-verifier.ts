import type { JWTPayload } from 'jose'
import type { Principal, PrincipalKind } from '../core/index.js'
import { parseActClaim } from './act-claim.js'
import { createJwksResolver } from './jwks-resolver.js'
import { DEFAULT_CLOCK_TOLERANCE_SEC, stringClaim, verifyJwt } from './jwt-verifier.js'
import type { JwtVerifier } from './jwt-verifier.js'

export interface OidcVerifierOptions {
  /** The identity provider's issuer, exactly as it appears in `iss`. */
  issuer: string
  /** The audience (client id or API identifier) tokens must be issued for. */
  audience: string | string[]
  /** Where the signing keys are; found through OpenID discovery when absent. */
  jwksUrl?: string
  /** The claim holding group names; default `groups`. */
  groupsClaim?: string
  /** The claim holding the email address; default `email`. */
  emailClaim?: string
  /** What the token's subject is; default `human`. */
  kind?: PrincipalKind
  /** Allowed clock skew for `exp`, `nbf` and `iat`; default 30 seconds. */
  clockToleranceSec?: number
}

/**
 * Verifies ID or access tokens from an OpenID Connect provider (Okta, Entra ID,
 * Google, Keycloak) and maps them to principals.
 *
 * The principal's id is the lower-cased email (so it matches the email-based
 * ids used in policy groups and reviewer mappings) unless the provider says the
 * email is unverified (`email_verified: false`) or there is none; then it is
 * `sub`. Groups come from `groupsClaim`; `authTime` from `auth_time`, for
 * `fresh_auth` rules.
 *
 * A token carrying an RFC 8693 `act` claim was issued to an agent acting for
 * the subject: the principal is then the agent (`act.sub`, kind `agent`, no
 * groups and no sign-in time of its own) with a verified `onBehalfOf` naming
 * the subject, never the subject itself.
 *
 * @example
 * const okta = createOidcVerifier({ issuer: 'https://acme.okta.com', audience: 'countersign' })
 * const principal = await okta.verify(idToken, Date.now())
 */
export function createOidcVerifier(options: OidcVerifierOptions): JwtVerifier {
  const { issuer, audience } = options
  const groupsClaim = options.groupsClaim ?? 'groups'
  const emailClaim = options.emailClaim ?? 'email'
  const kind = options.kind ?? 'human'
  const clockToleranceSec = options.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC
  if (issuer === '') throw new TypeError('OIDC verifier needs an issuer')
  if (audience.length === 0) throw new TypeError('OIDC verifier needs an audience')
  if (!(clockToleranceSec >= 0)) throw new TypeError('clockToleranceSec must be zero or more')
  const keys = createJwksResolver(issuer, options.jwksUrl)

  return {
    issuer,
    async verify(token, now) {
      const payload = await verifyJwt(token, keys, { issuer, audience, clockToleranceSec }, now)
      const subject = subjectPrincipal(payload, { kind, groupsClaim, emailClaim })
      const act = parseActClaim(payload)
      if (act === undefined) return subject
      return {
        id: act.actor,
        kind: 'agent',
        displayName: act.actor,
        groups: [],
        onBehalfOf: { id: subject.id, verified: true },
        claims: { ...subject.claims, priorActors: act.priorActors },
      }
    },
  }
}

function subjectPrincipal(
  payload: JWTPayload,
  mapping: { kind: PrincipalKind; groupsClaim: string; emailClaim: string },
): Principal {
  // `sub` is a required claim in verifyJwt.
  const sub = stringClaim(payload, 'sub') ?? ''
  const claimedEmail = stringClaim(payload, mapping.emailClaim)?.toLowerCase()
  // An unverified address may be one the user typed in themselves; taking it as
  // the identity would let them pose as whoever owns it.
  const email = payload.email_verified === false ? undefined : claimedEmail
  const id = email ?? sub
  const principal: Principal = {
    id,
    kind: mapping.kind,
    displayName: stringClaim(payload, 'name') ?? id,
    groups: groupsFrom(payload[mapping.groupsClaim]),
    claims: { iss: payload.iss, sub },
  }
  if (email !== undefined) principal.email = email
  if (typeof payload.auth_time === 'number' && Number.isFinite(payload.auth_time)) {
    principal.authTime = payload.auth_time * 1000
  }
  return principal
}

/** Providers send groups as an array of names or, for a single group, a bare string. */
function groupsFrom(value: unknown): string[] {
  if (typeof value === 'string') return value === '' ? [] : [value]
  if (!Array.isArray(value)) return []
  return value.filter((group): group is string => typeof group === 'string' && group !== '')
}
