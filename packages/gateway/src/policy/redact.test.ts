import { describe, expect, it } from 'vitest'
import { redactString, redactValue } from './index.js'
import { passesLuhn } from './redact.js'

/*
 * Secret-looking fixtures are assembled at run time so the source file itself
 * does not trip secret scanners.
 */
const repeat = (text: string, times: number): string => text.repeat(times)
const awsKey = `AKIA${'IOSFODNN7EXAMPLE'}`
const githubToken = `ghp_${repeat('a1B2', 9)}`
const jwt = [
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9',
  'eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ',
  'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
].join('.')

describe('redactString', () => {
  it.each([
    ['an AWS access key id', `key=${awsKey}`, 'key=[redacted:aws_access_key]'],
    ['an AWS temporary key id', `ASIA${repeat('Z', 16)} in use`, '[redacted:aws_access_key] in use'],
    ['a GitHub personal token', `token ${githubToken}`, 'token [redacted:github_token]'],
    ['a GitHub OAuth token', `gho_${repeat('x', 36)}`, '[redacted:github_token]'],
    ['a GitHub app token', `ghs_${repeat('Q', 36)}`, '[redacted:github_token]'],
    ['a fine-grained GitHub token', `github_pat_${repeat('A1_', 20)}`, '[redacted:github_token]'],
    ['a Slack bot token', `xoxb-${'1234567890'}-${'abcdefABCDEF'}`, '[redacted:slack_token]'],
    ['a Slack user token', `xoxp-${'1234567890-1234567890'}`, '[redacted:slack_token]'],
    ['an OpenAI-style key', `OPENAI_API_KEY=sk-${repeat('Ab3', 16)}`, 'OPENAI_API_KEY=[redacted:openai_key]'],
    ['an OpenAI project key', `sk-proj-${repeat('Zz9_', 10)}`, '[redacted:openai_key]'],
    ['a JWT', `Bearer ${jwt}`, 'Bearer [redacted:jwt]'],
    [
      'a PEM private key',
      `key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----\nend`,
      'key:\n[redacted:private_key]\nend',
    ],
    ['a PEM private key cut off before its end', '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg', '[redacted:private_key]'],
    [
      'a password in a connection string',
      'postgres://app:hunter2@db.internal:5432/app',
      'postgres://app:[redacted:password]@db.internal:5432/app',
    ],
    ['a password in a URL with an empty user', 'redis://:s3cret@cache:6379', 'redis://:[redacted:password]@cache:6379'],
    ['a card number with spaces', 'card 4111 1111 1111 1111 on file', 'card [redacted:card_number] on file'],
    ['a card number with dashes', '5500-0000-0000-0004', '[redacted:card_number]'],
    ['a 15-digit Amex number', '378282246310005', '[redacted:card_number]'],
    ['an email address', 'mail dana@example.com now', 'mail [redacted:email] now'],
    ['an email address in a path', '/plans/dana@example.com.tfplan', '/plans/[redacted:email]'],
  ])('redacts %s', (_kind, input, expected) => {
    expect(redactString(input)).toBe(expected)
  })

  it.each([
    ['a word that starts like an AWS key', 'AKIA-not-a-key'],
    ['a short AWS-like prefix', `AKIA${repeat('A', 10)}`],
    ['a GitHub-style prefix with a short body', 'ghp_short'],
    ['a Slack-like word', 'xoxb-'],
    ['an sk- word that is not a key', 'use the sk-learn package'],
    ['text with eyJ but not three segments', 'eyJhbGciOiJIUzI1NiJ9 only'],
    ['a public key', '-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----'],
    ['a URL with a user but no password', 'postgres://app@db.internal/app'],
    ['a URL with a port but no user', 'https://example.com:8443/path?q=1'],
    ['a 16-digit number that fails Luhn', '4111 1111 1111 1112'],
    ['a 13-digit millisecond timestamp', '1767225600000'],
    ['a 12-digit number', '411111111111'],
    ['an at sign without a domain', 'ping @dana on slack'],
    ['a version string', 'node v24.1.0 build 20260101'],
  ])('keeps %s', (_kind, input) => {
    expect(redactString(input)).toBe(input)
  })
})

describe('passesLuhn', () => {
  it('accepts valid card numbers and rejects near misses', () => {
    expect(passesLuhn('4111111111111111')).toBe(true)
    expect(passesLuhn('4111111111111112')).toBe(false)
    expect(passesLuhn('79927398713')).toBe(true)
  })
})

