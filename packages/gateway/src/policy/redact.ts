/**
 * What a built-in detector found; shown to reviewers as `[redacted:<kind>]`.
 */
export type SecretKind =
  | 'private_key'
  | 'jwt'
  | 'password'
  | 'aws_access_key'
  | 'github_token'
  | 'slack_token'
  | 'openai_key'
  | 'card_number'
  | 'email'

interface Detector {
  kind: SecretKind
  pattern: RegExp
  /** Replaces one match; `undefined` keeps the match as it is. */
  replace?: (match: string, groups: string[]) => string | undefined
}

const marker = (kind: string): string => `[redacted:${kind}]`

/*
 * Order matters: whole private keys and JWTs go first so that their inner
 * characters are not half-redacted by a narrower detector; connection-string
 * passwords go before emails because `user:pw@host` looks like an address.
 */
const DETECTORS: readonly Detector[] = [
  {
    kind: 'private_key',
    // A key cut off before its END line is still a key.
    pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|$)/g,
  },
  {
    kind: 'jwt',
    pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+/g,
  },
  {
    kind: 'password',
    pattern: /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/?#@[\]]*):([^\s@/?#]+)@/gi,
    replace: (_match, [scheme = '', user = '', password = '']) =>
      password.startsWith('[redacted:') ? undefined : `${scheme}${user}:${marker('password')}@`,
  },
  {
    kind: 'aws_access_key',
    pattern: /(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])/g,
  },
  {
    kind: 'github_token',
    pattern: /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])/g,
  },
  {
    kind: 'slack_token',
    pattern: /(?<![A-Za-z0-9-])xox[abposr]-[A-Za-z0-9-]{10,}/g,
  },
  {
    kind: 'openai_key',
    pattern: /(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}/g,
  },
  {
    kind: 'card_number',
    // Issuer numbers start with 2-6; requiring that keeps 13-digit millisecond timestamps out.
    pattern: /(?<![\d-])[2-6](?:[ -]?\d){12,18}(?![\d])/g,
    replace: (match) => {
      const digits = match.replace(/[ -]/g, '')
      return digits.length >= 13 && digits.length <= 19 && passesLuhn(digits) ? marker('card_number') : undefined
    },
  },
  {
    kind: 'email',
    // Not right after `//`: in `postgres://app@db.internal` the part before `@` is a user, not a mailbox.
    pattern: /(?<![A-Za-z0-9._%+-])(?<!\/\/)[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b/g,
  },
]

/** The Luhn checksum every payment card number satisfies. */
export function passesLuhn(digits: string): boolean {
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let digit = digits.charCodeAt(i) - 48
    if (double) {
      digit *= 2
      if (digit > 9) digit -= 9
    }
    sum += digit
    double = !double
  }
  return sum % 10 === 0
}

/**
 * Replaces every secret the built-in detectors recognise inside one string.
 *
 * @example
 * redactString('postgres://app:hunter2@db:5432/app')
 * // 'postgres://app:[redacted:password]@db:5432/app'
 */
export function redactString(text: string): string {
  let out = text
  for (const detector of DETECTORS) {
    out = out.replace(detector.pattern, (match: string, ...rest: unknown[]) => {
      if (detector.replace === undefined) return marker(detector.kind)
      const groups = rest.filter((part): part is string => typeof part === 'string')
      return detector.replace(match, groups) ?? match
    })
  }
  return out
}

/*
 * Values under these keys are credentials whatever they look like; the
 * detectors above would miss a plain `hunter2`. Keys are matched on their
 * words (see `keyWords`), so `tokenizer`, `max_tokens` and `secretary` stay
 * visible while `DB_PASSWORD`, `refreshToken` and `x-api-key` do not. Plural
 * `tokens` is left out because it nearly always names a count. A word
 * may carry a prefix (`dbpassword`, `accesstoken`) because names are often
 * run together; `session` and `cookie` may not, or `possession` would match.
 * Where a name is ambiguous (`token_count`) hiding a harmless value is the
 * cheaper mistake.
 */
const SECRET_NAMES: ReadonlyArray<readonly [RegExp, SecretKind | 'secret']> = [
  [/(?:^|_)[a-z]*(?:passwords?|passwd|passphrase|pwd)(?:_|$)/, 'password'],
  [/(?:^|_)[a-z]*private_?keys?(?:_|$)/, 'private_key'],
  [
    /(?:^|_)(?:[a-z]*(?:secrets?|token|credentials?|authorization|(?:api|signing|encryption)_?keys?)|session|cookies?)(?:_|$)/,
    'secret',
  ],
]

/**
 * Lower-case words of a key joined by `_`: `apiKey`, `API-KEY` and `api_key`
 * all become `api_key`, `oauth2Token` becomes `oauth_2_token`.
 */
