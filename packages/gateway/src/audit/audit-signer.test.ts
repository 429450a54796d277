import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LocalError } from '../core/index.js'
import { signingKeyId } from '../signing-keys/index.js'
import {
  AUDIT_SIGNING_KEY_FILE,
  loadAuditSigner,
  parseAuditPublicKey,
  verifyCheckpointSignature,
} from './audit-signer.js'

// RFC 8032 section 7.1, TEST 1.
const RFC8032_SECRET = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'
const RFC8032_PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'
// RFC 8037 appendix A.3: the JWK thumbprint of that public key.
const RFC8037_THUMBPRINT = 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k'
const PKCS8_ED25519_PREFIX = '302e020100300506032b657004220420'

function rfc8032Pem(): string {
  const der = Buffer.from(PKCS8_ED25519_PREFIX + RFC8032_SECRET, 'hex').toString('base64')
  return `-----BEGIN PRIVATE KEY-----\n${der}\n-----END PRIVATE KEY-----\n`
}

function rejection(fn: () => unknown): LocalError {
  try {
    fn()
  } catch (error) {
    if (error instanceof LocalError) return error
    throw error
  }
  throw new Error('expected a LocalError')
}

describe('loadAuditSigner', () => {
  let dataDir: string

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'countersign-signer-'))
  })

  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true })
  })

  it('creates the key file with mode 0600 on first use and reuses it afterwards', async () => {
    const first = loadAuditSigner({ dataDir })
    const file = join(dataDir, AUDIT_SIGNING_KEY_FILE)
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    const second = loadAuditSigner({ dataDir })
    expect(second.keyId).toBe(first.keyId)
    expect(loadAuditSigner({ privateKeyPem: await readFile(file, 'utf8') }).keyId).toBe(first.keyId)
  })

  it('creates the data directory when it does not exist yet', () => {
    const signer = loadAuditSigner({ dataDir: join(dataDir, 'nested', 'data') })
    expect(signer.keyId).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })

  it('names the key by its RFC 7638 JWK thumbprint (the RFC 8037 appendix A example)', () => {
    const signer = loadAuditSigner({ privateKeyPem: rfc8032Pem() })
    expect(Buffer.from(signer.publicKeyJwk.x, 'base64url').toString('hex')).toBe(RFC8032_PUBLIC)
    expect(signer.keyId).toBe(RFC8037_THUMBPRINT)
    expect(signer.publicKeyJwk).toEqual({
      kty: 'OKP',
      crv: 'Ed25519',
      x: Buffer.from(RFC8032_PUBLIC, 'hex').toString('base64url'),
      kid: RFC8037_THUMBPRINT,
      alg: 'EdDSA',
      use: 'sig',
    })
  })

  it('refuses a private key that is not Ed25519 with config_invalid', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const error = rejection(() => loadAuditSigner({ privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() }))
    expect(error.code).toBe('config_invalid')
    expect(error.message).toContain('Ed25519')
  })

  it('refuses text that is not a PEM key with config_invalid', () => {
    expect(rejection(() => loadAuditSigner({ privateKeyPem: 'not a key' })).code).toBe('config_invalid')
  })
})

describe('checkpoint signatures', () => {
  const signer = loadAuditSigner({ privateKeyPem: rfc8032Pem() })
  const checkpoint = signer.sign({ size: 42, head_hash: 'a'.repeat(64), ts: 1_767_225_600_000 })

  it('verifies with the public key exported as PEM and as JWK', () => {
    expect(checkpoint.key_id).toBe(signer.keyId)
    expect(verifyCheckpointSignature(checkpoint, parseAuditPublicKey(signer.publicKeyPem))).toBe(true)
    expect(verifyCheckpointSignature(checkpoint, parseAuditPublicKey(JSON.stringify(signer.publicKeyJwk)))).toBe(true)
    expect(signingKeyId(parseAuditPublicKey(signer.publicKeyPem))).toBe(signer.keyId)
  })

  it('fails when size, head or time changed after signing', () => {
    expect(verifyCheckpointSignature({ ...checkpoint, size: 41 }, signer.publicKey)).toBe(false)
    expect(verifyCheckpointSignature({ ...checkpoint, head_hash: 'b'.repeat(64) }, signer.publicKey)).toBe(false)
    expect(verifyCheckpointSignature({ ...checkpoint, ts: checkpoint.ts + 1 }, signer.publicKey)).toBe(false)
  })

  it('fails with another key and with a malformed signature', () => {
    const other = loadAuditSigner({ privateKeyPem: generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() })
    expect(verifyCheckpointSignature(checkpoint, other.publicKey)).toBe(false)
    expect(verifyCheckpointSignature({ ...checkpoint, signature: '!!' }, signer.publicKey)).toBe(false)
  })

  it('refuses a public key that is not Ed25519 with config_invalid', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const error = rejection(() => parseAuditPublicKey(publicKey.export({ format: 'pem', type: 'spki' }).toString(), 'key.pem'))
    expect(error.code).toBe('config_invalid')
    expect(error.message).toContain('key.pem is a rsa key')
  })
})
