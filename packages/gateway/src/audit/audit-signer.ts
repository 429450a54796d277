import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto'
import type { JsonWebKey, KeyObject } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { LocalError } from '../core/index.js'
import type { AuditCheckpoint } from './audit-entry.js'
import { checkpointSigningInput } from './audit-hash.js'

/** The checkpoint signing key's file name inside the data directory. */
export const AUDIT_SIGNING_KEY_FILE = 'audit-signing-key.pem'

/** The public half of the checkpoint key as a JSON Web Key (RFC 8037). */
export interface AuditPublicJwk {
  kty: 'OKP'
  crv: 'Ed25519'
  x: string
  kid: string
  alg: 'EdDSA'
  use: 'sig'
}

/** Signs audit checkpoints with an Ed25519 key. */
export interface AuditSigner {
  /** First 16 hex digits of the SHA-256 of the raw 32-byte public key. */
  readonly keyId: string
  readonly publicKey: KeyObject
  /** SPKI PEM, what `countersign audit verify --public-key` reads. */
  readonly publicKeyPem: string
  readonly publicKeyJwk: AuditPublicJwk
  /** Signs `{size, head_hash, ts}`. */
  sign(checkpoint: Pick<AuditCheckpoint, 'size' | 'head_hash' | 'ts'>): AuditCheckpoint
}

/**
 * Loads the checkpoint signing key from configuration (a PKCS#8 PEM string),
 * or from `<dataDir>/audit-signing-key.pem`, creating that file (mode 0600)
 * on first use.
 *
 * @throws LocalError `config_invalid` when the key is not an Ed25519 private key.
 * @example
 * ```ts
 * const signer = loadAuditSigner({ dataDir: './.countersign' })
 * console.log(signer.keyId, signer.publicKeyPem)
 * ```
 */
export function loadAuditSigner(source: { dataDir: string } | { privateKeyPem: string }): AuditSigner {
  if ('privateKeyPem' in source) return signerFromPem(source.privateKeyPem, 'the configured audit signing key')
  const file = join(source.dataDir, AUDIT_SIGNING_KEY_FILE)
  return signerFromPem(readOrCreateKeyFile(source.dataDir, file), file)
}

function readOrCreateKeyFile(dataDir: string, file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw unreadable(file, error)
  }
  const { privateKey } = generateKeyPairSync('ed25519')
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    // `wx` fails if another process created the key in the meantime; that key wins.
    writeFileSync(file, pem, { mode: 0o600, flag: 'wx' })
    return pem
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8')
    throw unreadable(file, error)
  }
}

function unreadable(file: string, error: unknown): LocalError {
  return new LocalError(
    'config_invalid',
    `Cannot read or create the audit signing key ${file}: ${(error as Error).message}. Check the data directory's permissions.`,
    { file },
  )
}

function signerFromPem(pem: string, source: string): AuditSigner {
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(pem)
  } catch (error) {
    throw new LocalError('config_invalid', `${source} is not a PEM private key: ${(error as Error).message}.`, { source })
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new LocalError(
      'config_invalid',
      `${source} is a ${privateKey.asymmetricKeyType ?? 'unknown'} key; audit checkpoints need an Ed25519 key (openssl genpkey -algorithm ed25519).`,
      { source },
    )
  }
  const publicKey = createPublicKey(privateKey)
  const keyId = auditKeyId(publicKey)
  return {
    keyId,
    publicKey,
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    publicKeyJwk: publicJwk(publicKey, keyId),
    sign({ size, head_hash, ts }) {
      const signature = sign(null, checkpointSigningInput({ size, head_hash, ts }), privateKey).toString('base64url')
      return { size, head_hash, ts, signature, key_id: keyId }
    },
  }
}

function publicJwk(publicKey: KeyObject, kid: string): AuditPublicJwk {
  const { x } = publicKey.export({ format: 'jwk' })
  return { kty: 'OKP', crv: 'Ed25519', x: x ?? '', kid, alg: 'EdDSA', use: 'sig' }
}

/** The key id checkpoints carry: first 16 hex digits of the SHA-256 of the raw public key. */
export function auditKeyId(publicKey: KeyObject): string {
  const { x } = publicKey.export({ format: 'jwk' })
  return createHash('sha256').update(Buffer.from(x ?? '', 'base64url')).digest('hex').slice(0, 16)
}

/**
 * Reads an Ed25519 public key given as PEM (SPKI, or a private key whose
 * public half is taken) or as a JWK in JSON.
 *
 * @throws LocalError `config_invalid` when the text holds no Ed25519 key.
 */
export function parseAuditPublicKey(text: string, source = 'the public key'): KeyObject {
  let key: KeyObject
  try {
    const trimmed = text.trim()
    key = trimmed.startsWith('{')
      ? createPublicKey({ key: JSON.parse(trimmed) as JsonWebKey, format: 'jwk' })
      : createPublicKey(trimmed)
  } catch (error) {
    throw new LocalError(
      'config_invalid',
      `${source} is neither a PEM public key nor a JWK: ${(error as Error).message}.`,
      { source },
    )
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new LocalError(
      'config_invalid',
      `${source} is a ${key.asymmetricKeyType ?? 'unknown'} key; audit checkpoints are signed with Ed25519.`,
      { source },
    )
  }
  return key
}

/** True when the checkpoint's signature over `{size, head_hash, ts}` verifies with the key. */
export function verifyCheckpointSignature(checkpoint: AuditCheckpoint, publicKey: KeyObject): boolean {
  try {
    return verify(null, checkpointSigningInput(checkpoint), publicKey, Buffer.from(checkpoint.signature, 'base64url'))
  } catch {
    return false
  }
}