function keyWords(key: string): string {
  return key
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Za-z])(\d)/g, '$1_$2')
    .replace(/(\d)([A-Za-z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((word) => word !== '')
    .join('_')
}

/** What a key is named like, and how it may be shown: a key can be a secret itself (`{"ghp_…": true}`). */
interface KnownKey {
  kind: SecretKind | 'secret' | undefined
  shown: string
}

/** Key names repeat from request to request, so what each one is named like is remembered, up to a bound. */
const MAX_KNOWN_KEYS = 2000
const knownKeys = new Map<string, KnownKey>()

function knownKey(key: string): KnownKey {
  const known = knownKeys.get(key)
  if (known !== undefined) return known
  const words = keyWords(key)
  const found = { kind: SECRET_NAMES.find(([pattern]) => pattern.test(words))?.[1], shown: redactString(key) }
  if (knownKeys.size >= MAX_KNOWN_KEYS) knownKeys.clear()
  knownKeys.set(key, found)
  return found
}

/** The smallest and largest numbers with 13 to 19 digits, the lengths of payment card numbers. */
const CARD_MIN = 1e12
const CARD_MAX = 1e19

/** A card number sent as a JSON number (`4111111111111111`) is as much a card number as the string. */
function looksLikeCardNumber(value: number): boolean {
  if (!Number.isInteger(value) || Math.abs(value) < CARD_MIN || Math.abs(value) >= CARD_MAX) return false
  const digits = String(Math.abs(value))
  return /^[2-6]\d{12,18}$/.test(digits) && passesLuhn(digits)
}

/**
 * Returns a deep copy of `value` fit for reviewers and the audit log:
 * - each policy path (`params.filter.email`, `params.users.*.ssn`) is replaced
 *   by `[redacted:<path>]`; `*` matches any key or list index, and a named
 *   segment that meets a list applies to every element; paths name the keys
 *   as they were sent;
 * - every remaining string, and every object key, passes through the
 *   built-in detectors (see {@link redactString}); a key that becomes the same
 *   as another gets ` (2)`, ` (3)`, … so no member is lost;
 * - numbers that look like payment card numbers (13 to 19 digits, Luhn) become
 *   `[redacted:card_number]`;
 * - values of any type under keys named like a credential (`password`,
 *   `DB_PASSWORD`, `accessToken`, `x-api-key`, `aws_secret_access_key`) are
 *   replaced whole by `[redacted:password]`, `[redacted:private_key]` or
 *   `[redacted:secret]`; an empty string or `null` is kept, as it hides nothing.
 * The input is never modified.
 *
 * @example
 * redactValue({ params: { filter: { email: 'a@b.co' } } }, ['params.filter.email'])
 * // { params: { filter: { email: '[redacted:params.filter.email]' } } }
 */
export function redactValue<T>(value: T, paths: readonly string[] = []): T {
  let copy: unknown = value
  // Paths first, while keys are still as the policy names them; redactPath copies only what it changes.
  for (const path of paths) copy = redactPath(copy, path.split('.'), marker(path))
  return scrub(copy) as T
}

function scrub(value: unknown, kind?: SecretKind | 'secret'): unknown {
  // Whole, whatever the type: `["hunter2"]` or `{ value: 'abc' }` is no less a secret than a string.
  if (kind !== undefined && value !== '' && value !== null && value !== undefined) return marker(kind)
  if (typeof value === 'string') return redactString(value)
  if (typeof value === 'number') return looksLikeCardNumber(value) ? marker('card_number') : value
  if (Array.isArray(value)) return value.map((item) => scrub(item))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [entryKey, entry] of Object.entries(value)) {
      const key = knownKey(entryKey)
      let shown = key.shown
      for (let n = 2; Object.hasOwn(out, shown); n++) shown = `${key.shown} (${n})`
      // defineProperty, so a `__proto__` key stays a plain key.
      Object.defineProperty(out, shown, { value: scrub(entry, key.kind), enumerable: true, writable: true, configurable: true })
    }
    return out
  }
  return value
}

function redactPath(value: unknown, segments: readonly string[], replacement: string): unknown {
  const [segment, ...rest] = segments
  if (segment === undefined) return replacement
  if (Array.isArray(value)) {
    const index = /^\d+$/.test(segment) ? Number(segment) : undefined
    if (index !== undefined) {
      if (index >= value.length) return value
      const out = [...value]
      out[index] = redactPath(value[index], rest, replacement)
      return out
    }
    const applyTo = segment === '*' ? rest : segments
    return value.map((item) => redactPath(item, applyTo, replacement))
  }
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>
    return Object.fromEntries(
      Object.entries(record).map(([key, entry]) =>
        segment === '*' || key === segment ? [key, redactPath(entry, rest, replacement)] : [key, entry],
      ),
    )
  }
  return value
}
