import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { call, freePort, type GatewayProcess, runCli, spawnCli, startGatewayProcess } from './support/gateway-process.js'

const POLICY = `version: 1
defaults: { effect: deny }
rules:
  - name: deploys-need-a-reviewer
    match: { action: deploy.app }
    effect: review
    review: { approvers: [rita@example.com], require_reason: true }
`

const dir = mkdtempSync(join(tmpdir(), 'countersign-cli-restart-'))

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

async function until(what: string, check: () => boolean, output: () => string): Promise<void> {
  for (let i = 0; i < 400; i += 1) {
    if (check()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`never saw ${what}:\n${output()}`)
}

describe('a waiting countersign run through a gateway restart', () => {
  it('says the gateway is unreachable instead of counting down, then carries on and runs once approved', async () => {
    const policy = join(dir, 'policy.yaml')
    writeFileSync(policy, POLICY)
    const args = ['--data-dir', join(dir, 'data'), '--port', String(await freePort()), '--policy', policy]
    let gateway: GatewayProcess = await startGatewayProcess(args, {}, dir)
    const admin = gateway.adminToken ?? ''
    const key = async (body: Record<string, unknown>): Promise<string> => (await call(gateway.url, admin, 'POST', '/v1/keys', body)).body.token as string
    const agent = await key({ kind: 'agent', id: 'deploy-bot' })
    const rita = await key({ kind: 'human', id: 'rita@example.com', email: 'rita@example.com' })
    const url = gateway.url
    const run = spawnCli(['run', '--action', 'deploy.app', '--resource', 'svc://shop', '--env', 'prod', '--', 'echo', 'deployed'], {
      COUNTERSIGN_URL: url,
      COUNTERSIGN_TOKEN: agent,
    }, dir)
    try {
      await until('the pending line', () => / pending · 0\/1 approvals/.test(run.stderr()), run.stderr)
      const id = /(req_\w+) pending/.exec(run.stderr())?.[1] ?? ''
      // The rule requires a reason, so the hint says how to give one.
      expect(run.stderr()).toContain(`approve: countersign approve ${id} --reason "…"`)

      await gateway.stop()
      await until('the unreachable line', () => run.stderr().includes('gateway unreachable, retrying…'), run.stderr)
      const unreachableLine = run.stderr().split('\n').find((line) => line.includes('gateway unreachable')) ?? ''
      expect(unreachableLine).toContain(`${id} pending · 0/1 approvals`)
      expect(unreachableLine).not.toMatch(/\d+m\d+s left/)

      gateway = await startGatewayProcess(args, {}, dir)
      expect(gateway.url).toBe(url)
      const approved = await runCli(['approve', id, '--reason', 'after the restart'], { COUNTERSIGN_URL: url, COUNTERSIGN_TOKEN: rita }, dir)
      expect(approved.code).toBe(0)
      const result = await run.result
      expect([result.code, result.stdout.trim()]).toEqual([0, 'deployed'])
    } finally {
      run.child.kill()
      await gateway.stop()
    }
  }, 60_000)
})
