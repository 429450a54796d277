import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, describe, expect, it } from 'vitest'
import { call, freePort, runCli, startGatewayProcess } from './support/gateway-process.js'

const dir = mkdtempSync(join(tmpdir(), 'countersign-lock-'))
const LOCK = 'countersign.lock'

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

/** A pid that is certainly not running: a child that has already exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
  return Number(child.stdout)
}

function auditRows(dataDir: string): Array<{ type: string; actor: string; data: string }> {
  const db = new DatabaseSync(join(dataDir, 'countersign.db'), { readOnly: true })
  try {
    return db.prepare('select type, actor, data from audit_entries order by seq').all() as Array<{ type: string; actor: string; data: string }>
  } finally {
    db.close()
  }
}

describe('one process per data directory', () => {
  it('refuses a second serve on the same data directory, naming the pid that holds it, and removes the lock on shutdown', async () => {
    const dataDir = join(dir, 'shared')
    const first = await startGatewayProcess(['--data-dir', dataDir, '--port', String(await freePort())], {}, dir)
    try {
      const holder = Number(readFileSync(join(dataDir, LOCK), 'utf8'))
      const second = await runCli(['serve', '--data-dir', dataDir, '--port', String(await freePort())], {}, dir)
      expect(second.code).toBe(1)
      expect(second.stderr).toContain(`The data directory ${dataDir} is in use by another countersign process (pid ${holder}); stop it first, or pass another --data-dir.`)
      expect(second.stderr).not.toContain('listening')
      // The first gateway is untouched and still holds the directory.
      expect((await call(first.url, undefined, 'GET', '/healthz')).status).toBe(200)
      expect(Number(readFileSync(join(dataDir, LOCK), 'utf8'))).toBe(holder)
    } finally {
      expect(await first.stop()).toBe(0)
    }
    expect(existsSync(join(dataDir, LOCK))).toBe(false)
  })

  it('takes over a lock left by a process that no longer runs', async () => {
    const dataDir = join(dir, 'stale')
    const first = await startGatewayProcess(['--data-dir', dataDir, '--port', String(await freePort())], {}, dir)
    await first.stop()
    const dead = deadPid()
    writeFileSync(join(dataDir, LOCK), `${dead}\n`)
    const again = await startGatewayProcess(['--data-dir', dataDir, '--port', String(await freePort())], {}, dir)
    try {
      expect(Number(readFileSync(join(dataDir, LOCK), 'utf8'))).not.toBe(dead)
    } finally {
      await again.stop()
    }
  })

  it('explains a busy port with the fix instead of a raw EADDRINUSE, and leaves no lock behind', async () => {
    const port = await freePort()
    const squatter: Server = createServer()
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve))
    try {
      const dataDir = join(dir, 'busy-port')
      const result = await runCli(['serve', '--data-dir', dataDir, '--port', String(port)], {}, dir)
      expect(result.code).toBe(1)
      expect(result.stderr).toContain(`port ${port} is in use on 127.0.0.1; stop the other server or pass --port`)
      expect(result.stderr).not.toContain('EADDRINUSE')
      expect(existsSync(join(dataDir, LOCK))).toBe(false)
    } finally {
      await new Promise((resolve) => squatter.close(resolve))
    }
  })
})

describe('countersign keys create --admin (recovering a lost admin key)', () => {
  it('refuses while a gateway holds the data directory, then creates a working admin key locally, audited as the local operator', async () => {
    const dataDir = join(dir, 'recover')
    const port = await freePort()
    let gateway = await startGatewayProcess(['--data-dir', dataDir, '--port', String(port)], {}, dir)
    const refused = await runCli(['keys', 'create', '--admin', '--data-dir', dataDir], {}, dir)
    expect(refused.code).toBe(2)
    expect(refused.stdout).toBe('')
    expect(refused.stderr).toContain(`is in use by another countersign process (pid `)
    await gateway.stop()
    const before = auditRows(dataDir).length

    const created = await runCli(['keys', 'create', '--admin', '--data-dir', dataDir], {}, dir)
    expect(created.code).toBe(0)
    const token = created.stdout.trim()
    expect(token).toMatch(/^cs_/)
    const rows = auditRows(dataDir).slice(before)
    expect(rows.map((row) => [row.type, JSON.parse(row.actor)])).toEqual([['key.created', { id: 'local-operator', kind: 'human', via: 'local' }]])
    expect(existsSync(join(dataDir, LOCK))).toBe(false)

    gateway = await startGatewayProcess(['--data-dir', dataDir, '--port', String(port)], {}, dir)
    try {
      expect(gateway.adminToken).toBeUndefined()
      expect((await call(gateway.url, token, 'GET', '/v1/keys')).status).toBe(200)
    } finally {
      await gateway.stop()
    }
    const verified = await runCli(['audit', 'verify', '--data-dir', dataDir], {}, dir)
    expect(verified.code).toBe(0)
  })

  it('refuses a data directory without a store instead of minting a key for a new one', async () => {
    const result = await runCli(['keys', 'create', '--admin', '--data-dir', join(dir, 'typo')], {}, dir)
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('No Countersign store at')
    expect(existsSync(join(dir, 'typo'))).toBe(false)
  })
})
