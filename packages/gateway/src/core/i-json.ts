import { CountersignError } from './errors.js'

/** Why a body was refused, as `details.reason` of its `invalid_request` (listed in docs/api.md). */
export type BodyRefusal =
  | 'invalid_utf8'
  | 'invalid_json'
  | 'duplicate_key'
  | 'inexact_number'
  | 'lone_surrogate'
  | 'reserved_key'
  | 'too_deep'

/** How deep a body may nest: well above what any route accepts, far below what would exhaust the stack. */
const MAX_DEPTH = 64

/** Integers beyond this can collide with a neighbour once read as a double (RFC 7493 §2.2). */
const MAX_EXACT_INTEGER = Number.MAX_SAFE_INTEGER
/** From here on ECMAScript (and so RFC 8785) writes numbers with an exponent, as floating-point values. */
const FIRST_EXPONENT_FORM = 1e21

/** Without `stream`, each decode starts afresh, so one fatal decoder serves every body. */
const UTF8 = new TextDecoder('utf-8', { fatal: true })
const NUMBER_TOKEN = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }

/**
 * Decodes a body as UTF-8, refusing invalid bytes rather than replacing them
 * with U+FFFD: two different byte strings must never become one text.
 *
 * @throws CountersignError `invalid_request` with `details.reason` `invalid_utf8`
 *   and the byte `offset` of the first invalid sequence.
 * @example
 * decodeUtf8(Buffer.from('{"a":1}')) // '{"a":1}'
 */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return UTF8.decode(bytes)
  } catch {
    const offset = firstInvalidUtf8(bytes)
    throw new CountersignError(
      'invalid_request',
      `The body is not valid UTF-8: the byte at offset ${offset} (0x${(bytes[offset] ?? 0).toString(16).padStart(2, '0')}) is not part of a well-formed character; send the body as UTF-8 text.`,
      { reason: 'invalid_utf8', offset },
    )
  }
}

/**
 * Parses JSON text as an I-JSON message (RFC 7493), so that one body has one
 * meaning everywhere it is read:
 * - a key appears once per object (at any depth, however it is escaped);
 * - a number is accepted only when the double it becomes is the number
 *   written: the double, written back in its shortest form (as the digest,
 *   the views and the requester receive it), must have the very decimal
 *   value of the text. `0.1` and `1.5e300` pass; `9007199254740993`,
 *   `9007199254740993.0`, `9.007199254740993e15`, `1e400` and `1e-400` do not;
 * - an integer beyond ±(2^53−1) is refused too, even when a double happens to
 *   hold it, because other readers cannot be relied on to (RFC 7493 §2.2);
 *   numbers of 10^21 and more are floating-point values in every JSON writer
 *   and are judged by the previous rule alone;
 * - `\u` escapes name whole characters: a lone surrogate is refused;
 * - `__proto__`, and `constructor` holding a `prototype`, are refused, since
 *   code that merges objects could turn them into prototype changes.
 *
 * @throws CountersignError `invalid_request` with `details.reason` (a
 *   {@link BodyRefusal}), `details.path` (`$.params.amount`) and
 *   `details.position` (0-based index in the text).
 * @example
 * parseIJson('{"a":1.5}') // { a: 1.5 }
 * parseIJson('{"a":1,"a":2}') // throws: The body has the key "a" twice at $ (position 7); …
 */
export function parseIJson(text: string): unknown {
  const parser = new Parser(text)
  parser.skipWhitespace()
  if (parser.at >= text.length) throw new CountersignError('invalid_request', 'The body is empty; send a JSON object.', { reason: 'invalid_json' })
  const value = parser.value(1)
  parser.skipWhitespace()
  if (parser.at < text.length) parser.fail('invalid_json', 'has text after the JSON value')
  return value
}

class Parser {
  at = 0
  /** Keys and indexes from the root to the value being read; turned into text only for a refusal. */
  readonly path: Array<string | number> = []

  constructor(readonly text: string) {}

  fail(reason: BodyRefusal, problem: string, position = this.at, hint = ''): never {
    const where = `$${this.path.map(pathStep).join('')}`
    throw new CountersignError(
      'invalid_request',
      `The body ${problem} at ${where} (position ${position})${hint === '' ? '' : `; ${hint}`}.`,
      { reason, path: where, position },
    )
  }

