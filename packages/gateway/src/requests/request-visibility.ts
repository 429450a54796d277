import type { Principal, RequestState } from '../core/index.js'
import { ADMIN_GROUP } from '../identity/index.js'

/** Humans review and operators administer, so they see every request (redacted). */
export function canSeeAll(viewer: Principal): boolean {
  return viewer.kind === 'human' || viewer.groups.includes(ADMIN_GROUP)
}

/** Whether `viewer` may see the request: everyone that {@link canSeeAll} lets see all, agents and services only their own. */
export function canSee(viewer: Principal, state: RequestState): boolean {
  return canSeeAll(viewer) || viewer.id === state.requester.id
}
