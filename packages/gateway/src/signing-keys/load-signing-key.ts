import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { LocalError } from '../core/index.js'

/** An Ed25519 key pair that signs for the gateway (grants, audit checkpoints). */
export interface SigningKey {
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  /** The RFC 7638 JWK thumbprint of the public key: what `kid` and `key_id` carry. */
  readonly keyId: string
  /** The public key as an RFC 8037 JWK. */
  readonly publicJwk: { kty: 'OKP'; crv: 'Ed25519'; x: string }
}

/**
 * Loads the Ed25519 private key kept in `file` (PKCS#8 PEM), creating it with
 * mode 0600 (and its directory with mode 0700) on first use. `name` says what
 * the key is for in error messages ("grant signing key").
 *
 * Creation is atomic and never replaces a key: the new key is written in full
 * to a temporary file, then hard-linked into place, which fails if another
 * process got there first; that process's key wins and is the one returned.
 * So two gateways starting at once on one data directory agree on the key,
 * and no reader ever sees a half-written file.
 *
 * @throws LocalError `config_invalid`, naming the file, when it cannot be
 * read or created or does not hold an Ed25519 private key.
 * @example
 * ```ts
 * const key = loadSigningKey(join(dataDir, 'grant-signing-key.pem'), 'grant signing key')
 * console.log(key.keyId)
 * ```
 */
export function loadSigningKey(file: string, name: string): SigningKey {
  return signingKeyFromPem(readOrCreate(file, name), `The ${name} ${file}`)
}

/**
 * Reads an Ed25519 private key from PEM text. `source` names it in errors
 * ("The configured audit signing key").
 *
 * @throws LocalError `config_invalid` when the text is not an Ed25519 private key.
 */
export function signingKeyFromPem(pem: string, source: string): SigningKey {
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(pem)
  } catch (error) {
    throw new LocalError(
      'config_invalid',
      `${source} is not a PEM private key (${(error as Error).message}); restore it from a backup, or replace it with an Ed25519 key (openssl genpkey -algorithm ed25519).`,
      { source },
    )
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new LocalError(
      'config_invalid',
      `${source} is a ${privateKey.asymmetricKeyType ?? 'unknown'} key; it must be an Ed25519 key (openssl genpkey -algorithm ed25519).`,
      { source },
    )
  }
  const publicKey = createPublicKey(privateKey)
  const publicJwk = ed25519Jwk(publicKey)
  return { privateKey, publicKey, keyId: signingKeyId(publicKey), publicJwk }
}

/**
 * The key id of an Ed25519 public key: its RFC 7638 JWK thumbprint, the
 * base64url SHA-256 of `{"crv":"Ed25519","kty":"OKP","x":…}` (RFC 8037 §2).
 * Anyone holding the public key can compute it.
 */
export function signingKeyId(publicKey: KeyObject): string {
  const { crv, kty, x } = ed25519Jwk(publicKey)
  return createHash('sha256').update(JSON.stringify({ crv, kty, x })).digest('base64url')
}

function ed25519Jwk(publicKey: KeyObject): SigningKey['publicJwk'] {
  const { x } = publicKey.export({ format: 'jwk' })
  if (publicKey.asymmetricKeyType !== 'ed25519' || x === undefined) throw new TypeError('signingKeyId takes an Ed25519 public key')
  return { kty: 'OKP', crv: 'Ed25519', x }
}

function readOrCreate(file: string, name: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fileProblem('read', name, file, error)
  }
  return installKeyFile(file, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), name)
}

/**
 * Puts `pem` at `file` unless a key is already there, and returns the key
 * that is there afterwards. The text is written whole to a temporary file
 * first and then hard-linked into place: the link fails (EEXIST) rather than
 * replace a file another process linked in first, and that file is complete.
 */
export function installKeyFile(file: string, pem: string, name: string): string {
  const temporary = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
    writeDurably(temporary, pem)
    linkSync(temporary, file)
    return pem
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fileProblem('create', name, file, error)
    try {
      return readFileSync(file, 'utf8')
    } catch (readError) {
      throw fileProblem('read', name, file, readError)
    }
  } finally {
    try {
      unlinkSync(temporary)
    } catch {
      // Never written, or already gone.
    }
  }
}

function writeDurably(file: string, data: string): void {
  const fd = openSync(file, 'wx', 0o600)
  try {
    writeSync(fd, data)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

function fileProblem(action: 'read' | 'create', name: string, file: string, error: unknown): LocalError {
  const reason = (error as NodeJS.ErrnoException).code
  return new LocalError(
    'config_invalid',
    `Cannot ${action} the ${name} ${file}: ${(error as Error).message}. Check that this user may read and write the data directory.`,
    { file, ...(reason !== undefined ? { reason } : {}) },
  )
}
