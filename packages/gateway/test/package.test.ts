import { execFile } from 'node:child_process'
import { posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../..', import.meta.url))

/** npm itself: the one running the tests when there is one, else the one on PATH. */
function npm(args: string[]): Promise<{ stdout: string }> {
  const cli = process.env.npm_execpath
  return cli?.endsWith('.js')
    ? promisify(execFile)(process.execPath, [cli, ...args], { cwd: root })
    : promisify(execFile)('npm', args, { cwd: root })
}

it('packs the example policy where zero-configuration serve looks for it', async () => {
  const { stdout } = await npm(['pack', '--dry-run', '--json', '--workspace', 'packages/gateway'])
  const [pack] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>
  const files = pack?.files.map((file) => file.path) ?? []
  expect(files).toContain('dist/server/gateway.js')
  expect(files).toContain('examples/policy.yaml')
  // examplePolicyPath() looks first at ../../examples/policy.yaml from dist/server/gateway.js.
  expect(posix.join(posix.dirname('dist/server/gateway.js'), '../../examples/policy.yaml')).toBe('examples/policy.yaml')
}, 60_000)
