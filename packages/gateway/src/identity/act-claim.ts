import type { JWTPayload } from 'jose'
import { CountersignError } from '../core/index.js'

// Delegation chains longer than this are not something a real token exchange
// produces; refusing them keeps a hostile token from making us walk forever.
const MAX_ACT_DEPTH = 8

/** Who is acting, according to a verified token's RFC 8693 `act` claim. */
export interface ActClaim {
  /** The current actor: the outermost `act.sub`. */
  actor: string
  /** Earlier actors in the delegation chain, most recent first. */
  priorActors: string[]
}

/**
 * Reads the RFC 8693 (OAuth 2.0 Token Exchange, section 4.1) `act` claim of a
 * token whose signature was already verified. In such a token `sub` is the
 * party being acted for and `act.sub` the party actually acting, so the issuer
 * vouches for the delegation.
 *
 * Returns `undefined` when there is no `act` claim. A malformed one is refused
 * rather than ignored: ignoring it would turn an agent's token into the
 * human's own identity.
 */
export function parseActClaim(payload: JWTPayload): ActClaim | undefined {
  if (payload.act === undefined) return undefined
  const actors: string[] = []
  let current: unknown = payload.act
  while (current !== undefined) {
    if (typeof current !== 'object' || current === null || actors.length === MAX_ACT_DEPTH) throw malformed()
    const { sub, act } = current as Record<string, unknown>
    if (typeof sub !== 'string' || sub === '') throw malformed()
    actors.push(sub)
    current = act
  }
  const [actor, ...priorActors] = actors
  if (actor === undefined) throw malformed()
  return { actor, priorActors }
}

function malformed(): CountersignError {
  return new CountersignError('unauthenticated', 'Bearer token refused: its "act" claim is malformed.')
}
