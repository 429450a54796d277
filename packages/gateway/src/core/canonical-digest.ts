import { createHash } from 'node:crypto'
import { CountersignError } from './errors.js'
import type { ActionSpec, BoundFile } from './types.js'

const SHA256_HEX = /^[0-9a-f]{64}$/i

/**
 * Serializes a JSON value per RFC 8785 (JSON Canonicalization Scheme): keys
 * sorted by UTF-16 code units, ECMAScript number formatting, minimal string
 * escaping, no whitespace.
 *
 * Only JSON values are accepted. Object members whose value is `undefined` are
 * left out and `undefined` array elements become `null`, exactly as
 * `JSON.stringify` does, so a digest computed before sending a value equals
 * the one computed from the body that arrives. Anything JSON cannot carry
 * (NaN, Infinity, bigint, functions, symbols, lone surrogates, cycles, Maps,
 * Dates and other non-plain objects) is refused rather than silently
 * coerced, because two different values must never share a digest.
 *
 * It checks and writes in one pass, which matters because every request
 * canonicalizes its action and each of its audit entries; the tests hold the
 * output to the `canonicalize` package's byte for byte.
 *
 * @throws CountersignError `invalid_request` naming the offending path.
 * @example
 * canonicalJson({ b: 1, a: [4.50, 1e30] }) // '{"a":[4.5,1e+30],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  try {
    return serialize(value, new Set())
  } catch (error) {
    if (!(error instanceof NotJson)) throw error
    const path = `$${error.path.reverse().join('')}`
    throw new CountersignError(
      'invalid_request',
      `Value at ${path} ${error.problem}; send only JSON values (finite numbers, strings, booleans, null, arrays, plain objects).`,
      { path },
    )
  }
}

/**
 * The digest that approvals, grants and audit entries bind: lowercase hex
 * SHA-256 of the canonical JSON of `{action, resource, environment, params}`.
 * When files are bound (a Terraform plan, a script), their SHA-256 values,
 * lowercased and sorted, are added under `files`; without files the key is
 * absent, so the digest of a plain request stays the digest of those four keys.
 *
 * Other properties of `spec` (reason, context, ...) are ignored on purpose:
 * they describe the request but are not what gets executed.
 *
 * @throws CountersignError `invalid_request` for params JSON cannot carry or a
 *   bound file whose `sha256` is not 64 hex digits.
 * @example
 * canonicalDigest({ action: 'db.export', resource: 'orders', environment: 'prod', params: { limit: 10 } })
 * // 64 lowercase hex characters
 */
export function canonicalDigest(spec: ActionSpec, boundFiles: BoundFile[] = []): string {
  const files = boundFiles.map((file, index) => {
    if (typeof file.sha256 !== 'string' || !SHA256_HEX.test(file.sha256)) {
      throw new CountersignError(
        'invalid_request',
        `Bound file ${index} (${String(file.path)}) has sha256 ${JSON.stringify(file.sha256)}; expected 64 hexadecimal characters.`,
        { index, path: file.path },
      )
    }
    return file.sha256.toLowerCase()
  })
  // Plain string comparison sorts by UTF-16 code units, the same order RFC 8785 uses for keys.
  files.sort()
  const bound: Record<string, unknown> = {
    action: spec.action,
    resource: spec.resource,
    environment: spec.environment,
    params: spec.params,
  }
  if (files.length > 0) bound.files = files
  return createHash('sha256').update(canonicalJson(bound), 'utf8').digest('hex')
}

/**
 * Why a value is not JSON, and where: the path is collected on the way out,
 * innermost step first, so a value that is fine costs no path strings.
 */
class NotJson extends Error {
  readonly path: string[] = []

  constructor(readonly problem: string) {
    super(problem)
  }
}

/**
 * Writes `value` as RFC 8785 text in one pass, checking every node as it is
 * written. Each member is read once, so a getter cannot make the text differ
 * from what was checked.
 */
function serialize(value: unknown, ancestors: Set<object>): string {
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) throw new NotJson('is a string with a lone UTF-16 surrogate')
      return JSON.stringify(value)
    case 'number':
      if (!Number.isFinite(value)) throw new NotJson(`is ${String(value)}, which JSON cannot represent`)
      return JSON.stringify(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'object':
      break
    default:
      throw new NotJson(`is of type ${typeof value}, which JSON cannot represent`)
  }
  if (value === null) return 'null'
  if (ancestors.has(value)) throw new NotJson('refers back to itself')
  ancestors.add(value)
  let text: string
  if (Array.isArray(value)) {
    const parts: string[] = []
    for (let index = 0; index < value.length; index++) {
      const element: unknown = value[index]
      try {
        // Like JSON.stringify, a hole or an undefined element is written as null.
        parts.push(element === undefined ? 'null' : serialize(element, ancestors))
      } catch (error) {
        if (error instanceof NotJson) error.path.push(`[${index}]`)
        throw error
      }
    }
    text = `[${parts.join(',')}]`
  } else {
    const prototype = Object.getPrototypeOf(value) as unknown
    if (prototype !== Object.prototype && prototype !== null) {
      throw new NotJson('is not a plain object (a Map, Date or class instance has no single JSON form)')
    }
    // Plain string comparison sorts by UTF-16 code units, the order RFC 8785 gives to keys.
    const members = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    const parts: string[] = []
    for (const [key, member] of members) {
      try {
        if (!key.isWellFormed()) throw new NotJson('has a key with a lone UTF-16 surrogate')
        if (member !== undefined) parts.push(`${JSON.stringify(key)}:${serialize(member, ancestors)}`)
      } catch (error) {
        if (error instanceof NotJson) error.path.push(`.${key}`)
        throw error
      }
    }
    text = `{${parts.join(',')}}`
  }
  ancestors.delete(value)
  return text
}