  skipWhitespace(): void {
    const { text } = this
    let at = this.at
    for (;;) {
      const c = text.charCodeAt(at)
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break
      at++
    }
    this.at = at
  }

  value(depth: number): unknown {
    const c = this.text[this.at]
    switch (c) {
      case '{':
        return this.object(depth)
      case '[':
        return this.array(depth)
      case '"':
        return this.string()
      case 't':
        return this.literal('true', true)
      case 'f':
        return this.literal('false', false)
      case 'n':
        return this.literal('null', null)
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number()
        return this.fail('invalid_json', c === undefined ? 'ends where a value should start' : `has ${JSON.stringify(c)} where a value should start`)
    }
  }

  literal<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.at)) this.fail('invalid_json', 'has an unknown word where a value should start')
    this.at += word.length
    return value
  }

  enter(depth: number): void {
    if (depth > MAX_DEPTH) this.fail('too_deep', `nests deeper than ${MAX_DEPTH} levels`)
  }

  object(depth: number): Record<string, unknown> {
    this.enter(depth)
    this.at++
    const result: Record<string, unknown> = {}
    this.skipWhitespace()
    if (this.text[this.at] === '}') {
      this.at++
      return result
    }
    for (;;) {
      if (this.text[this.at] !== '"') this.fail('invalid_json', 'has no quoted key where one should be')
      const keyAt = this.at
      const key = this.string()
      if (Object.hasOwn(result, key)) {
        this.fail('duplicate_key', `has the key ${JSON.stringify(key)} twice`, keyAt, 'I-JSON allows each key once per object; send it once')
      }
      if (key === '__proto__') this.fail('reserved_key', 'uses the reserved key "__proto__"', keyAt, 'rename it')
      this.path.push(key)
      this.skipWhitespace()
      if (this.text[this.at] !== ':') this.fail('invalid_json', 'has no ":" after a key')
      this.at++
      this.skipWhitespace()
      const member = this.value(depth + 1)
      this.path.pop()
      if (key === 'constructor' && member !== null && typeof member === 'object' && Object.hasOwn(member, 'prototype')) {
        this.fail('reserved_key', 'uses the reserved key "constructor" with a "prototype" inside', keyAt, 'rename it')
      }
      result[key] = member
      this.skipWhitespace()
      const next = this.text[this.at]
      this.at++
      if (next === '}') return result
      if (next !== ',') this.fail('invalid_json', 'has no "," or "}" after a member', this.at - 1)
      this.skipWhitespace()
    }
  }

  array(depth: number): unknown[] {
    this.enter(depth)
    this.at++
    const result: unknown[] = []
    this.skipWhitespace()
    if (this.text[this.at] === ']') {
      this.at++
      return result
    }
    for (;;) {
      this.path.push(result.length)
      result.push(this.value(depth + 1))
      this.path.pop()
      this.skipWhitespace()
      const next = this.text[this.at]
      this.at++
      if (next === ']') return result
      if (next !== ',') this.fail('invalid_json', 'has no "," or "]" after an element', this.at - 1)
      this.skipWhitespace()
    }
  }

  string(): string {
    const { text } = this
    const start = this.at + 1
    let at = start
    let out = ''
    let chunk = start
    for (;;) {
      const c = text.charCodeAt(at)
      if (Number.isNaN(c)) this.fail('invalid_json', 'ends inside a string', start - 1)
      if (c === 0x22) break
      if (c < 0x20) this.fail('invalid_json', 'has an unescaped control character in a string', at, 'write it as a \\u escape')
      if (c === 0x5c) {
        out += text.slice(chunk, at)
        const escape = text[at + 1] ?? ''
        if (escape === 'u') {
          const unit = this.hexUnit(at)
          at += 6
          if (unit >= 0xd800 && unit <= 0xdbff && text.startsWith('\\u', at)) {
            const low = this.hexUnit(at)
            if (low >= 0xdc00 && low <= 0xdfff) {
              out += String.fromCharCode(unit, low)
              at += 6
              chunk = at
              continue
            }
          }
          if (unit >= 0xd800 && unit <= 0xdfff) {
            this.fail('lone_surrogate', 'has a \\u escape of a lone surrogate', at - 6, 'escape whole characters (a surrogate pair), or send the character itself')
          }
          out += String.fromCharCode(unit)
        } else {
          const replacement = ESCAPES[escape]
          if (replacement === undefined) this.fail('invalid_json', `has the unknown escape \\${escape} in a string`, at)
          out += replacement
          at += 2
        }
        chunk = at
        continue
      }
      at++
    }
    this.at = at + 1
    return out + text.slice(chunk, at)
  }

  hexUnit(at: number): number {
    const hex = this.text.slice(at + 2, at + 6)
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid_json', 'has a \\u escape without four hex digits', at)
    return Number.parseInt(hex, 16)
  }

  number(): number {
    NUMBER_TOKEN.lastIndex = this.at
    const match = NUMBER_TOKEN.exec(this.text)
    if (match === null) return this.fail('invalid_json', 'has a malformed number')
    const token = match[0]
    const position = this.at
    this.at += token.length
    const value = Number(token)
    const shown = token.length > 64 ? `${token.slice(0, 64)}…` : token
    if (!Number.isFinite(value) || !sameDecimal(token, String(value))) {
      this.fail(
        'inexact_number',
        `has the number ${shown}, which a double cannot hold exactly (it would be read as ${String(value)})`,
        position,
        'send it as a string, or with at most the precision of a double',
      )
    }
    const magnitude = Math.abs(value)
    if (Number.isInteger(value) && magnitude > MAX_EXACT_INTEGER && magnitude < FIRST_EXPONENT_FORM) {
      this.fail(
        'inexact_number',
        `has the integer ${shown}, beyond ±(2^53−1) where doubles no longer hold every integer`,
        position,
        'send it as a string',
      )
    }
    return value
  }
}

