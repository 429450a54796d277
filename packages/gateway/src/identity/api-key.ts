import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'

const scryptAsync = promisify(scrypt) as (
  password: string | Buffer,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>

/** Every Countersign API key starts with this, so secret scanners and the authenticator can spot one. */
export const API_KEY_PREFIX = 'cs_'

// RFC 4648 base32, lower case: readable, unambiguous, and never contains `_`,
// so the id can be cut out of a token without a split on a character that
// base64url secrets may contain.
const BASE32_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'
const ID_LENGTH = 12
const SECRET_BYTES = 32
// The secret is 32 bytes in unpadded base64url: exactly 43 characters.
const TOKEN_PATTERN = /^cs_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$/

// N = 2^14, r = 8, p = 1 is the interactive-login setting from the scrypt
// paper and OWASP's minimum: about 16 MiB and a few ms per check. The
// verified-key cache keeps it off the hot path.
const SCRYPT_N = 2 ** 14
const SCRYPT_R = 8
const SCRYPT_P = 1
const SALT_BYTES = 16
const HASH_BYTES = 32
// Hashes are read back from the database; bounding their parameters keeps a
// damaged row from turning one login into a gigabyte allocation.
const MAX_SCRYPT_N = 2 ** 20
const MAX_SCRYPT_R = 32
const MAX_SCRYPT_P = 16

/** A freshly generated API key. `token` is what the caller keeps; only a hash of `secret` is stored. */
export interface GeneratedApiKey {
  /** 12 base32 characters; the primary key of the stored row. */
  id: string
  /** `cs_<id>`: safe to display and log, identifies the key without revealing it. */
  prefix: string
  /** 32 random bytes, base64url. */
  secret: string
  /** `cs_<id>_<secret>`: shown once, never stored. */
  token: string
}

/**
 * Generates a new API key.
 *
 * @example
 * const key = generateApiKey()
 * const hash = await hashApiKeySecret(key.secret)
 * // store key.id, key.prefix and hash; hand key.token to the caller once
 */
export function generateApiKey(): GeneratedApiKey {
  const id = randomBase32(ID_LENGTH)
  const secret = randomBytes(SECRET_BYTES).toString('base64url')
  const prefix = `${API_KEY_PREFIX}${id}`
  return { id, prefix, secret, token: `${prefix}_${secret}` }
}

/** The two parts of an API key token. */
export interface ParsedApiKeyToken {
  id: string
  secret: string
}

/**
 * Splits a `cs_<id>_<secret>` token into its parts, or returns `undefined` when
 * it does not have exactly that shape.
 */
export function parseApiKeyToken(token: string): ParsedApiKeyToken | undefined {
  const match = TOKEN_PATTERN.exec(token)
  if (match === null) return undefined
  const [, id, secret] = match
  if (id === undefined || secret === undefined) return undefined
  return { id, secret }
}

/**
 * Hashes an API key secret with scrypt and a random salt, encoded as
 * `scrypt$N$r$p$salt$hash` (salt and hash in base64url) so the parameters
 * can be raised later without invalidating existing keys.
 */
export async function hashApiKeySecret(secret: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const hash = await deriveKey(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
  return ['scrypt', SCRYPT_N, SCRYPT_R, SCRYPT_P, salt.toString('base64url'), hash.toString('base64url')].join('$')
}

/**
 * Checks a secret against a hash made by {@link hashApiKeySecret}, in constant
 * time. A stored hash that cannot be parsed never matches: a damaged row
 * refuses the key rather than letting anything through.
 */
export async function verifyApiKeySecret(secret: string, storedHash: string): Promise<boolean> {
  const parsed = parseStoredHash(storedHash)
  if (parsed === undefined) return false
  const candidate = await deriveKey(secret, parsed.salt, parsed.N, parsed.r, parsed.p, parsed.hash.length)
  return timingSafeEqual(candidate, parsed.hash)
}

interface StoredHash {
  N: number
  r: number
  p: number
  salt: Buffer
  hash: Buffer
}

function parseStoredHash(storedHash: string): StoredHash | undefined {
  const parts = storedHash.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined
  const [, nText, rText, pText, saltText, hashText] = parts
  const N = parsePositiveInteger(nText)
  const r = parsePositiveInteger(rText)
  const p = parsePositiveInteger(pText)
  if (N === undefined || r === undefined || p === undefined) return undefined
  if (N < 2 || N > MAX_SCRYPT_N || (N & (N - 1)) !== 0 || r > MAX_SCRYPT_R || p > MAX_SCRYPT_P) return undefined
  const salt = decodeBase64Url(saltText)
  const hash = decodeBase64Url(hashText)
  if (salt === undefined || hash === undefined || salt.length === 0 || hash.length < 16 || hash.length > 64) {
    return undefined
  }
  return { N, r, p, salt, hash }
}

function parsePositiveInteger(text: string | undefined): number | undefined {
  if (text === undefined || !/^[1-9][0-9]{0,9}$/.test(text)) return undefined
  return Number(text)
}

function decodeBase64Url(text: string | undefined): Buffer | undefined {
  if (text === undefined || !/^[A-Za-z0-9_-]+$/.test(text)) return undefined
  return Buffer.from(text, 'base64url')
}

function deriveKey(secret: string, salt: Buffer, N: number, r: number, p: number, length: number): Promise<Buffer> {
  // scrypt needs 128 * N * r bytes; the default 32 MiB cap would reject the
  // larger parameters a future hash may carry.
  const maxmem = 128 * N * r * 2
  return scryptAsync(secret, salt, length, { N, r, p, maxmem })
}

function randomBase32(length: number): string {
  // 256 is a multiple of 32, so taking each byte modulo 32 is unbiased.
  const bytes = randomBytes(length)
  let out = ''
  for (const byte of bytes) out += BASE32_ALPHABET[byte % 32]
  return out
}
