import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { canonicalDigest } from '../src/core/index.js'
import { call, castVote } from './support/gateway-process.js'
import { OWNERS_REVIEW_EXPORTS } from './support/policies.js'
import { BACKENDS, PEOPLE, startTestGateway, type TestGateway } from './support/test-gateway.js'

const POLICY = OWNERS_REVIEW_EXPORTS

const alnum = (min: number, max: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789'), minLength: min, maxLength: max })
const upperAlnum = (length: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'), minLength: length, maxLength: length })

/** Sixteen digits starting with 4 that pass the Luhn check, like a Visa number. */
const cardNumber = fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 14, maxLength: 14 }).map((digits) => {
  const body = [4, ...digits]
  let sum = 0
  for (let i = 0; i < body.length; i++) {
    let digit = body[body.length - 1 - i] ?? 0
    if (i % 2 === 0) digit = digit * 2 > 9 ? digit * 2 - 9 : digit * 2
    sum += digit
  }
  return [...body, (10 - (sum % 10)) % 10].join('')
})

/** A secret as it is sent (`text`) and the part of it that must never be seen again (`needle`). */
interface Secret {
  text: string
  needle: string
}

/** The kinds whose secrets fit in a dotted action name. */
const ACTION_SAFE = new Set(['github', 'aws', 'slack', 'openai', 'card'])

/** Secrets of every kind the detectors know, with random bodies. */
const SECRETS: Record<string, fc.Arbitrary<Secret>> = {
  github: alnum(36, 40).map((s) => ({ text: `ghp_${s}`, needle: `ghp_${s}` })),
  aws: upperAlnum(16).map((s) => ({ text: `AKIA${s}`, needle: `AKIA${s}` })),
  slack: alnum(12, 30).map((s) => ({ text: `xoxb-${s}`, needle: `xoxb-${s}` })),
  openai: alnum(24, 48).map((s) => ({ text: `sk-${s}`, needle: `sk-${s}` })),
  jwt: fc.tuple(alnum(12, 20), alnum(12, 20), alnum(12, 20)).map(([a, b, c]) => {
    const jwt = `eyJ${a}.eyJ${b}.${c}`
    return { text: jwt, needle: jwt }
  }),
  password: alnum(10, 16).map((s) => ({ text: `postgres://app:Pw${s}@db.internal:5432/app`, needle: `Pw${s}` })),
  card: cardNumber.map((digits) => ({ text: digits, needle: digits })),
  email: alnum(8, 12).map((s) => ({ text: `u${s.toLowerCase()}@corp-mail.com`, needle: `u${s.toLowerCase()}@corp-mail.com` })),
  private_key: alnum(30, 40).map((s) => ({ text: `-----BEGIN PRIVATE KEY-----\nMII${s}\n-----END PRIVATE KEY-----`, needle: `MII${s}` })),
}

/** Where in a request or a vote the secret is put. */
const PLACES = [
  'action',
  'resource',
  'environment',
  'reason',
  'params value',
  'params key',
  'params number',
  'context value',
  'context key',
  'bind path',
  'vote reason',
  'edit value',
  'edit key',
  'cancel reason',
  'result detail',
] as const
type Place = (typeof PLACES)[number]

/** Everything the gateway streams on `GET /v1/events`, as raw text, for one subscriber. */
interface RawStream {
  text(): string
  /** Resolves once an event with an id of at least `seq` has arrived. */
  reached(seq: number): Promise<void>
  close(): void
}

