import { createPublicKey, sign, verify } from 'node:crypto'
import type { JsonWebKey, KeyObject } from 'node:crypto'
import { join } from 'node:path'
import { LocalError } from '../core/index.js'
import { loadSigningKey, signingKeyFromPem } from '../signing-keys/index.js'
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
  /** The RFC 7638 JWK thumbprint of the public key (see `signingKeyId`). */
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
 * @throws LocalError `config_invalid` when the key cannot be read or created, or is not an Ed25519 private key.
 * @example
 * ```ts
 * const signer = loadAuditSigner({ dataDir: './.countersign' })
 * console.log(signer.keyId, signer.publicKeyPem)
 * ```
 */
export function loadAuditSigner(source: { dataDir: string } | { privateKeyPem: string }): AuditSigner {
  const key = 'privateKeyPem' in source
    ? signingKeyFromPem(source.privateKeyPem, 'The configured audit signing key')
    : loadSigningKey(join(source.dataDir, AUDIT_SIGNING_KEY_FILE), 'audit signing key')
  const { privateKey, publicKey, keyId } = key
  return {
    keyId,
    publicKey,
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    publicKeyJwk: { ...key.publicJwk, kid: keyId, alg: 'EdDSA', use: 'sig' },
    sign({ size, head_hash, ts }) {
      const signature = sign(null, checkpointSigningInput({ size, head_hash, ts }), privateKey).toString('base64url')
      return { size, head_hash, ts, signature, key_id: keyId }
    },
  }
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