/** `.name` for plain identifiers, `["a key"]` otherwise, `[3]` for indexes, so every path reads back unambiguously. */
function pathStep(step: string | number): string {
  if (typeof step === 'number') return `[${step}]`
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(step) ? `.${step}` : `[${JSON.stringify(step)}]`
}

/** A decimal number as its digits without leading or trailing zeros and the power of ten of the last one. */
function decimalOf(token: string): { negative: boolean; digits: string; exponent: number } {
  const negative = token.startsWith('-')
  const body = negative ? token.slice(1) : token
  const e = body.search(/[eE]/)
  const mantissa = e === -1 ? body : body.slice(0, e)
  let exponent = e === -1 ? 0 : Number(body.slice(e + 1))
  const dot = mantissa.indexOf('.')
  let digits = mantissa
  if (dot !== -1) {
    digits = mantissa.slice(0, dot) + mantissa.slice(dot + 1)
    exponent -= mantissa.length - dot - 1
  }
  digits = digits.replace(/^0+/, '')
  const trimmed = digits.replace(/0+$/, '')
  exponent += digits.length - trimmed.length
  return { negative, digits: trimmed, exponent }
}

/** True when two number texts have the same decimal value (all zeros are one value, whatever their sign). */
function sameDecimal(a: string, b: string): boolean {
  const x = decimalOf(a)
  const y = decimalOf(b)
  if (x.digits === '' || y.digits === '') return x.digits === y.digits
  return x.negative === y.negative && x.digits === y.digits && x.exponent === y.exponent
}

/** The offset where the first ill-formed UTF-8 sequence (RFC 3629 §4) starts. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let at = 0
  while (at < bytes.length) {
    const lead = bytes[at] ?? 0
    let length: number
    let min = 0x80
    let max = 0xbf
    if (lead < 0x80) length = 1
    else if (lead >= 0xc2 && lead <= 0xdf) length = 2
    else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3
      if (lead === 0xe0) min = 0xa0
      if (lead === 0xed) max = 0x9f
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4
      if (lead === 0xf0) min = 0x90
      if (lead === 0xf4) max = 0x8f
    } else return at
    for (let i = 1; i < length; i++) {
      const next = bytes[at + i]
      if (next === undefined || (i === 1 ? next < min || next > max : next < 0x80 || next > 0xbf)) return at
    }
    at += length
  }
  return at
}
