import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { canonicalDigest, canonicalJson } from './canonical-digest.js'
import { CountersignError } from './errors.js'
import type { ActionSpec } from './types.js'

function fromBits(hex: string): number {
  const view = new DataView(new ArrayBuffer(8))
  view.setBigUint64(0, BigInt(hex))
  return view.getFloat64(0)
}

function refusal(run: () => unknown): CountersignError {
  try {
    run()
  } catch (error) {
    if (error instanceof CountersignError) return error
    throw error
  }
  throw new Error('expected a CountersignError, but nothing was thrown')
}

const spec: ActionSpec = {
  action: 'db.export',
  resource: 'orders',
  environment: 'prod',
  params: { limit: 10, filter: { email: 'dana@example.com' } },
}

describe('canonicalJson', () => {
  it('serializes the RFC 8785 section 3.2.2 example byte for byte', () => {
    const input = JSON.parse(String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`) as unknown
    expect(canonicalJson(input)).toBe(
      String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
    )
  })

  it('orders keys by UTF-16 code units as in the RFC 8785 section 3.2.3 example', () => {
    const input = JSON.parse(String.raw`{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }`) as unknown
    expect(canonicalJson(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    )
  })

  it.each([
    ['0x0000000000000000', '0'],
    ['0x8000000000000000', '0'],
    ['0x0000000000000001', '5e-324'],
    ['0x8000000000000001', '-5e-324'],
    ['0x7fefffffffffffff', '1.7976931348623157e+308'],
    ['0xffefffffffffffff', '-1.7976931348623157e+308'],
    ['0x4340000000000000', '9007199254740992'],
    ['0xc340000000000000', '-9007199254740992'],
    ['0x4430000000000000', '295147905179352830000'],
    ['0x44b52d02c7e14af5', '9.999999999999997e+22'],
    ['0x44b52d02c7e14af6', '1e+23'],
    ['0x44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['0x444b1ae4d6e2ef4e', '999999999999999700000'],
    ['0x444b1ae4d6e2ef4f', '999999999999999900000'],
    ['0x444b1ae4d6e2ef50', '1e+21'],
    ['0x3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['0x3eb0c6f7a0b5ed8d', '0.000001'],
    ['0x41b3de4355555553', '333333333.3333332'],
    ['0x41b3de4355555554', '333333333.33333325'],
    ['0x41b3de4355555555', '333333333.3333333'],
    ['0x41b3de4355555556', '333333333.3333334'],
    ['0x41b3de4355555557', '333333333.33333343'],
    ['0xbecbf647612f3696', '-0.0000033333333333333333'],
    ['0x43143ff3c1cb0959', '1424953923781206.2'],
  ])('serializes the RFC 8785 Appendix B number %s as %s', (bits, expected) => {
    expect(canonicalJson(fromBits(bits))).toBe(expected)
  })

  it.each([
    [1e30, '1e+30'],
    [4.5, '4.5'],
    [0.002, '0.002'],
    [1e-7, '1e-7'],
    [-0, '0'],
    [100, '100'],
  ])('writes the number %d as %s', (value, expected) => {
    expect(canonicalJson(value)).toBe(expected)
  })

  it('keeps non-ASCII characters literal and escapes control characters in lowercase hex', () => {
    expect(canonicalJson('\u20ac\u000f\u001f\u007f\u2028')).toBe('"€\\u000f\\u001f\u007f\u2028"')
    expect(canonicalJson('\b\t\n\f\r"\\/')).toBe('"\\b\\t\\n\\f\\r\\"\\\\/"')
  })

  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['the NaN bit pattern from Appendix B', fromBits('0x7fffffffffffffff')],
  ])('refuses %s with invalid_request', (_name, value) => {
    const error = refusal(() => canonicalJson({ params: { limit: value } }))
    expect(error.code).toBe('invalid_request')
    expect(error.details).toEqual({ path: '$.params.limit' })
  })

  it('refuses a bare undefined, which has no JSON form, with invalid_request', () => {
    const error = refusal(() => canonicalJson(undefined))
    expect(error.code).toBe('invalid_request')
    expect(error.details).toEqual({ path: '$' })
  })

  it.each([
    ['a bigint', 10n],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a Map', new Map([['a', 1]])],
    ['a Date', new Date(0)],
    ['a class instance', new (class Limit {})()],
    ['a string with a lone surrogate', '\ud83d'],
  ])('refuses %s with invalid_request', (_name, value) => {
    expect(refusal(() => canonicalJson(value)).code).toBe('invalid_request')
    expect(refusal(() => canonicalJson({ nested: [value] })).details).toEqual({ path: '$.nested[0]' })
  })

  it('writes exactly what the canonicalize package writes, and refuses what it refuses', () => {
    const text = fc.oneof(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }))
    const value = fc.letrec((tie) => ({
      json: fc.oneof(
        { depthSize: 'small' },
        fc.oneof(text, fc.boolean(), fc.constant(null), fc.integer(), fc.double(), fc.constantFrom(-0, 1e21, 1e-7, 5e-324, 2 ** 53)),
        fc.array(tie('json'), { maxLength: 5 }),
        fc.dictionary(text, tie('json'), { maxKeys: 5 }),
      ),
    })).json
    fc.assert(
      fc.property(value, (v) => {
        let expected: string | undefined
        try {
          expected = canonicalize(v)
        } catch {
          expect(refusal(() => canonicalJson(v)).code).toBe('invalid_request')
          return
        }
        expect(canonicalJson(v)).toBe(expected)
      }),
      { numRuns: 2000 },
    )
  })

  it('names the path of a value JSON cannot carry, wherever it is nested', () => {
    const step = fc.oneof(
      fc.record({ key: fc.string().filter((key) => key.isWellFormed()) }),
      fc.record({ index: fc.nat({ max: 4 }) }),
    )
    fc.assert(
      fc.property(fc.array(step, { maxLength: 8 }), (steps) => {
        let value: unknown = Number.NaN
        for (const s of [...steps].reverse()) {
          if ('key' in s) {
            value = { [s.key]: value }
          } else {
            const array: unknown[] = Array.from({ length: s.index + 1 }, () => 'ok')
            array[s.index] = value
            value = array
          }
        }
        const expected = `$${steps.map((s) => ('key' in s ? `.${s.key}` : `[${s.index}]`)).join('')}`
        expect(refusal(() => canonicalJson(value)).details).toEqual({ path: expected })
      }),
    )
  })

  it('refuses a key with a lone surrogate with invalid_request', () => {
    expect(refusal(() => canonicalJson({ ['\udc00']: 1 })).code).toBe('invalid_request')
  })

  it('refuses a value that contains itself with invalid_request', () => {
    const params: Record<string, unknown> = { a: 1 }
    params.self = params
    expect(refusal(() => canonicalJson(params)).code).toBe('invalid_request')
  })

  it('accepts the same object twice when it is not its own ancestor', () => {
    const shared = { x: 1 }
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}')
  })

  it('omits undefined members and writes undefined or missing array elements as null, like JSON.stringify', () => {
    const sparse: unknown[] = [1]
    sparse[2] = 3
    const value = { a: undefined, b: [undefined, 2], c: sparse }
    expect(canonicalJson(value)).toBe('{"b":[null,2],"c":[1,null,3]}')
    expect(canonicalJson(value)).toBe(canonicalJson(JSON.parse(JSON.stringify(value))))
  })

  it('treats a "__proto__" key from parsed JSON as an ordinary member', () => {
    expect(canonicalJson(JSON.parse('{"__proto__":{"admin":true},"a":1}'))).toBe('{"__proto__":{"admin":true},"a":1}')
  })

  it('accepts objects without a prototype', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { b: 2, a: 1 })
    expect(canonicalJson(bare)).toBe('{"a":1,"b":2}')
  })
})

describe('canonicalDigest', () => {
  const fourKeys = '{"action":"db.export","environment":"prod","params":{"filter":{"email":"dana@example.com"},"limit":10},"resource":"orders"}'

  it('is the lowercase hex SHA-256 of the canonical JSON of action, resource, environment and params', () => {
    expect(canonicalDigest(spec)).toBe(createHash('sha256').update(fourKeys).digest('hex'))
    // Pinned so that other implementations (the SDK, a verifier in another language) can check against it.
    expect(canonicalDigest(spec)).toBe('1515a1bd4cbd3ce20d8068aa4178953567efb39dd8f836ad9a98a71dcb97d470')
  })

  it('ignores the reason, context and other request fields', () => {
    const request = { ...spec, reason: 'quarterly report', context: { run: 'r-1' }, idempotencyKey: 'k' }
    expect(canonicalDigest(request)).toBe(canonicalDigest(spec))
  })

  it('keeps the plain four-key digest when no files are bound', () => {
    expect(canonicalDigest(spec, [])).toBe(canonicalDigest(spec))
  })

  it('binds the sorted, lowercased file hashes under a files key', () => {
    const a = 'a'.repeat(64)
    const b = 'b'.repeat(64)
    const digest = canonicalDigest(spec, [
      { path: 'plan.tfplan', sha256: b.toUpperCase() },
      { path: 'vars.json', sha256: a },
    ])
    const withFiles =
      `{"action":"db.export","environment":"prod","files":["${a}","${b}"],` +
      '"params":{"filter":{"email":"dana@example.com"},"limit":10},"resource":"orders"}'
    expect(withFiles).toBe(canonicalJson({ ...spec, files: [a, b] }))
    expect(digest).toBe(createHash('sha256').update(withFiles).digest('hex'))
    expect(digest).not.toBe(canonicalDigest(spec))
  })

  it('does not depend on the order or the path of bound files', () => {
    const one = { path: 'plan.tfplan', sha256: '1'.repeat(64) }
    const two = { path: 'vars.json', sha256: '2'.repeat(64) }
    expect(canonicalDigest(spec, [one, two])).toBe(canonicalDigest(spec, [two, { ...one, path: '/elsewhere/plan.tfplan' }]))
  })

  it('changes when a bound file changes', () => {
    expect(canonicalDigest(spec, [{ path: 'plan', sha256: '1'.repeat(64) }])).not.toBe(
      canonicalDigest(spec, [{ path: 'plan', sha256: '2'.repeat(64) }]),
    )
  })

  it.each(['', 'abc', 'g'.repeat(64), 'a'.repeat(63), 'a'.repeat(65)])(
    'refuses a bound file hash %j with invalid_request',
    (sha256) => {
      const error = refusal(() => canonicalDigest(spec, [{ path: 'plan.tfplan', sha256 }]))
      expect(error.code).toBe('invalid_request')
      expect(error.details).toEqual({ index: 0, path: 'plan.tfplan' })
    },
  )

  it('refuses params with a non-finite number with invalid_request', () => {
    expect(refusal(() => canonicalDigest({ ...spec, params: { limit: Number.POSITIVE_INFINITY } })).code).toBe(
      'invalid_request',
    )
  })

  it('changes when any bound field changes', () => {
    const base = canonicalDigest(spec)
    expect(canonicalDigest({ ...spec, action: 'db.exports' })).not.toBe(base)
    expect(canonicalDigest({ ...spec, resource: 'order' })).not.toBe(base)
    expect(canonicalDigest({ ...spec, environment: 'staging' })).not.toBe(base)
    expect(canonicalDigest({ ...spec, params: { ...spec.params, limit: 11 } })).not.toBe(base)
  })

  it('never depends on the order of keys in the params', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.integer(), (params, seed) => {
        const shuffled = reorderKeys(params, seed) as Record<string, unknown>
        expect(canonicalDigest({ ...spec, params: shuffled })).toBe(canonicalDigest({ ...spec, params }))
      }),
    )
  })
})

/** Rebuilds a JSON value with every object's keys in a seeded random order. */
function reorderKeys(value: unknown, seed: number): unknown {
  let state = seed >>> 0
  const next = (): number => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0
    return state
  }
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk)
    if (node === null || typeof node !== 'object') return node
    const entries = Object.entries(node).map(([key, member]): [string, unknown] => [key, walk(member)])
    for (let i = entries.length - 1; i > 0; i--) {
      const j = next() % (i + 1)
      const swap = entries[i] as [string, unknown]
      entries[i] = entries[j] as [string, unknown]
      entries[j] = swap
    }
    return Object.fromEntries(entries)
  }
  return walk(value)
}
