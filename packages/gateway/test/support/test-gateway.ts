import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import { expect } from 'vitest'
import { exportAuditLog } from '../../src/audit/index.js'
import { ApiKeyRepository } from '../../src/identity/index.js'
import { type GatewayHooks, loadGatewayConfig, startGateway } from '../../src/server/index.js'
import { call } from './gateway-process.js'
import { postgresForTests } from './postgres.js'

const postgres = await postgresForTests()

/** The stores every behaviour test runs against; postgres is skipped (with a notice) when unreachable. */
export const BACKENDS = [
  { name: 'sqlite', skip: false },
  { name: 'postgres', skip: postgres.skip },
] as const

export type BackendName = (typeof BACKENDS)[number]['name']

/** One key per person or bot the tests act as, created through the admin API. */
export interface KeySpec {
  kind: 'human' | 'agent' | 'service'
  id: string
  email?: string
  groups?: readonly string[]
  on_behalf_of?: string
}

export interface AuditRow {
  seq: number
  type: string
  requestId: string | null
  actor: { id: string; kind: string; via: string }
  data: Record<string, unknown>
}

/** An in-process gateway on a fresh store, with keys for named principals. */
export interface TestGateway {
  readonly url: string
  readonly adminToken: string
  readonly policyFile: string
  /** Bearer tokens by the names given to `startTestGateway`. */
  readonly tokens: Record<string, string>
  /** Creates one more key through the admin API and returns its token and key id. */
  createKey(spec: KeySpec): Promise<{ token: string; keyId: string }>
  /**
   * Writes a key straight into the store as if `createdBy` had minted it,
   * bypassing the admin API's checks: what a key-creation path that should
   * not exist would leave behind.
   */
  mintKeyInStore(spec: KeySpec, createdBy: string): Promise<string>
  /** Every audit entry after `afterSeq`, oldest first. */
  auditSince(afterSeq?: number): Promise<AuditRow[]>
  /** The sequence number of the newest audit entry (0 when the log is empty). */
  auditHead(): Promise<number>
  /** The whole audit log as `countersign audit export` writes it. */
  exportAudit(format: 'jsonl' | 'csv'): Promise<string>
  /** Stops the gateway, stays down for `downForMs`, and starts it on the same data directory or schema (the URL changes). */
  restart(downForMs?: number): Promise<void>
  /** Stops the gateway, drops the PostgreSQL schema and removes the data directory. */
  close(): Promise<void>
}

export interface TestGatewayOptions {
  backend: BackendName
  /** The policy file's YAML. */
  policy: string
  keys?: Record<string, KeySpec>
  hooks?: GatewayHooks
  /** Turns the request log on and hands each of its lines here. */
  log?: (line: string) => void
}

/**
 * Starts a real gateway in this process (real HTTP on a free port, real
 * SQLite or PostgreSQL), so behaviour tests need no child processes.
 */
export async function startTestGateway(options: TestGatewayOptions): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'countersign-behaviour-'))
  const dataDir = join(dir, 'data')
  const policyFile = join(dir, 'policy.yaml')
  writeFileSync(policyFile, options.policy)
  const schema = options.backend === 'postgres' ? `cs_behaviour_${randomBytes(6).toString('hex')}` : undefined
  // An empty environment, so COUNTERSIGN_* variables of the shell running the tests cannot leak in.
  const loaded = loadGatewayConfig(
    {
      dataDir,
      port: '0',
      policy: policyFile,
      ...(schema !== undefined ? { database: postgres.url, databaseSchema: schema } : {}),
    },
    {},
  )
  const config = options.log !== undefined ? { ...loaded, log: true } : loaded
  const log = options.log
  const hooks: GatewayHooks = { ...options.hooks, ...(log !== undefined ? { logStream: { write: log } } : {}) }

  let gateway = await startGateway(config, hooks)
  const adminToken = gateway.adminToken ?? ''
  expect(adminToken).toMatch(/^cs_/)

  const createKey = async (spec: KeySpec): Promise<{ token: string; keyId: string }> => {
    const response = await call(gateway.url, adminToken, 'POST', '/v1/keys', { ...spec })
    expect(response.status).toBe(201)
    return { token: response.body.token as string, keyId: response.body.id as string }
  }
  const tokens: Record<string, string> = {}
  for (const [name, spec] of Object.entries(options.keys ?? {})) tokens[name] = (await createKey(spec)).token

  const auditSince = async (afterSeq = 0): Promise<AuditRow[]> => {
    const rows = await gateway.store.db
      .selectFrom('audit_entries')
      .select(['seq', 'type', 'request_id', 'actor', 'data'])
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .execute()
    return rows.map((row) => ({
      seq: Number(row.seq),
      type: row.type,
      requestId: row.request_id,
      actor: JSON.parse(row.actor) as AuditRow['actor'],
      data: JSON.parse(row.data) as Record<string, unknown>,
    }))
  }

  const mintKeyInStore = async (spec: KeySpec, createdBy: string): Promise<string> => {
    const key = {
      kind: spec.kind,
      principalId: spec.id,
      displayName: spec.id,
      groups: [],
      createdBy,
      ...(spec.email !== undefined ? { email: spec.email } : {}),
      ...(spec.on_behalf_of !== undefined ? { onBehalfOf: spec.on_behalf_of } : {}),
    }
    const { record, token } = await new ApiKeyRepository(gateway.store.db).create(key, Date.now())
    // The groups are written afterwards, so even groups the repository refuses can be planted.
    await sql`update api_keys set groups = ${JSON.stringify(spec.groups ?? [])} where id = ${record.id}`.execute(gateway.store.db)
    return token
  }

  return {
    get url() {
      return gateway.url
    },
    adminToken,
    policyFile,
    tokens,
    createKey,
    mintKeyInStore,
    auditSince,
    async auditHead() {
      const row = await gateway.store.db
        .selectFrom('audit_entries')
        .select((eb) => eb.fn.max('seq').as('head'))
        .executeTakeFirst()
      return Number(row?.head ?? 0)
    },
    async exportAudit(format) {
      let text = ''
      await exportAuditLog(gateway.store, { format }, (chunk) => {
        text += chunk
      })
      return text
    },
    async restart(downForMs = 0) {
      await gateway.stop()
      await delay(downForMs)
      gateway = await startGateway(config, hooks)
      expect(gateway.adminToken).toBeUndefined()
    },
    async close() {
      await gateway.stop()
      if (schema !== undefined) await postgres.dropSchema(schema)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** The principals the tests act as: two agents, two owners and a security reviewer. */
export const PEOPLE = {
  agent: { kind: 'agent', id: 'etl-bot', on_behalf_of: 'priya@example.com' },
  otherAgent: { kind: 'agent', id: 'report-bot' },
  dana: { kind: 'human', id: 'dana@example.com', email: 'dana@example.com', groups: ['owners'] },
  omar: { kind: 'human', id: 'omar@example.com', email: 'omar@example.com', groups: ['owners'] },
  sofia: { kind: 'human', id: 'sofia@example.com', email: 'sofia@example.com', groups: ['security'] },
} as const satisfies Record<string, KeySpec>

/** Resolves after `ms` milliseconds. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
