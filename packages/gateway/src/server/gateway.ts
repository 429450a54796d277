import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { LocalError, type RequestState } from '../core/index.js'
import { GrantSigner } from '../grants/index.js'
import { ADMIN_GROUP, ApiKeyRepository, Authenticator, createGitHubActionsVerifier, createOidcVerifier, type JwtVerifier } from '../identity/index.js'
import { type CompiledPolicy, watchPolicy } from '../policy/index.js'
import { ApprovalService, type ChangeListener, ReviewScheduler } from '../requests/index.js'
import { openStore, type Store } from '../store/index.js'
import { buildApp } from './app.js'
import { createAuditAppender, type GatewayAudit } from './audit-appender.js'
import { checkGatewayConfig, type GatewayConfig } from './gateway-config.js'
import { KeyAdmin } from './key-admin.js'
import { GatewayMetrics } from './metrics.js'
import { PostgresChangeFeed } from './postgres-change-feed.js'
import { RequestEvents } from './request-events.js'

/** A running gateway. */
export interface Gateway {
  url: string
  store: Store
  /** The admin key, present only on the very first start (it is never shown again). */
  adminToken?: string
  policyFile: string
  app: FastifyInstance
  /** Stops accepting, finishes in-flight calls, releases waiters and closes the store. */
  stop(): Promise<void>
}

export interface GatewayHooks {
  /** Told about policy reloads and reload failures. */
  onPolicy?: (event: { ok: true; sha256: string } | { ok: false; error: LocalError }) => void
  now?: () => number
}

/** The example policy shipped with this installation (in the package, or at the repository root). */
export function examplePolicyPath(): string | undefined {
  return ['../../examples/policy.yaml', '../../../../examples/policy.yaml']
    .map((p) => fileURLToPath(new URL(p, import.meta.url)))
    .find((file) => existsSync(file))
}

/** The policy file in use: the configured one, or the data directory's, copied from the example on first start. */
function resolvePolicyFile(config: GatewayConfig): string {
  if (config.policyFile !== undefined) return config.policyFile
  const file = join(config.dataDir, 'policy.yaml')
  if (!existsSync(file)) {
    const example = examplePolicyPath()
    if (example === undefined) throw new LocalError('config_invalid', 'The example policy is missing from this installation; pass --policy FILE.')
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 })
    copyFileSync(example, file)
  }
  return file
}

/**
 * Starts a gateway: store, policy (hot-reloaded), identity, scheduler, HTTP.
 * An invalid configuration or grant key refuses to start (`config_invalid`),
 * as does an invalid policy (`policy_invalid`, both `LocalError`s) and a store
 * that cannot be reached (`store_unavailable`).
 */
