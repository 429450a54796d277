import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Countersign } from '@countersign/sdk'
import { beforeAll, describe, expect, it } from 'vitest'
import { openApiDocument } from '../src/server/openapi.js'
import { CLI } from './support/gateway-process.js'

const root = fileURLToPath(new URL('../../..', import.meta.url))
const PACKAGES = ['packages/gateway', 'packages/sdk'] as const
type PackageDir = (typeof PACKAGES)[number]

/** npm itself: the one running the tests when there is one, else the one on PATH. */
function npm(args: string[]): Promise<{ stdout: string }> {
  const cli = process.env.npm_execpath
  return cli?.endsWith('.js')
    ? promisify(execFile)(process.execPath, [cli, ...args], { cwd: root, maxBuffer: 64 * 1024 * 1024 })
    : promisify(execFile)('npm', args, { cwd: root, maxBuffer: 64 * 1024 * 1024 })
}

const manifest = (dir: string): { name: string; version: string; license: string; repository?: { url?: string; directory?: string } } =>
  JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'))

describe('the published packages', () => {
  const packed = new Map<PackageDir, string[]>()

  beforeAll(async () => {
    const { stdout } = await npm(['pack', '--dry-run', '--json', ...PACKAGES.flatMap((dir) => ['--workspace', dir])])
    const packs = JSON.parse(stdout) as Array<{ name: string; files: Array<{ path: string }> }>
    for (const dir of PACKAGES) {
      const pack = packs.find((candidate) => candidate.name === manifest(dir).name)
      packed.set(dir, pack?.files.map((file) => file.path) ?? [])
    }
  }, 120_000)

  it('packs the example policy where zero-configuration serve looks for it', () => {
    const files = packed.get('packages/gateway') ?? []
    expect(files).toContain('dist/server/gateway.js')
    expect(files).toContain('examples/policy.yaml')
    // examplePolicyPath() looks first at ../../examples/policy.yaml from dist/server/gateway.js.
    expect(posix.join(posix.dirname('dist/server/gateway.js'), '../../examples/policy.yaml')).toBe('examples/policy.yaml')
  })

  for (const dir of PACKAGES) {
    it(`ships ${dir} with the Apache-2.0 license text, a README and where its source lives`, () => {
      const files = packed.get(dir) ?? []
      expect(files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json']))
      const license = readFileSync(join(root, dir, 'LICENSE'), 'utf8')
      expect(license).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/)
      expect(license).toContain('END OF TERMS AND CONDITIONS')
      expect(license).toBe(readFileSync(join(root, 'LICENSE'), 'utf8'))
      expect(manifest(dir).license).toBe('Apache-2.0')
      expect(manifest(dir).repository).toMatchObject({ url: expect.stringMatching(/^git\+https:\/\//), directory: dir })
    })

    it(`ships no source map in ${dir} that points at a source it leaves out`, () => {
      const files = packed.get(dir) ?? []
      const maps = files.filter((file) => file.endsWith('.map'))
      expect(maps.length).toBeGreaterThan(0)
      const missing: string[] = []
      for (const map of maps) {
        const { sources, sourcesContent } = JSON.parse(readFileSync(join(root, dir, map), 'utf8')) as { sources: string[]; sourcesContent?: Array<string | null> }
        sources.forEach((source, i) => {
          const shipped = files.includes(posix.join(posix.dirname(map), source))
          if (!shipped && typeof sourcesContent?.[i] !== 'string') missing.push(`${map} -> ${source}`)
        })
      }
      expect(missing).toEqual([])
    })
  }
})

describe('the version', () => {
  const version = manifest('packages/gateway').version

  it('is the one in package.json for the CLI and the OpenAPI document', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, '--version'])
    expect(stdout.trim()).toBe(version)
    expect((openApiDocument().info as { version: string }).version).toBe(version)
  })

  it("is the SDK's own package.json version in the user agent the SDK sends", async () => {
    const agents: string[] = []
    const server = createServer((request, response) => {
      agents.push(request.headers['user-agent'] ?? '')
      response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'not_found', message: 'no such request', details: {} } }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      const cs = new Countersign({ url: `http://127.0.0.1:${port}`, token: 'cs_test' })
      await cs.get('req_missing').catch(() => undefined)
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
    expect(agents).toEqual([`countersign-sdk/${manifest('packages/sdk').version}`])
  })
})