describe('redactValue', () => {
  it('replaces a policy path with a marker naming the path', () => {
    expect(redactValue({ params: { filter: { email: 'x', country: 'DE' } } }, ['params.filter.email'])).toEqual({
      params: { filter: { email: '[redacted:params.filter.email]', country: 'DE' } },
    })
  })

  it('replaces whole objects and lists at a path', () => {
    expect(redactValue({ params: { body: { a: 1 }, rows: [1, 2] } }, ['params.body', 'params.rows'])).toEqual({
      params: { body: '[redacted:params.body]', rows: '[redacted:params.rows]' },
    })
  })

  it('applies * to any key and named segments to every list element', () => {
    const value = { params: { users: [{ ssn: '1', name: 'a' }, { ssn: '2', name: 'b' }], meta: { x: 1, y: 2 } } }
    expect(redactValue(value, ['params.users.ssn', 'params.meta.*'])).toEqual({
      params: {
        users: [
          { ssn: '[redacted:params.users.ssn]', name: 'a' },
          { ssn: '[redacted:params.users.ssn]', name: 'b' },
        ],
        meta: { x: '[redacted:params.meta.*]', y: '[redacted:params.meta.*]' },
      },
    })
  })

  it('indexes lists with numeric segments', () => {
    expect(redactValue({ params: { args: ['run', 'secret-arg'] } }, ['params.args.1', 'params.args.7'])).toEqual({
      params: { args: ['run', '[redacted:params.args.1]'] },
    })
  })

  it('ignores paths that do not exist', () => {
    expect(redactValue({ params: { a: 1 } }, ['params.b.c', 'context.x'])).toEqual({ params: { a: 1 } })
  })

  it('runs the detectors over every string and number at any depth', () => {
    expect(redactValue({ a: [{ b: `use ${awsKey}` }], n: 4111111111111111, ms: 1767225600000, t: true, z: null })).toEqual({
      a: [{ b: 'use [redacted:aws_access_key]' }],
      n: '[redacted:card_number]',
      ms: 1767225600000,
      t: true,
      z: null,
    })
  })

  it.each([[4111111111111111], [5555555555554444], [-4012888888881881], [378282246310005]])(
    'redacts the card number %d sent as a JSON number',
    (card) => {
      expect(redactValue({ params: { card }, list: [card] })).toEqual({
        params: { card: '[redacted:card_number]' },
        list: ['[redacted:card_number]'],
      })
    },
  )

  it.each([[4111111111111112], [1767225600000], [9007199254740991], [42], [4.111111111111111e15 + 0.5]])('keeps the number %d, which is no card number', (number) => {
    expect(redactValue({ number })).toEqual({ number })
  })

  it('runs the detectors over keys, keeping every member when two keys redact alike', () => {
    const other = 'ghp_' + 'b'.repeat(36)
    expect(redactValue({ params: { [githubToken]: true, [other]: 2, [awsKey]: { note: 'x' } }, context: { [`${awsKey}-role`]: 'ops' } })).toEqual({
      params: { '[redacted:github_token]': true, '[redacted:github_token] (2)': 2, '[redacted:aws_access_key]': { note: 'x' } },
      context: { '[redacted:aws_access_key]-role': 'ops' },
    })
  })

  it('applies policy paths to keys as they were sent, before the detectors rename them', () => {
    expect(redactValue({ params: { [githubToken]: { ssn: '123' } } }, [`params.${githubToken}.ssn`])).toEqual({
      params: { '[redacted:github_token]': { ssn: '[redacted:params.[redacted:github_token].ssn]' } },
    })
  })

  it('replaces values under credential-named keys whatever they look like', () => {
    expect(redactValue({ password: 'hunter2', API_KEY: 'abc', clientSecret: 'xyz', token: '', user: 'app' })).toEqual({
      password: '[redacted:password]',
      API_KEY: '[redacted:secret]',
      clientSecret: '[redacted:secret]',
      token: '',
      user: 'app',
    })
  })

  it.each([
    ['password', 'password'],
    ['passwords', 'password'],
    ['passwd', 'password'],
    ['pwd', 'password'],
    ['passphrase', 'password'],
    ['db_password', 'password'],
    ['DB_PASSWORD', 'password'],
    ['dbPassword', 'password'],
    ['dbpassword', 'password'],
    ['db-password', 'password'],
    ['smtpPasswd', 'password'],
    ['password_min_length', 'password'],
    ['password-confirmation', 'password'],
    ['password2', 'password'],
    ['secret', 'secret'],
    ['secrets', 'secret'],
    ['client_secret', 'secret'],
    ['aws_secret_access_key', 'secret'],
    ['AWS_SECRET_ACCESS_KEY', 'secret'],
    ['webhookSecret', 'secret'],
    ['clientsecret', 'secret'],
    ['token', 'secret'],
    ['Token', 'secret'],
    ['access_token', 'secret'],
    ['refreshToken', 'secret'],
    ['auth-token', 'secret'],
    ['accesstoken', 'secret'],
    ['oauth2Token', 'secret'],
    ['token_count', 'secret'],
    ['api_key', 'secret'],
    ['apiKey', 'secret'],
    ['api-key', 'secret'],
    ['APIKey', 'secret'],
    ['apikey', 'secret'],
    ['api_keys', 'secret'],
    ['x-api-key', 'secret'],
    ['signing_key', 'secret'],
    ['encryptionKey', 'secret'],
    ['credentials', 'secret'],
    ['credential', 'secret'],
    ['gcpCredentials', 'secret'],
    ['authorization', 'secret'],
    ['Proxy-Authorization', 'secret'],
    ['cookie', 'secret'],
    ['set-cookie', 'secret'],
    ['session', 'secret'],
    ['session_id', 'secret'],
    ['session_timeout', 'secret'],
    ['private_key', 'private_key'],
    ['privateKey', 'private_key'],
    ['ssh-private-key', 'private_key'],
  ])('treats the key %s as a credential', (key, kind) => {
    expect(redactValue({ [key]: 'plain' })).toEqual({ [key]: `[redacted:${kind}]` })
  })

  it.each([
    'tokenizer',
    'max_tokens',
    'maxTokens',
    'passthrough',
    'secretary',
    'total_tokens',
    'possession',
    'cookbook',
    'key',
    'keyword',
    'monkey',
    'access_key_id',
    'author',
    'passenger',
    'user',
  ])('leaves the key %s visible', (key) => {
    expect(redactValue({ [key]: 'plain' })).toEqual({ [key]: 'plain' })
  })

  it.each([
    ['a string', 'hunter2'],
    ['a number', 31337],
    ['zero', 0],
    ['a boolean', false],
    ['a list', ['hunter2']],
    ['an empty list', []],
    ['an object', { value: 'abc123' }],
    ['an object with a secret inside', { nested: { deeper: 'hunter2' } }],
  ])('replaces %s under a credential-named key whole', (_type, value) => {
    expect(redactValue({ password: value, token: value })).toEqual({
      password: '[redacted:password]',
      token: '[redacted:secret]',
    })
  })

  it('keeps an empty or null credential, which hides nothing', () => {
    expect(redactValue({ password: '', token: null })).toEqual({ password: '', token: null })
  })

  it('hides every credential in the reported request', () => {
    const params = {
      password: ['hunter2'],
      token: 31337,
      api_key: { value: 'abc123' },
      aws_secret_access_key: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      db_password: 'hunter2',
    }
    expect(redactValue({ params })).toEqual({
      params: {
        password: '[redacted:password]',
        token: '[redacted:secret]',
        api_key: '[redacted:secret]',
        aws_secret_access_key: '[redacted:secret]',
        db_password: '[redacted:password]',
      },
    })
  })

  it('finds credential-named keys inside lists and nested objects', () => {
    const value = {
      params: {
        targets: [
          { host: 'db1', credentials: { user: 'app', password: 'hunter2' } },
          { host: 'db2', auth: { accessToken: 7 } },
        ],
      },
    }
    expect(redactValue(value)).toEqual({
      params: {
        targets: [
          { host: 'db1', credentials: '[redacted:secret]' },
          { host: 'db2', auth: { accessToken: '[redacted:secret]' } },
        ],
      },
    })
  })

  it('leaves the real params untouched for the digest while returning a redacted copy', () => {
    const params = { password: ['hunter2'], api_key: { value: 'abc123' }, nested: [{ token: 31337 }] }
    const snapshot = structuredClone(params)
    const result = redactValue({ params })
    expect(params).toEqual(snapshot)
    expect(result.params).not.toBe(params)
    expect(result.params.nested).not.toBe(params.nested)
    expect(result.params).toEqual({
      password: '[redacted:password]',
      api_key: '[redacted:secret]',
      nested: [{ token: '[redacted:secret]' }],
    })
  })

  it('never modifies its input', () => {
    const input = { params: { filter: { email: 'dana@example.com' } } }
    const snapshot = structuredClone(input)
    redactValue(input, ['params.filter'])
    expect(input).toEqual(snapshot)
  })

  it('keeps a __proto__ key as plain data', () => {
    const input = JSON.parse('{"__proto__": {"polluted": "dana@example.com"}}') as Record<string, unknown>
    const result = redactValue(input, ['__proto__.polluted'])
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype)
    expect(Object.hasOwn(result, '__proto__')).toBe(true)
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
  })
})
