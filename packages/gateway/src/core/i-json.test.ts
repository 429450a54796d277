import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isCountersignError } from './errors.js'
import { decodeUtf8, parseIJson } from './i-json.js'

/** What parseIJson makes of a text: the value, or the refusal's code and details. */
function outcome(text: string): { code: string; details: Record<string, unknown> } | { value: unknown } {
  try {
    return { value: parseIJson(text) }
  } catch (error) {
    if (!isCountersignError(error)) throw error
    return { code: error.code, details: error.details }
  }
}

/** The refusal of a text, which must be refused. */
function refusal(text: string): { message: string; details: Record<string, unknown> } {
  try {
    parseIJson(text)
  } catch (error) {
    if (!isCountersignError(error)) throw error
    expect(error.code).toBe('invalid_request')
    return { message: error.message, details: error.details }
  }
  throw new Error(`${text} was accepted`)
}

const reasonOf = (text: string): unknown => refusal(text).details.reason

/** JSON text of `value` with every character of every key written as a \u escape. */
function withEscapedKeys(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(withEscapedKeys).join(',')}]`
  if (typeof value === 'object' && value !== null) {
    const members = Object.entries(value).map(([key, member]) => {
      const escaped = [...key].map((c) => [...c].map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')).join('')
      return `"${escaped}":${withEscapedKeys(member)}`
    })
    return `{${members.join(',')}}`
  }
  return JSON.stringify(value)
}

/** Any key but the two reserved ones. */
const plainKey = fc.string().filter((k) => k !== '__proto__' && k !== 'constructor')
const key = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'a'), fc.string())
const value = fc.letrec((tie) => ({
  json: fc.oneof(
    { depthSize: 'small' },
    fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
    fc.constantFrom(Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, -(2 ** 53 + 2), 2 ** 64),
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(key, tie('json'), { maxKeys: 4 }),
  ),
})).json

describe('parseIJson', () => {
  it.each([
    ['{"__proto__":{"admin":true}}'],
    ['{"a":{"\\u005f_proto__":{"admin":true}}}'],
    ['{"constructor":{"prototype":{"admin":true}}}'],
    ['{"\\u0063onstructor":{"prototype":{}}}'],
    ['{"amount":9007199254740993}'],
    ['[-12345678901234567]'],
  ])('refuses %s with invalid_request', (text) => {
    expect(outcome(text)).toMatchObject({ code: 'invalid_request' })
  })

  it.each([
    ['{"amount":9007199254740991,"ratio":1.5e300}', { amount: 9007199254740991, ratio: 1.5e300 }],
    ['{"digest":"1234567890123456789012"}', { digest: '1234567890123456789012' }],
    ['{"constructor":"a string"}', { constructor: 'a string' }],
    ['{"note":"caf\\u00e9","pair":"\\ud83d\\udca5"}', { note: 'café', pair: '💥' }],
    [' [0.1, 1.5, -0, 5e-324, 1e21, 1E+21, 2.5e-7, 100e-2, 0.30000000000000004] ', [0.1, 1.5, -0, 5e-324, 1e21, 1e21, 2.5e-7, 1, 0.30000000000000004]],
  ])('accepts %s', (text, expected) => {
    expect(outcome(text)).toEqual({ value: expected })
  })

  it('refuses a key given twice, naming the key, the object and the position', () => {
    const text = '{"action":"db.drop","action":"cloud.tags.set"}'
    expect(refusal(text)).toEqual({
      message: 'The body has the key "action" twice at $ (position 20); I-JSON allows each key once per object; send it once.',
      details: { reason: 'duplicate_key', path: '$', position: 20 },
    })
  })

  it.each([
    ['{"params":{"rows":[{"id":1,"id":2}]}}', '$.params.rows[0]'],
    ['{"params":{"a":1,"\\u0061":2}}', '$.params'],
    ['{"context":{"x y":{"k":1,"k":1}}}', '$.context["x y"]'],
    ['[{"a":{}},{"b":1,"b":1}]', '$[1]'],
  ])('refuses the duplicate key in %s at %s, however it is escaped', (text, path) => {
    expect(refusal(text).details).toMatchObject({ reason: 'duplicate_key', path })
  })

  it('refuses a duplicate key placed at any depth of any value', () => {
    fc.assert(
      fc.property(fc.dictionary(plainKey, fc.jsonValue(), { minKeys: 1 }), fc.array(plainKey, { maxLength: 5 }), (object, wrappers) => {
        const [first] = Object.keys(object)
        let text = `{${JSON.stringify(first)}:null,${JSON.stringify(object).slice(1)}`
        for (const wrapper of wrappers) text = `{${JSON.stringify(wrapper)}:[${text}]}`
        expect(reasonOf(text)).toBe('duplicate_key')
      }),
    )
  })

  it.each([
    ['9007199254740993'],
    ['9007199254740993.0'],
    ['9.007199254740993e15'],
    ['90071992547409930e-1'],
    ['-9007199254740993'],
    ['1e400'],
    ['-1e400'],
    ['1e-400'],
    ['0.1000000000000000055511151231257827'],
    ['3.141592653589793238462643383279'],
  ])('refuses %s, which a double would change', (token) => {
    const text = `{"params":{"amount":${token}}}`
    expect(refusal(text)).toEqual({
      message: `The body has the number ${token}, which a double cannot hold exactly (it would be read as ${String(Number(token))}) at $.params.amount (position 20); send it as a string, or with at most the precision of a double.`,
      details: { reason: 'inexact_number', path: '$.params.amount', position: 20 },
    })
  })

  it.each([['9007199254740992'], ['9007199254740994'], ['9.007199254740994e15'], ['-18446744073709552000'], ['1e20']])(
    'refuses the integer %s, beyond the range every reader holds exactly',
    (token) => {
      expect(refusal(`[${token}]`)).toEqual({
        message: `The body has the integer ${token}, beyond ±(2^53−1) where doubles no longer hold every integer at $[0] (position 1); send it as a string.`,
        details: { reason: 'inexact_number', path: '$[0]', position: 1 },
      })
    },
  )

  it('accepts any double in every spelling of its shortest form, and reads it as that double', () => {
    const double = fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => {
      const magnitude = Math.abs(n)
      return n !== 0 && !(Number.isInteger(n) && magnitude > Number.MAX_SAFE_INTEGER && magnitude < 1e21)
    })
    fc.assert(
      fc.property(double, fc.nat(3), (number, zeros) => {
        // The shortest form as sign, digits D and exponent E, so that number = D × 10^E.
        const [mantissa = '', exponent = '0'] = String(number).split('e')
        const sign = mantissa.startsWith('-') ? '-' : ''
        const [whole = '', fraction = ''] = mantissa.replace('-', '').split('.')
        const digits = (whole + fraction).replace(/^0+/, '')
        const power = Number(exponent) - fraction.length
        const spellings = [
          JSON.stringify(number),
          `${sign}${digits}e${power}`,
          `${sign}${digits}${'0'.repeat(zeros)}E${power - zeros}`,
          `${sign}0.${'0'.repeat(zeros)}${digits}e${power + digits.length + zeros}`,
        ]
        for (const text of spellings) expect(outcome(text), text).toEqual({ value: number })
      }),
      { numRuns: 1000 },
    )
  })

  it('refuses every spelling of an integer beyond 2^53 that a double does not hold', () => {
    const beyond = fc.bigInt({ min: 2n ** 53n + 1n, max: 2n ** 70n }).filter((n) => BigInt(Number(n)) !== n)
    fc.assert(
      fc.property(beyond, fc.boolean(), fc.nat(4), (n, negative, shift) => {
        const digits = n.toString()
        const sign = negative ? '-' : ''
        const point = digits.length - 1 - shift
        const spellings = [
          digits,
          `${digits}.0`,
          `${digits}0e-1`,
          `${digits.slice(0, point)}.${digits.slice(point)}e${shift + 1}`,
          `${digits[0]}.${digits.slice(1)}E+${digits.length - 1}`,
        ]
        for (const token of spellings) {
          expect(reasonOf(`{"n":${sign}${token}}`), `${sign}${token}`).toBe('inexact_number')
        }
      }),
    )
  })

  it('refuses a \\u escape of a lone surrogate but accepts a pair', () => {
    expect(refusal('{"k":"a\\ud800b"}')).toEqual({
      message: 'The body has a \\u escape of a lone surrogate at $.k (position 7); escape whole characters (a surrogate pair), or send the character itself.',
      details: { reason: 'lone_surrogate', path: '$.k', position: 7 },
    })
    expect(reasonOf('{"\\udc00":1}')).toBe('lone_surrogate')
    expect(outcome('["\\uD83D\\uDE00"]')).toEqual({ value: ['😀'] })
  })

  it.each([
    ['', 'The body is empty; send a JSON object.'],
    ['  ', 'The body is empty; send a JSON object.'],
    ['{"a":1} x', 'The body has text after the JSON value at $ (position 8).'],
    ['{"a":1,}', 'The body has no quoted key where one should be at $ (position 7).'],
    ['{"a" 1}', 'The body has no ":" after a key at $.a (position 5).'],
    ['[1 2]', 'The body has no "," or "]" after an element at $ (position 3).'],
    ['{"a":"\u0001"}', 'The body has an unescaped control character in a string at $.a (position 6); write it as a \\u escape.'],
    ['["\\x"]', 'The body has the unknown escape \\x in a string at $[0] (position 2).'],
    ['{"a":tru}', 'The body has an unknown word where a value should start at $.a (position 5).'],
    ['{"a":01}', 'The body has no "," or "}" after a member at $ (position 6).'],
    ['{"a":"open', 'The body ends inside a string at $.a (position 5).'],
  ])('refuses the malformed text %j with a message saying where', (text, message) => {
    expect(refusal(text).message).toBe(message)
  })

  it('refuses nesting deeper than its limit without exhausting the stack', () => {
    expect(refusal('['.repeat(100_000)).details).toMatchObject({ reason: 'too_deep', path: `$${'[0]'.repeat(64)}` })
    expect(outcome(`${'['.repeat(64)}${']'.repeat(64)}`)).toHaveProperty('value')
  })

  it('decides the same whether keys are written plainly or as escapes', () => {
    fc.assert(
      fc.property(value, (parsed) => {
        expect(outcome(withEscapedKeys(parsed))).toMatchObject('value' in outcome(JSON.stringify(parsed)) ? outcome(JSON.stringify(parsed)) : { code: 'invalid_request' })
      }),
      { numRuns: 500 },
    )
  })

  it('gives what JSON.parse gives for any text it accepts, and refuses only unsafe integers, reserved keys and lone surrogates', () => {
    fc.assert(
      fc.property(value, (parsed) => {
        const text = JSON.stringify(parsed)
        const result = outcome(text)
        if ('value' in result) {
          expect(result.value).toEqual(JSON.parse(text))
        } else {
          expect(text).toMatch(/"__proto__"|"constructor":\{|\d{16}|\\ud[89a-f]/)
        }
      }),
      { numRuns: 500 },
    )
  })

  it('refuses any text only with invalid_request, and accepts only what JSON.parse reads the same way', () => {
    const jsonish = fc.oneof(
      fc.string(),
      fc.json().chain((text) => fc.nat(text.length).chain((at) => fc.string({ maxLength: 3 }).map((noise) => text.slice(0, at) + noise + text.slice(at)))),
      fc.json(),
    )
    fc.assert(
      fc.property(jsonish, (text) => {
        const result = outcome(text)
        if ('value' in result) expect(result.value).toEqual(JSON.parse(text))
        else expect(result.code).toBe('invalid_request')
      }),
      { numRuns: 2000 },
    )
  })
})

describe('decodeUtf8', () => {
  it.each([
    [[0x7b, 0xff, 0x7d], 1],
    [[0x22, 0xc0, 0x80, 0x22], 1],
    [[0x22, 0xed, 0xa0, 0x80, 0x22], 1],
    [[0x22, 0xe2, 0x82], 1],
    [[0x61, 0xe2, 0x28, 0xa1], 1],
    [[0xf5, 0x80, 0x80, 0x80], 0],
    [[0xf0, 0x8f, 0xbf, 0xbf], 0],
  ])('refuses the bytes %j, naming offset %i where the ill-formed sequence starts', (bytes, offset) => {
    try {
      decodeUtf8(Uint8Array.from(bytes))
      expect.unreachable('invalid UTF-8 was decoded')
    } catch (error) {
      if (!isCountersignError(error)) throw error
      expect(error.code).toBe('invalid_request')
      expect(error.details).toEqual({ reason: 'invalid_utf8', offset })
      const byte = (bytes[offset] ?? 0).toString(16).padStart(2, '0')
      expect(error.message).toBe(
        `The body is not valid UTF-8: the byte at offset ${offset} (0x${byte}) is not part of a well-formed character; send the body as UTF-8 text.`,
      )
    }
  })

  it('decodes exactly the byte strings that are UTF-8, and names an offset before which all is well', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), fc.string({ unit: 'grapheme' }), (noise, text) => {
        const bytes = Buffer.concat([Buffer.from(text), noise])
        const wellFormed = Buffer.from(bytes.toString('utf8')).equals(bytes)
        try {
          expect(decodeUtf8(bytes)).toBe(bytes.toString('utf8'))
          expect(wellFormed).toBe(true)
        } catch (error) {
          if (!isCountersignError(error)) throw error
          expect(wellFormed).toBe(false)
          const offset = error.details.offset as number
          expect(offset).toBeGreaterThanOrEqual(Buffer.byteLength(text))
          expect(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, offset))).not.toThrow()
        }
      }),
      { numRuns: 1000 },
    )
  })
})
