import type { JWTPayload } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CountersignError } from '../core/index.js'
import { createGitHubActionsVerifier, type GitHubActionsVerifierOptions } from './github-actions-verifier.js'
import { startTestIssuer } from './test-issuer.js'
import type { TestIssuer } from './test-issuer.js'

const now = Date.UTC(2025, 5, 1, 12, 0, 0)

let github: TestIssuer
beforeAll(async () => {
  github = await startTestIssuer()
})
afterAll(async () => {
  await github.close()
})

function verifier(options: Partial<GitHubActionsVerifierOptions> = {}) {
  return createGitHubActionsVerifier({ issuer: github.issuer, audience: 'countersign', ...options })
}

// The claims GitHub documents for an Actions OIDC token, with our audience.
const deployRun: JWTPayload = {
  jti: 'example-id',
  sub: 'repo:octo-org/octo-repo:environment:prod',
  environment: 'prod',
  aud: 'countersign',
  ref: 'refs/heads/main',
  sha: '7f3e1c0d9b2a4e6f8a1b3c5d7e9f0a2b4c6d8e0f',
  repository: 'octo-org/octo-repo',
  repository_owner: 'octo-org',
  actor_id: '12',
  repository_visibility: 'private',
  repository_id: '74',
  repository_owner_id: '65',
  run_id: '9876543210',
  run_number: '10',
  run_attempt: '2',
  runner_environment: 'github-hosted',
  actor: 'octocat',
  workflow: 'Deploy',
  workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main',
  workflow_sha: '7f3e1c0d9b2a4e6f8a1b3c5d7e9f0a2b4c6d8e0f',
  head_ref: '',
  base_ref: '',
  event_name: 'workflow_dispatch',
  ref_type: 'branch',
  job_workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main',
}

async function refusal(promise: Promise<unknown>): Promise<CountersignError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  )
  expect(error).toBeInstanceOf(CountersignError)
  expect((error as CountersignError).code).toBe('unauthenticated')
  return error as CountersignError
}

describe('createGitHubActionsVerifier', () => {
  it('maps a workflow run to an agent named after its repository and workflow file', async () => {
    const principal = await verifier().verify(await github.sign(deployRun, { now }), now)
    expect(principal).toEqual({
      id: 'github:octo-org/octo-repo:.github/workflows/deploy.yml',
      kind: 'agent',
      displayName: 'octo-org/octo-repo Deploy',
      groups: [],
      claims: {
        repository: 'octo-org/octo-repo',
        repository_id: '74',
        repository_owner: 'octo-org',
        workflow: 'Deploy',
        workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main',
        job_workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main',
        ref: 'refs/heads/main',
        ref_type: 'branch',
        sha: '7f3e1c0d9b2a4e6f8a1b3c5d7e9f0a2b4c6d8e0f',
        actor: 'octocat',
        actor_id: '12',
        run_id: '9876543210',
        run_attempt: '2',
        event_name: 'workflow_dispatch',
        environment: 'prod',
        runner_environment: 'github-hosted',
      },
      onBehalfOf: { id: 'github:octocat', verified: true },
    })
  })

  it('gives two workflows that share a display name different ids', async () => {
    const other = { ...deployRun, workflow_ref: 'octo-org/octo-repo/.github/workflows/deploy-staging.yml@refs/heads/main' }
    const first = await verifier().verify(await github.sign(deployRun, { now }), now)
    const second = await verifier().verify(await github.sign(other, { now }), now)
    expect(first.id).not.toBe(second.id)
  })

  it('acts on behalf of the person a login is mapped to, so that person cannot approve the run', async () => {
    const mapped = await verifier({ people: { OctoCat: 'mona@example.com' } }).verify(await github.sign(deployRun, { now }), now)
    expect(mapped.onBehalfOf).toEqual({ id: 'mona@example.com', verified: true })
    const unmapped = await verifier({ people: { someone: 'else@example.com' } }).verify(await github.sign(deployRun, { now }), now)
    expect(unmapped.onBehalfOf).toEqual({ id: 'github:octocat', verified: true })
  })

  it('accepts a repository on the allow list whatever its letter case', async () => {
    const principal = await verifier({ allowedRepositories: ['Octo-Org/Octo-Repo'] }).verify(
      await github.sign(deployRun, { now }),
      now,
    )
    expect(principal.claims?.repository).toBe('octo-org/octo-repo')
  })

  it('refuses a repository that is not on the allow list', async () => {
    const token = await github.sign({ ...deployRun, repository: 'mallory/fork', workflow_ref: 'mallory/fork/.github/workflows/deploy.yml@refs/heads/main' }, { now })
    const error = await refusal(verifier({ allowedRepositories: ['octo-org/octo-repo'] }).verify(token, now))
    expect(error.message).toBe('Bearer token refused: repository mallory/fork is not allowed.')
  })

  it('refuses a token minted for another audience, such as a cloud provider', async () => {
    const token = await github.sign({ ...deployRun, aud: 'sts.amazonaws.com' }, { now })
    await refusal(verifier().verify(token, now))
  })

  it('refuses an expired token', async () => {
    const token = await github.sign(deployRun, { now: now - 3_600_000 })
    const error = await refusal(verifier().verify(token, now))
    expect(error.message).toBe('Bearer token refused: it has expired.')
  })

  it.each([
    ['repository', { repository: undefined }],
    ['workflow_ref', { workflow_ref: undefined }],
    ['actor', { actor: undefined }],
  ])('refuses a token without %s, which is not a GitHub Actions token', async (_claim, change) => {
    const token = await github.sign({ ...deployRun, ...change }, { now })
    const error = await refusal(verifier().verify(token, now))
    expect(error.message).toBe(
      'Bearer token refused: it lacks the repository, workflow_ref or actor of a GitHub Actions token.',
    )
  })

  it('refuses a workflow_ref that points into another repository', async () => {
    const token = await github.sign(
      { ...deployRun, workflow_ref: 'octo-org/other-repo/.github/workflows/deploy.yml@refs/heads/main' },
      { now },
    )
    await refusal(verifier().verify(token, now))
  })

  it('rejects an empty allow list at construction instead of refusing every run', () => {
    expect(() => verifier({ allowedRepositories: [] })).toThrow(TypeError)
    expect(() => verifier({ audience: '' })).toThrow(TypeError)
  })

  it('trusts GitHub’s public issuer by default', () => {
    expect(createGitHubActionsVerifier({ audience: 'countersign' }).issuer).toBe(
      'https://token.actions.githubusercontent.com',
    )
  })
})
