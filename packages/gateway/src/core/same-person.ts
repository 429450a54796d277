/** The parts of a principal that name a person. */
export interface Identity {
  id: string
  email?: string
}

/**
 * Two identities are the same person when any id or email matches, compared
 * case-insensitively. Broad on purpose: it is used to refuse (self-approval,
 * a second vote) or to count once, so a false match only makes review
 * stricter, and the same person arriving through Slack and the console is
 * caught even when the channels use different ids.
 */
export function samePerson(a: Identity, b: Identity): boolean {
  const ofA = identifiers(a)
  return identifiers(b).some((id) => ofA.includes(id))
}

function identifiers(identity: Identity): string[] {
  const ids = [identity.id.toLowerCase()]
  if (identity.email !== undefined && identity.email !== '') ids.push(identity.email.toLowerCase())
  return ids
}