async function openRawStream(url: string, token: string): Promise<RawStream> {
  const controller = new AbortController()
  const response = await fetch(`${url}/v1/events`, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal })
  expect(response.status).toBe(200)
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  const decoder = new TextDecoder()
  let text = ''
  let lastId = 0
  let waiters: Array<() => void> = []
  const pump = async (): Promise<void> => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      text += decoder.decode(value, { stream: true })
      for (const match of text.matchAll(/^id: (\d+)$/gm)) lastId = Math.max(lastId, Number(match[1]))
      const woken = waiters
      waiters = []
      for (const wake of woken) wake()
    }
  }
  // The read fails once close() aborts the stream; that ends the pump.
  pump().catch(() => undefined)
  return {
    text: () => text,
    async reached(seq) {
      while (lastId < seq) await new Promise<void>((resolve) => waiters.push(resolve))
    },
    close: () => controller.abort(),
  }
}

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip)(`secrets stay out of every view, event, audit entry, export and log line on ${backend.name}`, () => {
    let gw: TestGateway
    let stream: RawStream
    const logLines: string[] = []

    beforeAll(async () => {
      gw = await startTestGateway({ backend: backend.name, policy: POLICY, keys: PEOPLE, log: (line) => logLines.push(line) })
      stream = await openRawStream(gw.url, gw.tokens.dana ?? '')
    })

    afterAll(async () => {
      stream?.close()
      await gw?.close()
    })

    /** Where each growing surface stood before a request was made, so a check reads only what is new. */
    interface Mark {
      seq: number
      logLines: number
      streamed: number
    }

    const mark = async (): Promise<Mark> => ({ seq: await gw.auditHead(), logLines: logLines.length, streamed: stream.text().length })

    /** Every text a person or the log sees of request `id` since `from`, by surface. */
    async function surfaces(id: string, from: Mark): Promise<Record<string, string>> {
      await stream.reached(await gw.auditHead())
      const newLines = (text: string, separator: string): string =>
        text.split(separator).filter((line) => Number(/^\{"seq":(\d+)|^(\d+),/.exec(line)?.slice(1).find(Boolean) ?? 0) > from.seq).join(separator)
      const views: Record<string, string> = {}
      for (const who of ['dana', 'omar', 'sofia'] as const) {
        views[`view for ${who}`] = JSON.stringify((await call(gw.url, gw.tokens[who], 'GET', `/v1/requests/${id}`)).body)
      }
      views['view for the admin'] = JSON.stringify((await call(gw.url, gw.adminToken, 'GET', `/v1/requests/${id}`)).body)
      const own = (await call(gw.url, gw.tokens.agent, 'GET', `/v1/requests/${id}`)).body
      // The requester alone gets the real params, which it must run exactly; the rest of its view is redacted too.
      views["requester's view without its params"] = JSON.stringify({ ...own, params: undefined, grant: undefined })
      views.list = JSON.stringify((await call(gw.url, gw.tokens.dana, 'GET', '/v1/requests?limit=200')).body)
      views['event stream'] = stream.text().slice(from.streamed)
      const entries = await gw.auditSince(from.seq)
      expect(entries.length).toBeGreaterThan(0)
      views['audit entries'] = JSON.stringify(entries)
      views['audit export (jsonl)'] = newLines(await gw.exportAudit('jsonl'), '\n')
      views['audit export (csv)'] = newLines(await gw.exportAudit('csv'), '\r\n')
      expect(views['audit export (jsonl)'].split('\n')).toHaveLength(entries.length)
      expect(views['audit export (csv)'].split('\r\n')).toHaveLength(entries.length)
      views['log lines'] = logLines.slice(from.logLines).join('')
      return views
    }

    async function expectNowhere(id: string, needle: string, from: Mark): Promise<void> {
      for (const [surface, text] of Object.entries(await surfaces(id, from))) {
        expect(text.includes(needle), `${needle} appears in the ${surface}`).toBe(false)
      }
    }

    /** Submits as the agent and checks the request was filed. */
    async function submit(
      body: Record<string, unknown>,
    ): Promise<{ id: string; digest: string; params: Record<string, unknown>; status: string; grant: { token: string } | null }> {
      const created = await call(gw.url, gw.tokens.agent, 'POST', '/v1/requests', body)
      expect(created.status, JSON.stringify(created.body)).toBe(201)
      return created.body
    }

    it('redacts a GitHub token in the reason', async () => {
      const from = await mark()
      const token = `ghp_${'R3as0n'.repeat(6)}`
      const created = await submit({ action: 'db.export', resource: 'orders', environment: 'prod', params: { run: randomUUID() }, reason: `deploy with ${token}` })
      const view = (await call(gw.url, gw.tokens.dana, 'GET', `/v1/requests/${created.id}`)).body
      expect(view.reason).toBe('deploy with [redacted:github_token]')
      await expectNowhere(created.id, token, from)
    })

    it('redacts the password of a postgres:// resource, while the digest binds the real resource', async () => {
      const from = await mark()
      const resource = 'postgres://app:Hunter2Secret@db.internal:5432/orders'
      const params = { run: randomUUID() }
      const created = await submit({ action: 'db.export', resource, environment: 'prod', params })
      const view = (await call(gw.url, gw.tokens.dana, 'GET', `/v1/requests/${created.id}`)).body
      expect(view.resource).toBe('postgres://app:[redacted:password]@db.internal:5432/orders')
      expect(view.digest).toBe(canonicalDigest({ action: 'db.export', resource, environment: 'prod', params }))
      await expectNowhere(created.id, 'Hunter2Secret', from)
    })

    it('redacts a token used as a params key, and hands the requester its real params', async () => {
      const from = await mark()
      const token = `ghp_${'K3yT0k'.repeat(6)}`
      const params = { [token]: true, run: randomUUID() }
      const created = await submit({ action: 'db.export', resource: 'orders', environment: 'prod', params })
      expect(created.params).toEqual(params)
      const view = (await call(gw.url, gw.tokens.dana, 'GET', `/v1/requests/${created.id}`)).body
      expect(view.params).toEqual({ '[redacted:github_token]': true, run: params.run })
      expect(view.digest).toBe(canonicalDigest({ action: 'db.export', resource: 'orders', environment: 'prod', params }))
      await expectNowhere(created.id, token, from)
    })

    it('redacts an AWS key used as a context key', async () => {
      const from = await mark()
      const key = 'AKIAZ7QWERTYUIOPASDF'
      const created = await submit({ action: 'db.export', resource: 'orders', environment: 'prod', params: { run: randomUUID() }, context: { [key]: 'role/deploy' } })
      const view = (await call(gw.url, gw.tokens.dana, 'GET', `/v1/requests/${created.id}`)).body
      expect(view.context).toEqual({ '[redacted:aws_access_key]': 'role/deploy' })
      await expectNowhere(created.id, key, from)
    })

    it('redacts a Slack token in a vote reason', async () => {
      const from = await mark()
      const token = 'xoxb-2048-Vote4Reason-QwErTy'
      const created = await submit({ action: 'db.export', resource: 'orders', environment: 'prod', params: { run: randomUUID() } })
      const vote = await castVote(gw.url, gw.tokens.dana, created.id, { decision: 'deny', reason: `use ${token} instead` })
      expect(vote.status).toBe(200)
      expect(vote.body.votes[0].reason).toBe('use [redacted:slack_token] instead')
      await expectNowhere(created.id, token, from)
    })

    it('redacts an OpenAI-style key in a cancel reason', async () => {
      const from = await mark()
      const key = 'sk-proj-Canc3lReasonKey0123456789'
      const created = await submit({ action: 'db.export', resource: 'orders', environment: 'prod', params: { run: randomUUID() } })
      const cancelled = await call(gw.url, gw.tokens.agent, 'POST', `/v1/requests/${created.id}/cancel`, { reason: `rotated ${key}` })
      expect(cancelled.body.status).toBe('cancelled')
      const entry = (await gw.auditSince(0)).find((e) => e.type === 'request.cancelled' && e.requestId === created.id)
      expect(entry?.data).toEqual({ reason: 'rotated [redacted:openai_key]' })
      await expectNowhere(created.id, key, from)
    })

    it('redacts a card number sent as a JSON number, and hands the requester the number', async () => {
      const from = await mark()
      const params = { card: 4111111111111111, run: randomUUID() }
      const created = await submit({ action: 'db.export', resource: 'orders', environment: 'prod', params })
      expect(created.params).toEqual(params)
      const view = (await call(gw.url, gw.tokens.dana, 'GET', `/v1/requests/${created.id}`)).body
      expect(view.params.card).toBe('[redacted:card_number]')
      await expectNowhere(created.id, '4111111111111111', from)
    })

    it('keeps a secret in a query string out of the log', async () => {
      const token = `ghp_${'Qu3ryS'.repeat(6)}`
      const listed = await call(gw.url, gw.tokens.dana, 'GET', `/v1/requests?action=${token}`)
      expect(listed.status).toBe(200)
      expect(logLines.some((line) => line.includes('/v1/requests?action=[redacted:github_token]'))).toBe(true)
      expect(logLines.join('')).not.toContain(token)
    })

    /** Puts `hidden` at `place`, takes the request through to a decision, and checks every surface. */
    async function showsNowhere(hidden: Secret, place: Place): Promise<void> {
      const from = await mark()
      const text = `see ${hidden.text} here`
      const params: Record<string, unknown> = { run: randomUUID() }
      const body: Record<string, unknown> = { action: 'db.export', resource: 'orders', environment: 'prod', params }
      if (place === 'action') body.action = `ops.${hidden.text}`
      if (place === 'resource') body.resource = text
      if (place === 'environment') body.environment = hidden.text
      if (place === 'reason') body.reason = text
      if (place === 'params value') params.query = { where: [text] }
      if (place === 'params key') params[hidden.text] = 'x'
      if (place === 'params number') params.amount = Number(hidden.text)
      if (place === 'context value') body.context = { note: text }
      if (place === 'context key') body.context = { [hidden.text]: 'x' }
      if (place === 'bind path') body.bind = [{ path: `/plans/${hidden.text}.tfplan`, sha256: 'a'.repeat(64) }]
      if (place === 'result detail') body.action = 'cloud.tags.set'
      const created = await submit(body)
      const path = `/v1/requests/${created.id}`
      if (place === 'vote reason') {
        expect((await castVote(gw.url, gw.tokens.dana, created.id, { decision: 'deny', reason: text })).status).toBe(200)
      } else if (place === 'edit value' || place === 'edit key') {
        const edited = place === 'edit value' ? { ...params, note: text } : { ...params, [hidden.text]: 1 }
        const vote = await castVote(gw.url, gw.tokens.dana, created.id, { decision: 'approve', params: edited })
        expect(vote.status, JSON.stringify(vote.body)).toBe(200)
      } else if (place === 'cancel reason') {
        expect((await call(gw.url, gw.tokens.agent, 'POST', `${path}/cancel`, { reason: text })).status).toBe(200)
      } else if (place === 'result detail') {
        const redeemed = await call(gw.url, gw.tokens.agent, 'POST', '/v1/grants/redeem', { token: created.grant?.token, digest: created.digest })
        expect(redeemed.status).toBe(200)
        expect((await call(gw.url, gw.tokens.agent, 'POST', `${path}/result`, { outcome: 'failed', detail: text })).status).toBe(200)
      } else if (created.status === 'pending') {
        expect((await castVote(gw.url, gw.tokens.dana, created.id, { decision: 'deny' })).status).toBe(200)
      }
      await expectNowhere(created.id, hidden.needle, from)
    }

    it('never shows a secret of any kind placed anywhere in a request or a vote', async () => {
      // Every kind at every place, each time with new random secrets, so no pair is left to chance.
      for (const place of PLACES) {
        for (const [kind, arbitrary] of Object.entries(SECRETS)) {
          if (place === 'action' && !ACTION_SAFE.has(kind)) continue
          if (place === 'params number' && kind !== 'card') continue
          await fc.assert(fc.asyncProperty(arbitrary, (hidden) => showsNowhere(hidden, place)), { numRuns: 1 })
        }
      }
    })
  })
}
