import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { LocalError, type Principal, type RequestState } from '../core/index.js'
import { GrantSigner } from '../grants/index.js'
import { ADMIN_GROUP, ApiKeyRepository, Authenticator, createGitHubActionsVerifier, createOidcVerifier, type JwtVerifier } from '../identity/index.js'
import { type CompiledPolicy, watchPolicy } from '../policy/index.js'
import { ApprovalService, type ChangeListener, ReviewScheduler } from '../requests/index.js'
import { openStore, type Store } from '../store/index.js'
import { buildApp } from './app.js'
import { createAuditAppender, type GatewayAudit } from './audit-appender.js'
import { lockDataDir } from './data-dir-lock.js'
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
  /** Receives the request log's lines instead of standard output (when logging is on). */
  logStream?: { write(line: string): void }
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
  // Reloads are audited once the store is open; a failed audit write is logged, never left to crash the process.
  let reloadAudit: GatewayAudit | undefined
  const reloadNotAudited = (error: unknown): void => logError('auditing a policy reload failed; the reload stands', error)
  const watcher = watchPolicy(policyFile, {
    onLoad(policy: CompiledPolicy) {
      hooks.onPolicy?.({ ok: true, sha256: policy.sha256 })
      reloadAudit?.record({ type: 'policy.reloaded', data: { file: policyFile, sha256: policy.sha256 } }, now()).catch(reloadNotAudited)
    },
    onError(error) {
      hooks.onPolicy?.({ ok: false, error })
      reloadAudit?.record({ type: 'policy.reload_failed', data: { file: policyFile, message: error.message, kept_sha256: watcher.current().sha256 } }, now()).catch(reloadNotAudited)
    },
  })
  const cleanup: Array<() => Promise<void> | void> = [() => watcher.close()]
  try {
    // One process per SQLite store; PostgreSQL replicas share theirs by design (LISTEN/NOTIFY wakes them all).
    if (config.databaseUrl === undefined) {
      const lock = lockDataDir(config.dataDir)
      cleanup.push(() => lock.release())
    }
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
    await warnOfNonHumanOperators(keys)
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
        store,
        onError: (error) => logError('the change feed lost its connection; reconnecting', error),
      })
      await feed.start()
      const started = feed
      cleanup.push(() => started.close())
    }
    // Built in the order they depend on each other: the scheduler and the metrics hear of changes before
    // the service that makes them exists; the service is handed to them once it does.
    const scheduler = new ReviewScheduler({ store, now, onError: (error) => logError('the scheduler failed', error) })
    const metrics = new GatewayMetrics()
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
    metrics.countPendingWith(() => service.countPending())
    const keyAdmin = new KeyAdmin({ store, keys, audit, now })
    const adminToken = await bootstrapAdminKey(store, keyAdmin)

    const shutdown = new AbortController()
    const app = buildApp({
      service, authenticator, keys, keyAdmin, audit, grants, events, metrics, store, now,
      bodyLimit: config.bodyLimit, publicUrl: config.publicUrl, logger: config.log, trustProxy: config.trustProxy, shutdown: shutdown.signal,
      ...(hooks.logStream !== undefined ? { logStream: hooks.logStream } : {}),
    })
    await listen(app, config.host, config.port)
    scheduler.start(service)
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

/** Listens, turning the usual reasons a port cannot be had into a message that says what to do. */
async function listen(app: FastifyInstance, host: string, port: number): Promise<void> {
  try {
    await app.listen({ host, port })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE') {
      throw new LocalError('config_invalid', `port ${port} is in use on ${host}; stop the other server or pass --port (or set port: in the config).`, { host, port })
    }
    if (code === 'EACCES') {
      throw new LocalError('config_invalid', `not allowed to listen on port ${port} (ports below 1024 need privileges); pass --port with a higher port.`, { host, port })
    }
    if (code === 'EADDRNOTAVAIL') {
      throw new LocalError('config_invalid', `${host} is not an address of this machine; pass --host 127.0.0.1 or one of its addresses.`, { host, port })
    }
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

/**
 * Operator rights belong to humans only. A store written before that rule may
 * still hold a non-human key in the admin group: it is not loaded (every call
 * with it is refused, see Authenticator), and the start says so and how to
 * clean up.
 */
async function warnOfNonHumanOperators(keys: ApiKeyRepository): Promise<void> {
  const offenders = await keys.nonHumanOperators()
  if (offenders.length === 0) return
  const list = offenders.map((key) => `${key.prefix} (${key.kind} ${key.principalId}, created by ${key.createdBy})`).join(', ')
  console.error(
    `countersign: not loading keys that give a non-human operator rights (${ADMIN_GROUP}): ${list}; every call with them is refused. Revoke them with \`countersign keys revoke <id>\` and give the operator a human key.`,
  )
}

/** On first start, creates the admin key (a human's: the operator's) and returns its token; later starts return nothing. */
async function bootstrapAdminKey(store: Store, keyAdmin: KeyAdmin): Promise<string | undefined> {
  const rows = await store.db.selectFrom('api_keys').select('groups').where('revoked_at', 'is', null).execute()
  if (rows.some((row) => (JSON.parse(row.groups) as string[]).includes(ADMIN_GROUP))) return undefined
  const system = { id: 'countersign', kind: 'service' as const, displayName: 'Countersign', groups: [] }
  const { token } = await mintAdminKey(keyAdmin, system, 'bootstrap')
  return token
}

/** Creates a key in the operator (admin) group, a human's as operator rights are, audited as created by `by`. */
export function mintAdminKey(keyAdmin: KeyAdmin, by: Principal, via: string): ReturnType<KeyAdmin['create']> {
  return keyAdmin.create(
    by,
    { kind: 'human', principalId: 'admin', displayName: 'Administrator', groups: [ADMIN_GROUP], createdBy: by.id },
    via,
  )
}
