import { describe, expect, it } from 'vitest'
import { VerifiedKeyCache } from './verified-key-cache.js'

const now = Date.UTC(2025, 0, 1)

describe('VerifiedKeyCache', () => {
  it('remembers a verified token for the TTL and forgets it afterwards', () => {
    const cache = new VerifiedKeyCache({ ttlMs: 60_000 })
    cache.remember('cs_token', 'key1', 'hash1', now)
    expect(cache.has('cs_token', 'key1', 'hash1', now + 59_999)).toBe(true)
    expect(cache.has('cs_token', 'key1', 'hash1', now + 60_000)).toBe(false)
  })

  it('does not vouch for a different token of the same key', () => {
    const cache = new VerifiedKeyCache()
    cache.remember('cs_token', 'key1', 'hash1', now)
    expect(cache.has('cs_token2', 'key1', 'hash1', now)).toBe(false)
  })

  it('does not vouch for the token against another key id or another stored hash', () => {
    const cache = new VerifiedKeyCache()
    cache.remember('cs_token', 'key1', 'hash1', now)
    expect(cache.has('cs_token', 'key2', 'hash1', now)).toBe(false)
    expect(cache.has('cs_token', 'key1', 'hash2', now)).toBe(false)
  })

  it('forgets every token of a key when the key is forgotten', () => {
    const cache = new VerifiedKeyCache()
    cache.remember('cs_a', 'key1', 'hash1', now)
    cache.remember('cs_b', 'key1', 'hash1', now)
    cache.remember('cs_c', 'key2', 'hash2', now)
    cache.forgetKey('key1')
    expect(cache.has('cs_a', 'key1', 'hash1', now)).toBe(false)
    expect(cache.has('cs_b', 'key1', 'hash1', now)).toBe(false)
    expect(cache.has('cs_c', 'key2', 'hash2', now)).toBe(true)
  })

  it('drops the oldest entry when full', () => {
    const cache = new VerifiedKeyCache({ maxEntries: 2 })
    cache.remember('cs_a', 'a', 'h', now)
    cache.remember('cs_b', 'b', 'h', now)
    cache.remember('cs_c', 'c', 'h', now)
    expect(cache.size).toBe(2)
    expect(cache.has('cs_a', 'a', 'h', now)).toBe(false)
    expect(cache.has('cs_c', 'c', 'h', now)).toBe(true)
  })

  it('remembers nothing when the TTL is zero', () => {
    const cache = new VerifiedKeyCache({ ttlMs: 0 })
    cache.remember('cs_a', 'a', 'h', now)
    expect(cache.size).toBe(0)
  })

  it('rejects a negative TTL or a size below one at construction', () => {
    expect(() => new VerifiedKeyCache({ ttlMs: -1 })).toThrow(TypeError)
    expect(() => new VerifiedKeyCache({ maxEntries: 0 })).toThrow(TypeError)
  })
})

describe('VerifiedKeyCache.verify', () => {
  it('runs one check for a burst of calls with the same new token', async () => {
    const cache = new VerifiedKeyCache()
    let checks = 0
    const check = async (): Promise<boolean> => {
      checks += 1
      await new Promise((resolve) => setTimeout(resolve, 5))
      return true
    }
    const results = await Promise.all(Array.from({ length: 20 }, () => cache.verify('cs_token', 'key1', 'hash1', 0, check)))
    expect(results.every(Boolean)).toBe(true)
    expect(checks).toBe(1)
    expect(cache.has('cs_token', 'key1', 'hash1', 1)).toBe(true)
  })

  it('remembers nothing when the shared check fails, and checks again next time', async () => {
    const cache = new VerifiedKeyCache()
    let checks = 0
    const failing = async (): Promise<boolean> => {
      checks += 1
      return false
    }
    const results = await Promise.all([1, 2, 3].map(() => cache.verify('cs_bad', 'key1', 'hash1', 0, failing)))
    expect(results).toEqual([false, false, false])
    expect(cache.has('cs_bad', 'key1', 'hash1', 1)).toBe(false)
    expect(await cache.verify('cs_bad', 'key1', 'hash1', 1, failing)).toBe(false)
    expect(checks).toBe(2)
  })
})
