import type { PrincipalKind } from '../core/index.js'

/** Members of this group manage API keys and, as operators, may see every request. */
export const ADMIN_GROUP = 'countersign:admins'

/**
 * Why a principal of this kind may not carry these groups, or undefined when
 * it may. Operator rights (minting keys) belong to humans only: an agent that
 * could mint keys could mint a reviewer and approve its own requests.
 */
export function operatorRightsProblem(kind: PrincipalKind, groups: readonly string[]): string | undefined {
  if (kind === 'human' || !groups.includes(ADMIN_GROUP)) return undefined
  return `operator rights (${ADMIN_GROUP}) belong to humans only, and this is a${kind === 'agent' ? 'n' : ''} ${kind}`
}
