import { spawn } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadAuditSigner } from '../audit/index.js'
import { LocalError } from '../core/index.js'
import { GrantSigner } from '../grants/index.js'
import { installKeyFile } from './load-signing-key.js'
import { loadSigningKey, signingKeyFromPem, signingKeyId } from './index.js'

/** The built module, for child processes (`npm test` builds first). */
const BUILT = fileURLToPath(new URL('../../dist/signing-keys/index.js', import.meta.url))

/** What loading `file` throws, checked to be a `config_invalid` refusal. */
const refusalOf = (file: string): { message: string; details: Record<string, unknown> } => {
  let thrown: unknown
  try {
    loadSigningKey(file, 'test signing key')
  } catch (error) {
    thrown = error
  }
  expect(thrown).toBeInstanceOf(LocalError)
  expect((thrown as LocalError).code).toBe('config_invalid')
  return thrown as LocalError
}

const ed25519Pem = (): string => generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()

describe('loading a signing key file', () => {
  let dir: string
  let file: string

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'countersign-keys-'))
    file = join(dir, 'data', 'test-signing-key.pem')
  })

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('creates the key with mode 0600 in a 0700 directory on first use, leaves no temporary file, and reuses it afterwards', async () => {
    const first = loadSigningKey(file, 'test signing key')
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect((await stat(join(dir, 'data'))).mode & 0o777).toBe(0o700)
    expect(await readdir(join(dir, 'data'))).toEqual(['test-signing-key.pem'])
    expect(loadSigningKey(file, 'test signing key').keyId).toBe(first.keyId)
    expect(signingKeyFromPem(await readFile(file, 'utf8'), 'the file').keyId).toBe(first.keyId)
  })

  it('keeps the key another process put in place first and returns that one', async () => {
    const theirs = ed25519Pem()
    await mkdir(join(dir, 'data'))
    await writeFile(file, theirs, { mode: 0o600 })
    expect(installKeyFile(file, ed25519Pem(), 'test signing key')).toBe(theirs)
    expect(await readFile(file, 'utf8')).toBe(theirs)
    expect(await readdir(join(dir, 'data'))).toEqual(['test-signing-key.pem'])
  })

  it('gives processes that start at once on an empty directory one and the same key', async () => {
    const script = `import { loadSigningKey } from ${JSON.stringify(BUILT)}; process.stdout.write(loadSigningKey(process.argv[1], 'race key').keyId)`
    const run = (): Promise<{ code: number | null; out: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script, file], { stdio: ['ignore', 'pipe', 'inherit'] })
        let out = ''
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
        child.once('exit', (code) => resolve({ code, out }))
      })
    const results = await Promise.all(Array.from({ length: 6 }, run))
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0, 0, 0])
    const onDisk = signingKeyFromPem(await readFile(file, 'utf8'), 'the file').keyId
    expect(results.map((r) => r.out)).toEqual(Array.from({ length: 6 }, () => onDisk))
    expect(await readdir(join(dir, 'data'))).toEqual(['test-signing-key.pem'])
  })

  it('refuses a file that holds no PEM key with config_invalid, naming the file and the way out', async () => {
    await mkdir(join(dir, 'data'))
    await writeFile(file, 'not a key\n')
    const error = refusalOf(file)
    expect(error.message).toMatch(new RegExp(`^The test signing key ${file} is not a PEM private key \\(.+\\); restore it from a backup, or replace it with an Ed25519 key \\(openssl genpkey -algorithm ed25519\\)\\.$`))
    expect(await readFile(file, 'utf8')).toBe('not a key\n')
  })

  it('refuses a key that is not Ed25519 with config_invalid, naming the file and its type', async () => {
    await mkdir(join(dir, 'data'))
    await writeFile(file, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }))
    const error = refusalOf(file)
    expect(error.message).toBe(`The test signing key ${file} is a ec key; it must be an Ed25519 key (openssl genpkey -algorithm ed25519).`)
  })

  it('refuses a key path it cannot read with config_invalid, naming the file and the cause', async () => {
    await mkdir(file, { recursive: true })
    const error = refusalOf(file)
    expect(error.message).toMatch(new RegExp(`^Cannot read the test signing key ${file}: EISDIR`))
    expect(error.details).toEqual({ file, reason: 'EISDIR' })
  })

  it('refuses a data directory it cannot create with config_invalid, naming the file and the cause', async () => {
    await writeFile(join(dir, 'data'), 'a file where the directory should be')
    const error = refusalOf(file)
    expect(error.message).toMatch(new RegExp(`^Cannot (read|create) the test signing key ${file}: ENOTDIR`))
    expect(error.details).toMatchObject({ file, reason: 'ENOTDIR' })
  })
})

describe('naming a signing key', () => {
  it('uses one scheme for grants and audit checkpoints: the RFC 7638 JWK thumbprint', async () => {
    const pem = ed25519Pem()
    const key = signingKeyFromPem(pem, 'the key')
    const grants = GrantSigner.load({ pem, audience: 'countersign', issuer: 'http://localhost' })
    const audit = loadAuditSigner({ privateKeyPem: pem })
    expect(key.keyId).toBe(signingKeyId(key.publicKey))
    expect(grants.keyId).toBe(key.keyId)
    expect(audit.keyId).toBe(key.keyId)
    expect((await grants.jwks()).keys[0]).toEqual({ ...key.publicJwk, kid: key.keyId, alg: 'EdDSA', use: 'sig' })
    expect(audit.publicKeyJwk).toEqual({ ...key.publicJwk, kid: key.keyId, alg: 'EdDSA', use: 'sig' })
  })
})
