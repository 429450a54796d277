import { spawnSync } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command } from 'commander'
import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { appendAuditEvents, createCheckpointer, loadAuditSigner } from '../audit/index.js'
import type { AuditSigner } from '../audit/index.js'
import { openStore } from '../store/index.js'
import { TEST_POSTGRES_URL, describeEachBackend } from '../store/test-backends.js'
import { registerAuditCommands } from './audit-commands.js'
import { exitOnUsageError } from './client-options.js'

const NOW = Date.parse('2026-01-01T00:00:00Z')

interface Run {
  code: number
  stdout: string
  stderr: string
}

async function countersign(...args: string[]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const program = new Command('countersign')
    .exitOverride(exitOnUsageError)
    .configureOutput({ writeOut: (text) => void (stdout += text), writeErr: (text) => void (stderr += text) })
  registerAuditCommands(program)
  process.exitCode = undefined
  try {
    await program.parseAsync(args, { from: 'user' })
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode
    if (code === undefined) throw error
    return { code, stdout, stderr }
  }
  const code = typeof process.exitCode === 'number' ? process.exitCode : 0
  process.exitCode = undefined
  return { code, stdout, stderr }
}

describe('countersign audit', () => {
  let dataDir: string
  let signer: AuditSigner

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'countersign-cli-audit-'))
    signer = loadAuditSigner({ dataDir })
    const store = await openStore({ dataDir })
    const checkpointer = createCheckpointer(signer, { everyEntries: 10, everyMs: Number.MAX_SAFE_INTEGER })
    for (let i = 0; i < 30; i += 1) {
      await store.db.transaction().execute(async (trx) => {
        await appendAuditEvents(
          trx,
          [{ type: 'grant.expired', actor: { id: 'agent-1', kind: 'agent', via: 'cli' }, requestId: `req-${i}`, data: { jti: `grt_${i}` } }],
          NOW + i * 60_000,
        )
        await checkpointer.maybeCheckpoint(trx, NOW + i * 60_000)
      })
    }
    await store.close()
  })

  afterEach(async () => {
    process.exitCode = undefined
    await rm(dataDir, { recursive: true, force: true })
  })

  async function tamper(statement: ReturnType<typeof sql>): Promise<void> {
    const store = await openStore({ dataDir })
    await statement.execute(store.db)
    await store.close()
  }

  it('verify exits 0 with a one-line summary for an intact log', async () => {
    const run = await countersign('audit', 'verify', '--data-dir', dataDir)
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^audit log intact: 30 entries, 3 checkpoints, head [0-9a-f]{12}\n$/)
    expect(run.stderr).toContain('an independent check should pass --public-key')
  })

  it('verify exits 2, never the 1 of "not intact", for an unknown option or a missing option value', async () => {
    const unknown = await countersign('audit', 'verify', '--data-dir', dataDir, '--quick')
    expect([unknown.code, unknown.stdout]).toEqual([2, ''])
    expect(unknown.stderr).toContain("unknown option '--quick'")
    const missing = await countersign('audit', 'verify', '--data-dir')
    expect([missing.code, missing.stdout]).toEqual([2, ''])
    expect(missing.stderr).toContain("option '--data-dir <dir>' argument missing")
  })

  it('verify exits 1 naming the seq of a modified entry', async () => {
    await tamper(sql`update audit_entries set data = '{"i":99}' where seq = 7`)
    const run = await countersign('audit', 'verify', '--data-dir', dataDir)
    expect(run.code).toBe(1)
    expect(run.stdout).toBe('audit log NOT intact: seq 7 modified: entry 7 was modified: its hash does not match its content\n')
  })

  it('verify in the built countersign binary exits 1 naming the seq of a tampered SQLite data directory', async () => {
    const bin = fileURLToPath(new URL('../../bin/countersign.js', import.meta.url))
    const built = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))
    expect(existsSync(built), `${built} is missing: run npx tsc -b packages/gateway first`).toBe(true)
    await tamper(sql`update audit_entries set type = 'request.cancelled' where seq = 12`)
    const child = spawnSync(process.execPath, [bin, 'audit', 'verify', '--data-dir', dataDir], { encoding: 'utf8' })
    expect(child.stderr).not.toContain('Error [ERR_')
    expect(child.status).toBe(1)
    expect(child.stdout).toBe('audit log NOT intact: seq 12 modified: entry 12 was modified: its hash does not match its content\n')
  })

  it('verify exits 1 naming the first missing seq of a truncated log', async () => {
    await tamper(sql`delete from audit_entries where seq > 25`)
    const run = await countersign('audit', 'verify', '--data-dir', dataDir)
    expect(run.code).toBe(1)
    expect(run.stdout).toContain('seq 26 truncated: audit log truncated after checkpoint at size 30')
  })

  it('verify uses the published public key given as a PEM or JWK file', async () => {
    const pem = join(dataDir, 'audit-public.pem')
    const jwk = join(dataDir, 'audit-public.jwk')
    await writeFile(pem, signer.publicKeyPem)
    await writeFile(jwk, JSON.stringify(signer.publicKeyJwk))
    const withPem = await countersign('audit', 'verify', '--data-dir', dataDir, '--public-key', pem)
    expect(withPem).toMatchObject({ code: 0, stderr: '' })
    expect((await countersign('audit', 'verify', '--data-dir', dataDir, '--public-key', jwk)).code).toBe(0)
  })

  it('verify exits 1 when the checkpoints were not signed by the given public key', async () => {
    const other = join(dataDir, 'other.pem')
    await writeFile(other, generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString())
    const run = await countersign('audit', 'verify', '--data-dir', dataDir, '--public-key', other)
    expect(run.code).toBe(1)
    expect(run.stdout).toContain('seq 10 bad_checkpoint_signature')
  })

  it('verify exits 2 without creating anything when the data directory holds no log', async () => {
    const empty = join(dataDir, 'nothing-here')
    const run = await countersign('audit', 'verify', '--data-dir', empty, '--public-key', join(dataDir, 'x.pem'))
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('Cannot read the public key')
    const noLog = await countersign('audit', 'verify', '--data-dir', empty)
    expect(noLog.code).toBe(2)
    expect(noLog.stderr).toContain('No signing key at')
    expect(existsSync(empty)).toBe(false)
  })

  it('verify exits 2 when the data directory has a key but no log', async () => {
    const keyOnly = join(dataDir, 'key-only')
    loadAuditSigner({ dataDir: keyOnly })
    const run = await countersign('audit', 'verify', '--data-dir', keyOnly)
    expect(run.code).toBe(2)
    expect(run.stderr).toContain(`No audit log at ${join(keyOnly, 'countersign.db')}`)
  })

  it('verify with --database exits 6 naming the unreachable URL with its password masked', async () => {
    const run = await countersign('audit', 'verify', '--database', 'postgres://audit:hunter2@127.0.0.1:1/countersign', '--data-dir', dataDir)
    expect(run.code).toBe(6)
    expect(run.stderr).toContain('postgres://audit:****@127.0.0.1:1/countersign')
    expect(run.stderr).not.toContain('hunter2')
  })

  it('verify with --database requires --public-key when there is no local signing key', async () => {
    const run = await countersign('audit', 'verify', '--database', 'postgres://127.0.0.1:1/x', '--data-dir', join(dataDir, 'elsewhere'))
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('pass --public-key')
  })

  it('export writes JSON lines to stdout', async () => {
    const run = await countersign('audit', 'export', '--format', 'jsonl', '--data-dir', dataDir)
    expect(run.code).toBe(0)
    const lines = run.stdout.trimEnd().split('\n')
    expect(lines).toHaveLength(30)
    expect(JSON.parse(lines[0]!)).toMatchObject({ seq: 1, type: 'grant.expired', request_id: 'req-0', data: { jti: 'grt_0' } })
  })

  it('export writes CSV from --since on', async () => {
    const run = await countersign('audit', 'export', '--format', 'csv', '--since', '2026-01-01T00:28:00Z', '--data-dir', dataDir)
    expect(run.code).toBe(0)
    const rows = run.stdout.split('\r\n')
    expect(rows[0]).toMatch(/^seq,ts,time,/)
    expect(rows.slice(1, -1).map((row) => row.split(',')[0])).toEqual(['29', '30'])
  })

  it('export exits 2 for an unknown format or a since that is not a time', async () => {
    const format = await countersign('audit', 'export', '--format', 'xml', '--data-dir', dataDir)
    expect(format.code).toBe(2)
    expect(format.stderr).toContain('--format must be jsonl or csv')
    const since = await countersign('audit', 'export', '--format', 'csv', '--since', 'yesterday', '--data-dir', dataDir)
    expect(since.code).toBe(2)
    expect(since.stderr).toContain('--since must be an ISO 8601 date or time')
  })
})

