import { describe, expect, it } from 'vitest'
import { generateApiKey, hashApiKeySecret, parseApiKeyToken, verifyApiKeySecret } from './api-key.js'

describe('generateApiKey', () => {
  it('makes a token of the form cs_<12 base32 chars>_<43 base64url chars> whose parts match the key', () => {
    const key = generateApiKey()
    expect(key.id).toMatch(/^[a-z2-7]{12}$/)
    expect(key.secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(key.prefix).toBe(`cs_${key.id}`)
    expect(key.token).toBe(`cs_${key.id}_${key.secret}`)
    expect(Buffer.from(key.secret, 'base64url')).toHaveLength(32)
  })

  it('never makes the same id or secret twice in a thousand keys', () => {
    const keys = Array.from({ length: 1000 }, () => generateApiKey())
    expect(new Set(keys.map((key) => key.id)).size).toBe(1000)
    expect(new Set(keys.map((key) => key.secret)).size).toBe(1000)
  })
})

describe('parseApiKeyToken', () => {
  it('splits a token even when its secret contains underscores', () => {
    const secret = `${'_'.repeat(20)}${'a'.repeat(23)}`
    expect(parseApiKeyToken(`cs_abcdefgh2345_${secret}`)).toEqual({ id: 'abcdefgh2345', secret })
  })

  it.each([
    ['an empty string', ''],
    ['a token without the cs_ prefix', `xx_abcdefgh2345_${'a'.repeat(43)}`],
    ['a token with an upper-case id', `cs_ABCDEFGH2345_${'a'.repeat(43)}`],
    ['a token with a short id', `cs_abcdefgh234_${'a'.repeat(43)}`],
    ['a token with a short secret', `cs_abcdefgh2345_${'a'.repeat(42)}`],
    ['a token with a long secret', `cs_abcdefgh2345_${'a'.repeat(44)}`],
    ['a token with padding', `cs_abcdefgh2345_${'a'.repeat(42)}=`],
    ['a token with trailing whitespace', `cs_abcdefgh2345_${'a'.repeat(43)} `],
    ['a token with a line break', `cs_abcdefgh2345_${'a'.repeat(43)}\n`],
    ['a prefix alone', 'cs_abcdefgh2345'],
  ])('refuses %s', (_label, token) => {
    expect(parseApiKeyToken(token)).toBeUndefined()
  })
})

describe('hashApiKeySecret and verifyApiKeySecret', () => {
  it('encodes the hash as scrypt$N$r$p$salt$hash with a random salt', async () => {
    const { secret } = generateApiKey()
    const first = await hashApiKeySecret(secret)
    const second = await hashApiKeySecret(secret)
    expect(first).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/)
    expect(first).not.toBe(second)
    expect(first).not.toContain(secret)
  })

  it('accepts the secret that was hashed', async () => {
    const { secret } = generateApiKey()
    expect(await verifyApiKeySecret(secret, await hashApiKeySecret(secret))).toBe(true)
  })

  it('refuses any other secret, including one differing in a single character', async () => {
    const { secret } = generateApiKey()
    const hash = await hashApiKeySecret(secret)
    const oneOff = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`
    expect(await verifyApiKeySecret(oneOff, hash)).toBe(false)
    expect(await verifyApiKeySecret(generateApiKey().secret, hash)).toBe(false)
    expect(await verifyApiKeySecret('', hash)).toBe(false)
  })

  it('accepts hashes made with other scrypt parameters, so the cost can be raised later', async () => {
    const { secret } = generateApiKey()
    const { scryptSync } = await import('node:crypto')
    const salt = Buffer.from('0123456789abcdef')
    const hash = scryptSync(secret, salt, 32, { N: 2 ** 10, r: 8, p: 2 })
    const stored = `scrypt$1024$8$2$${salt.toString('base64url')}$${hash.toString('base64url')}`
    expect(await verifyApiKeySecret(secret, stored)).toBe(true)
  })

  it.each([
    ['an empty string', ''],
    ['another algorithm', 'bcrypt$16384$8$1$c2FsdA$aGFzaA'],
    ['a missing field', 'scrypt$16384$8$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA'],
    ['N that is not a power of two', 'scrypt$1000$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA'],
    ['N far too large to compute', 'scrypt$1073741824$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA'],
    ['a non-numeric r', 'scrypt$16384$x$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA'],
    ['an empty hash', 'scrypt$16384$8$1$c2FsdHNhbHRzYWx0$'],
    ['a hash that is not base64url', 'scrypt$16384$8$1$c2FsdHNhbHRzYWx0$!!!!!!!!!!!!!!!!!!!!!!'],
  ])('refuses every secret when the stored hash is %s', async (_label, stored) => {
    expect(await verifyApiKeySecret('anything', stored)).toBe(false)
  })
})