export async function startGateway(config: GatewayConfig, hooks: GatewayHooks = {}): Promise<Gateway> {
  checkGatewayConfig(config)
  const now = hooks.now ?? Date.now
  const policyFile = resolvePolicyFile(config)
  // The policy is read first: an invalid one refuses the start before anything touches the store.
  let reloadAudit: GatewayAudit | undefined
  const watcher = watchPolicy(policyFile, {
    onLoad(policy: CompiledPolicy) {
      hooks.onPolicy?.({ ok: true, sha256: policy.sha256 })
      void reloadAudit?.record('policy.reloaded', { file: policyFile, sha256: policy.sha256 }, now())
    },
    onError(error) {
      hooks.onPolicy?.({ ok: false, error })
      void reloadAudit?.record('policy.reload_failed', { file: policyFile, message: error.message, kept_sha256: watcher.current().sha256 }, now())
    },
  })
  const cleanup: Array<() => Promise<void> | void> = [() => watcher.close()]
  try {
    const store = await openStore(
      config.databaseUrl !== undefined
        ? { databaseUrl: config.databaseUrl, ...(config.databaseSchema !== undefined ? { schema: config.databaseSchema } : {}) }
        : { dataDir: config.dataDir },
    )
    cleanup.push(() => store.close())
    const audit = createAuditAppender({
      store,
      dataDir: config.dataDir,
      everyEntries: config.checkpointEvery,
      everyMs: config.checkpointIntervalMs,
    })
    reloadAudit = audit

    const grants = GrantSigner.load({ dataDir: config.dataDir, audience: config.grantAudience, issuer: config.publicUrl })
    const keys = new ApiKeyRepository(store.db)
    const verifiers: JwtVerifier[] = config.oidc.map((oidc) =>
      createOidcVerifier({
        issuer: oidc.issuer,
        audience: oidc.audience,
        ...(oidc.jwks_url !== undefined ? { jwksUrl: oidc.jwks_url } : {}),
        ...(oidc.groups_claim !== undefined ? { groupsClaim: oidc.groups_claim } : {}),
        ...(oidc.email_claim !== undefined ? { emailClaim: oidc.email_claim } : {}),
      }),
    )
    if (config.githubActions) {
      verifiers.push(createGitHubActionsVerifier({
        audience: config.githubActions.audience,
        ...(config.githubActions.allowed_repositories ? { allowedRepositories: config.githubActions.allowed_repositories } : {}),
        ...(config.githubActions.people ? { people: config.githubActions.people } : {}),
      }))
    }
    const authenticator = new Authenticator({ apiKeys: keys, jwtVerifiers: verifiers })
    const events = new RequestEvents()
    let feed: PostgresChangeFeed | undefined
    if (config.databaseUrl !== undefined) {
      const scope = config.databaseSchema ?? (await currentSchema(store))
      feed = new PostgresChangeFeed({
        databaseUrl: config.databaseUrl,
        scope,
        events,
        onError: (error) => logError('the change feed lost its connection; reconnecting', error),
      })
      await feed.start()
      const started = feed
      cleanup.push(() => started.close())
    }
    // The listener only fires once requests flow, after the scheduler below exists.
    const metrics: GatewayMetrics = new GatewayMetrics(() => service.countPending())
    const listener: ChangeListener = {
      requestChanged({ requestId, seq, before, after, effect }) {
        events.publish({ requestId, seq })
        feed?.announce(store, { requestId, seq }).catch((error: unknown) => logError('announcing a change to other replicas failed', error))
        if (effect !== undefined) metrics.requests.inc({ effect })
        if (after.deadlineAt !== undefined && after.status === 'pending') scheduler.deadlineAdded(after.deadlineAt)
        if (after.escalateAt !== undefined && after.escalatedAt === undefined && after.status === 'pending') scheduler.deadlineAdded(after.escalateAt)
        if (after.grant?.status === 'issued') scheduler.deadlineAdded(after.grant.expiresAt)
        recordMetrics(metrics, before, after)
      },
    }
    const service = new ApprovalService({ store, policy: () => watcher.current(), grants, audit, listener, now, grantTtlMs: config.grantTtlMs })
    const keyAdmin = new KeyAdmin({ store, keys, audit, now })
    const adminToken = await bootstrapAdminKey(store, keyAdmin)

    const scheduler = new ReviewScheduler({ store, service, now, onError: (error) => logError('the scheduler failed', error) })
    const shutdown = new AbortController()
    const app = buildApp({
      service, authenticator, keys, keyAdmin, audit, grants, events, metrics, store, now,
      bodyLimit: config.bodyLimit, publicUrl: config.publicUrl, logger: config.log, trustProxy: config.trustProxy, shutdown: shutdown.signal,
    })
    await app.listen({ host: config.host, port: config.port })
    scheduler.start()
    // The time rule of checkpoints must fire even when nothing is being appended.
    const checkpointTimer = setInterval(() => {
      audit.checkpointNow(now()).catch((error: unknown) => logError('signing a checkpoint failed', error))
    }, Math.max(1000, config.checkpointIntervalMs))
    checkpointTimer.unref()
    const address = app.server.address()
    const port = typeof address === 'object' && address ? address.port : config.port
    const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`
    let stopping: Promise<void> | undefined
    return {
      url,
      store,
      ...(adminToken !== undefined ? { adminToken } : {}),
      policyFile,
      app,
      stop() {
        stopping ??= (async () => {
          shutdown.abort()
          clearInterval(checkpointTimer)
          await app.close()
          await scheduler.stop()
          await audit.checkpointNow(now())
          for (const step of cleanup.reverse()) await step()
        })()
        return stopping
      },
    }
  } catch (error) {
    for (const step of cleanup.reverse()) await step()
    throw error
  }
}

/** Background failures go to stderr whether or not request logging is on. */
function logError(what: string, error: unknown): void {
  console.error(`countersign: ${what}: ${error instanceof Error ? error.message : String(error)}`)
}

async function currentSchema(store: Store): Promise<string> {
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(store.db)
  return rows[0]?.schema ?? 'public'
}

function recordMetrics(metrics: GatewayMetrics, before: RequestState | undefined, after: RequestState): void {
  const newVotes = after.votes.length - (before?.votes.length ?? 0)
  for (const vote of after.votes.slice(after.votes.length - Math.max(0, newVotes))) metrics.votes.inc({ decision: vote.decision })
  if (before?.status === 'pending' && after.status !== 'pending') {
    metrics.timeToDecision.observe({ outcome: after.status }, ((after.decidedAt ?? after.updatedAt) - after.createdAt) / 1000)
  }
  if (before?.grant?.status === 'issued' && after.grant?.status === 'redeemed') metrics.grantsRedeemed.inc()
}

/** On first start, creates the admin key and returns its token; later starts return nothing. */
async function bootstrapAdminKey(store: Store, keyAdmin: KeyAdmin): Promise<string | undefined> {
  const rows = await store.db.selectFrom('api_keys').select('groups').where('revoked_at', 'is', null).execute()
  if (rows.some((row) => (JSON.parse(row.groups) as string[]).includes(ADMIN_GROUP))) return undefined
  const system = { id: 'countersign', kind: 'service' as const, displayName: 'Countersign', groups: [] }
  const { token } = await keyAdmin.create(
    system,
    { kind: 'service', principalId: 'admin', displayName: 'Administrator', groups: [ADMIN_GROUP], createdBy: 'countersign' },
    'bootstrap',
  )
  return token
}