describeEachBackend('countersign audit verify on the store a gateway uses', (backend) => {
  it('exits 0 for the intact log and 1 naming the seq once an entry is deleted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'countersign-cli-backend-'))
    const schema = `cs_test_${randomBytes(6).toString('hex')}`
    const location =
      backend.name === 'sqlite' ? ['--data-dir', dir] : ['--database', TEST_POSTGRES_URL, '--database-schema', schema]
    const store = await openStore(backend.name === 'sqlite' ? { dataDir: dir } : { databaseUrl: TEST_POSTGRES_URL, schema })
    try {
      const signer = loadAuditSigner({ dataDir: dir })
      const keyFile = join(dir, 'audit-public.pem')
      await writeFile(keyFile, signer.publicKeyPem)
      const checkpointer = createCheckpointer(signer, { everyEntries: 5 })
      await store.db.transaction().execute(async (trx) => {
        await appendAuditEvents(
          trx,
          Array.from({ length: 12 }, (_, i) => ({ type: 'grant.expired' as const, actor: { id: 'dana@example.com', kind: 'human' as const, via: 'console' }, data: { jti: `grt_${i}` } })),
          NOW,
        )
        await checkpointer.maybeCheckpoint(trx, NOW)
      })

      const intact = await countersign('audit', 'verify', ...location, '--public-key', keyFile)
      expect(intact.code).toBe(0)
      expect(intact.stdout).toMatch(/^audit log intact: 12 entries, 1 checkpoint, head [0-9a-f]{12}\n$/)

      await sql`delete from audit_entries where seq = 4`.execute(store.db)
      const tampered = await countersign('audit', 'verify', ...location, '--public-key', keyFile)
      expect(tampered).toMatchObject({ code: 1, stdout: 'audit log NOT intact: seq 4 missing: entry 4 is missing: the log jumps from seq 3 to 5\n' })
    } finally {
      if (backend.name === 'postgres') await sql`drop schema ${sql.id(schema)} cascade`.execute(store.db)
      await store.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
