import { CountersignError } from '../core/index.js'
import { createJwksResolver } from './jwks-resolver.js'
import { DEFAULT_CLOCK_TOLERANCE_SEC, stringClaim, verifyJwt } from './jwt-verifier.js'
import type { JwtVerifier } from './jwt-verifier.js'

export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com'

export interface GitHubActionsVerifierOptions {
  /** The audience the workflow requested (`core.getIDToken(audience)`); required so tokens minted for other services are refused. */
  audience: string
  /** Default `https://token.actions.githubusercontent.com`; GitHub Enterprise Server has its own. */
  issuer?: string
  /** Where the signing keys are; found through OpenID discovery when absent. */
  jwksUrl?: string
  /** `owner/name` of the repositories whose workflows may authenticate, compared case-insensitively; all when absent. */
  allowedRepositories?: string[]
  /** Allowed clock skew; default 30 seconds. */
  clockToleranceSec?: number
  /**
   * GitHub logins mapped to the people they belong to (their ids or emails
   * here). A run started by a mapped login acts on behalf of that person, who
   * then cannot approve it. Compared case-insensitively.
   */
  people?: Record<string, string>
}

// Copied into `principal.claims` for policy (`requester.claims.ref == "refs/heads/main"`)
// and for reviewers, who want to see which run is asking.
const COPIED_CLAIMS = [
  'repository',
  'repository_id',
  'repository_owner',
  'workflow',
  'workflow_ref',
  'job_workflow_ref',
  'ref',
  'ref_type',
  'sha',
  'actor',
  'actor_id',
  'run_id',
  'run_attempt',
  'event_name',
  'environment',
  'runner_environment',
] as const

/**
 * Verifies GitHub Actions OIDC tokens and maps each to an `agent` principal.
 *
 * The principal's id is `github:<repository>:<workflow file>`, e.g.
 * `github:acme/infra:.github/workflows/deploy.yml`, taken from `workflow_ref`.
 * The file path rather than the workflow's display name because names need not
 * be unique within a repository and the id is what requests, idempotency keys
 * and audit entries are attributed to. `repository`, `workflow`, `ref`,
 * `actor`, `sha`, `run_id` and related claims are kept in `claims`.
 *
 * @example
 * const github = createGitHubActionsVerifier({ audience: 'countersign', allowedRepositories: ['acme/infra'] })
 * const principal = await github.verify(process.env.ACTIONS_ID_TOKEN, Date.now())
 */
export function createGitHubActionsVerifier(options: GitHubActionsVerifierOptions): JwtVerifier {
  const issuer = options.issuer ?? GITHUB_ACTIONS_ISSUER
  const { audience } = options
  const clockToleranceSec = options.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC
  if (audience === '') throw new TypeError('GitHub Actions verifier needs an audience')
  if (!(clockToleranceSec >= 0)) throw new TypeError('clockToleranceSec must be zero or more')
  if (options.allowedRepositories?.length === 0) {
    throw new TypeError('allowedRepositories must list at least one repository; leave it out to allow all')
  }
  const allowed = options.allowedRepositories && new Set(options.allowedRepositories.map((repo) => repo.toLowerCase()))
  const keys = createJwksResolver(issuer, options.jwksUrl)
  const people = new Map(Object.entries(options.people ?? {}).map(([login, person]) => [login.toLowerCase(), person]))

  return {
    issuer,
    async verify(token, now) {
      const payload = await verifyJwt(token, keys, { issuer, audience, clockToleranceSec }, now)
      const repository = stringClaim(payload, 'repository')
      const workflowRef = stringClaim(payload, 'workflow_ref')
      const actor = stringClaim(payload, 'actor')
      const workflowFile =
        repository !== undefined && workflowRef !== undefined ? workflowFileOf(repository, workflowRef) : undefined
      if (repository === undefined || workflowFile === undefined || actor === undefined) {
        throw new CountersignError(
          'unauthenticated',
          'Bearer token refused: it lacks the repository, workflow_ref or actor of a GitHub Actions token.',
        )
      }
      if (allowed !== undefined && !allowed.has(repository.toLowerCase())) {
        throw new CountersignError('unauthenticated', `Bearer token refused: repository ${repository} is not allowed.`, {
          repository,
        })
      }
      const claims: Record<string, string> = {}
      for (const name of COPIED_CLAIMS) {
        const value = stringClaim(payload, name)
        if (value !== undefined) claims[name] = value
      }
      return {
        id: `github:${repository}:${workflowFile}`,
        kind: 'agent',
        displayName: `${repository} ${claims.workflow ?? workflowFile}`,
        groups: [],
        claims,
        // The run was started by `actor`, and GitHub's signature proves it, so
        // the link is verified. It names a GitHub login, not one of our
        // identities: it only excludes that person from approving when
        // reviewers are known under the same `github:` id or a mapping says so.
        // Logins can be renamed and reused; `actor_id` in the claims is stable.
        onBehalfOf: { id: people.get(actor.toLowerCase()) ?? `github:${actor}`, verified: true },
      }
    },
  }
}

/** `acme/infra/.github/workflows/deploy.yml@refs/heads/main` → `.github/workflows/deploy.yml`. */
function workflowFileOf(repository: string, workflowRef: string): string | undefined {
  const prefix = `${repository}/`
  if (workflowRef.slice(0, prefix.length).toLowerCase() !== prefix.toLowerCase()) return undefined
  const rest = workflowRef.slice(prefix.length)
  const at = rest.indexOf('@')
  const file = at === -1 ? rest : rest.slice(0, at)
  return file.startsWith('.github/workflows/') && file.length > '.github/workflows/'.length ? file : undefined
}
