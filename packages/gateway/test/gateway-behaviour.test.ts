import { ActionDenied, Countersign, GatewayUnavailable, GrantRejected, WaitTimeout } from '@countersign/sdk'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openEventStream } from './support/event-stream.js'
import { call, freePort, castVote } from './support/gateway-process.js'
import { BACKENDS, PEOPLE, startTestGateway, type TestGateway } from './support/test-gateway.js'

const POLICY = `version: 1
defaults:
  effect: deny
groups:
  owners: [dana@example.com, omar@example.com]
rules:
  - name: tags-are-free
    match: { action: "cloud.tags.*" }
    effect: allow
  - name: exports-need-an-owner
    match: { action: db.export }
    effect: review
    review: { approvers: ["group:owners"], allow_edit: true }
  - name: no-drops
    match: { action: db.drop }
    effect: deny
`

const EXPORT = { action: 'db.export', resource: 'pg://prod/customers', environment: 'prod', reason: 'weekly churn report' }
const TAGS = { action: 'cloud.tags.set', resource: 'arn:aws:ec2:eu-west-1:1:instance/i-1', environment: 'prod' }

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip)(`gateway behaviour on ${backend.name}`, () => {
    let gw: TestGateway
    const token = (name: keyof typeof PEOPLE): string => gw.tokens[name] ?? ''

    beforeAll(async () => {
      gw = await startTestGateway({ backend: backend.name, policy: POLICY, keys: PEOPLE })
    })

    afterAll(async () => {
      await gw?.close()
    })

    const submit = (body: Record<string, unknown>, who: keyof typeof PEOPLE = 'agent') =>
      call(gw.url, token(who), 'POST', '/v1/requests', body)
    const get = async (id: string, who: keyof typeof PEOPLE = 'dana') => (await call(gw.url, token(who), 'GET', `/v1/requests/${id}`)).body
    const vote = (id: string, who: keyof typeof PEOPLE, body: Record<string, unknown>) =>
      castVote(gw.url, token(who), id, body)
    /** How many requests exist, counted as a human (who sees them all). */
    const requestCount = async (): Promise<number> => (await call(gw.url, token('dana'), 'GET', '/v1/requests?limit=200')).body.items.length
    const auditTypesSince = async (seq: number): Promise<string[]> => (await gw.auditSince(seq)).map((entry) => entry.type)

    describe('idempotency', () => {
      it('returns the same request with 200 when the requester retries with the same idempotency key', async () => {
        const body = { ...EXPORT, params: { table: 'orders' }, idempotency_key: 'nightly-2025-01-01' }
        const first = await submit(body)
        expect(first.status).toBe(201)
        const count = await requestCount()
        const head = await gw.auditHead()

        const retry = await submit(body)
        expect(retry.status).toBe(200)
        expect(retry.body.id).toBe(first.body.id)
        expect(retry.body.digest).toBe(first.body.digest)
        expect(retry.body.status).toBe('pending')
        expect(await requestCount()).toBe(count)
        expect(await auditTypesSince(head)).toEqual([])
      })

      it('refuses the same idempotency key with different params with idempotency_conflict and creates nothing', async () => {
        const first = await submit({ ...EXPORT, params: { table: 'invoices' }, idempotency_key: 'conflicting-key' })
        expect(first.status).toBe(201)
        const count = await requestCount()
        const head = await gw.auditHead()

        const conflict = await submit({ ...EXPORT, params: { table: 'payments' }, idempotency_key: 'conflicting-key' })
        expect([conflict.status, conflict.body.error.code]).toEqual([409, 'idempotency_conflict'])
        expect(conflict.body.error.details.request_id).toBe(first.body.id)
        expect(await requestCount()).toBe(count)
        expect(await auditTypesSince(head)).toEqual([])
        const original = await get(first.body.id, 'agent')
        expect([original.status, original.version, original.digest, original.params]).toEqual([
          'pending', 1, first.body.digest, { table: 'invoices' },
        ])
      })

      it('returns the pending request when the same action is submitted again without a key', async () => {
        const body = { ...EXPORT, params: { table: 'refunds' } }
        const first = await submit(body)
        expect(first.status).toBe(201)
        const count = await requestCount()
        const head = await gw.auditHead()

        const again = await submit(body)
        expect(again.status).toBe(200)
        expect(again.body.id).toBe(first.body.id)
        expect(await requestCount()).toBe(count)
        expect(await auditTypesSince(head)).toEqual([])
      })

      it('opens a new request for the same action without a key once the earlier one is decided', async () => {
        const body = { ...EXPORT, params: { table: 'shipments' } }
        const first = await submit(body)
        expect((await vote(first.body.id, 'dana', { decision: 'deny', reason: 'not this week' })).body.status).toBe('denied')
        const count = await requestCount()

        const second = await submit(body)
        expect(second.status).toBe(201)
        expect(second.body.id).not.toBe(first.body.id)
        expect(second.body.digest).toBe(first.body.digest)
        expect(await requestCount()).toBe(count + 1)
        expect((await get(first.body.id)).status).toBe('denied')
      })

      it('gives a different requester using the same idempotency key a request of its own', async () => {
        const body = { ...EXPORT, params: { table: 'leads' }, idempotency_key: 'shared-key' }
        const mine = await submit(body, 'agent')
        expect(mine.status).toBe(201)
        const count = await requestCount()

        const theirs = await submit(body, 'otherAgent')
        expect(theirs.status).toBe(201)
        expect(theirs.body.id).not.toBe(mine.body.id)
        expect(theirs.body.requester.id).toBe('report-bot')
        expect(await requestCount()).toBe(count + 1)
        const first = await get(mine.body.id, 'agent')
        expect([first.requester.id, first.status, first.votes]).toEqual(['etl-bot', 'pending', []])
      })
    })

    describe('ids', () => {
      it('gives requests and grants ids that start with their creation time and end with 96 random bits', async () => {
        const first = await submit({ ...TAGS, params: { owner: 'ids-1' } })
        await new Promise((resolve) => setTimeout(resolve, 5))
        const second = await submit({ ...TAGS, params: { owner: 'ids-2' } })
        for (const { body } of [first, second]) {
          expect(body.id).toMatch(/^req_[0-9a-f]{12}[0-9a-f]{24}$/)
          expect(body.grant.jti).toMatch(/^grt_[0-9a-f]{12}[0-9a-f]{24}$/)
          expect(parseInt(body.id.slice(4, 16), 16)).toBe(Date.parse(body.created_at))
        }
        expect(second.body.id > first.body.id).toBe(true)
        expect(second.body.grant.jti > first.body.grant.jti).toBe(true)
      })
    })

    describe('the event stream', () => {
      it('sends a human an event with the audit sequence as id and the request view whenever a request changes', async () => {
        const stream = await openEventStream(gw.url, token('dana'))
        try {
          const created = await submit({ ...EXPORT, params: { table: 'events-1' } })
          const opened = await stream.next()
          expect(opened.event).toBe('request')
          expect(opened.id).toMatch(/^\d+$/)
          expect(opened.data).toMatchObject({ id: created.body.id, status: 'pending', action: 'db.export', version: 1 })

          await vote(created.body.id, 'dana', { decision: 'approve', reason: 'fine' })
          const approved = await stream.next()
          expect(approved.event).toBe('request')
          expect(Number(approved.id)).toBeGreaterThan(Number(opened.id))
          expect(approved.data).toMatchObject({ id: created.body.id, status: 'approved' })
          expect(approved.data.votes).toEqual([expect.objectContaining({ voter_id: 'dana@example.com', decision: 'approve' })])
          // Only the requester ever sees the grant token.
          expect(approved.data.grant).toMatchObject({ status: 'issued', token: null })
          const latest = (await gw.auditSince(Number(opened.id))).filter((entry) => entry.requestId === created.body.id).at(-1)
          expect(Number(approved.id)).toBe(latest?.seq)
        } finally {
          stream.close()
        }
      })

      it('does not send an agent the requests of another agent', async () => {
        const stream = await openEventStream(gw.url, token('otherAgent'))
        try {
          const foreign = await submit({ ...EXPORT, params: { table: 'events-foreign' } }, 'agent')
          const own = await submit({ ...EXPORT, params: { table: 'events-own' } }, 'otherAgent')
          // Events leave in sequence order, so had the foreign request been sent it would come first.
          const first = await stream.next()
          expect(first.data.id).toBe(own.body.id)
          expect(first.data.id).not.toBe(foreign.body.id)
          expect(first.data.requester.id).toBe('report-bot')
        } finally {
          stream.close()
        }
      })

      it('replays the changes made while a client was disconnected when it reconnects with Last-Event-ID', async () => {
        const first = await openEventStream(gw.url, token('dana'))
        const earlier = await submit({ ...EXPORT, params: { table: 'events-replay-1' } })
        const seen = await first.next()
        expect(seen.data.id).toBe(earlier.body.id)
        first.close()

        await vote(earlier.body.id, 'omar', { decision: 'approve', reason: 'while you were away' })
        const later = await submit({ ...EXPORT, params: { table: 'events-replay-2' } })

        const resumed = await openEventStream(gw.url, token('dana'), Number(seen.id))
        try {
          const replayed = [await resumed.next(), await resumed.next()]
          expect(replayed.map((event) => [event.data.id, event.data.status])).toEqual([
            [earlier.body.id, 'approved'],
            [later.body.id, 'pending'],
          ])
          expect(replayed.every((event) => event.event === 'request' && Number(event.id) > Number(seen.id))).toBe(true)
          expect(Number(replayed[1]?.id)).toBeGreaterThan(Number(replayed[0]?.id))
        } finally {
          resumed.close()
        }
      })
    })

    describe('the SDK against the gateway', () => {
      it('runs the guarded function once, after approval, with the params the reviewer edited, and reports success', async () => {
        const cs = new Countersign({ url: gw.url, token: token('agent') })
        let announce: (id: string) => void = () => {}
        const created = new Promise<string>((resolve) => (announce = resolve))
        const runs: Array<Record<string, unknown>> = []
        const guarded = cs.guard(
          { ...EXPORT, params: { table: 'customers', limit: 1_000_000 } },
          (params) => {
            runs.push(params)
            return 'exported'
          },
          { onUpdate: (request) => announce(request.id), timeoutMs: 20_000 },
        )
        const id = await created
        expect(runs).toEqual([])
        const edited = await vote(id, 'dana', { decision: 'approve', reason: 'smaller', params: { table: 'customers', limit: 1000 } })
        // The editor's own approval never counts on their edit: another owner approves it.
        expect(edited.body.status).toBe('pending')
        const approved = await vote(id, 'omar', { decision: 'approve', digest: edited.body.digest, reason: 'the smaller one' })
        expect(approved.body.status).toBe('approved')

        expect(await guarded).toBe('exported')
        expect(runs).toEqual([{ table: 'customers', limit: 1000 }])
        const final = await get(id, 'agent')
        expect(final.result).toEqual({ outcome: 'succeeded', exit_code: null, detail: null })
        expect(final.grant.status).toBe('redeemed')
        expect(final.version).toBe(2)
        const types = (await gw.auditSince()).filter((entry) => entry.requestId === id).map((entry) => entry.type)
        expect(types.filter((type) => type === 'grant.redeemed')).toHaveLength(1)
        expect(types.at(-1)).toBe('request.result')
      })

      it('throws ActionDenied and never runs the function when the policy denies the action', async () => {
        const cs = new Countersign({ url: gw.url, token: token('agent') })
        let ran = false
        const attempt = cs.guard({ action: 'db.drop', resource: 'pg://prod/customers', environment: 'prod', params: {} }, () => {
          ran = true
        })
        const error = await attempt.catch((caught: unknown) => caught)
        expect(error).toBeInstanceOf(ActionDenied)
        expect((error as ActionDenied).deniedBy).toEqual([{ by: 'policy', id: 'no-drops', reason: null }])
        expect(ran).toBe(false)
        const request = await get((error as ActionDenied).request.id, 'agent')
        expect([request.status, request.grant, request.result]).toEqual(['denied', null, null])
      })

      it('throws ActionDenied and never runs the function when a reviewer denies the action', async () => {
        const cs = new Countersign({ url: gw.url, token: token('agent') })
        let announce: (id: string) => void = () => {}
        const created = new Promise<string>((resolve) => (announce = resolve))
        let ran = false
        const attempt = cs
          .guard({ ...EXPORT, params: { table: 'payroll' } }, () => {
            ran = true
          }, { onUpdate: (request) => announce(request.id), timeoutMs: 20_000 })
          .catch((caught: unknown) => caught)
        const id = await created
        await vote(id, 'omar', { decision: 'deny', reason: 'payroll stays put' })

        const error = await attempt
        expect(error).toBeInstanceOf(ActionDenied)
        expect((error as ActionDenied).deniedBy).toEqual([{ by: 'reviewer', id: 'omar@example.com', reason: 'payroll stays put' }])
        expect(ran).toBe(false)
        const request = await get(id, 'agent')
        expect([request.status, request.grant, request.result]).toEqual(['denied', null, null])
      })

      it('attaches a second guard() of the same action to the request the first left pending when its timeout ran out', async () => {
        const cs = new Countersign({ url: gw.url, token: token('agent') })
        const spec = { ...EXPORT, params: { table: 'retried' } }
        let runs = 0
        const seen: string[] = []
        const first = await cs
          .guard(spec, () => (runs += 1), { timeoutMs: 300, onUpdate: (request) => seen.push(request.id) })
          .catch((caught: unknown) => caught)
        expect(first).toBeInstanceOf(WaitTimeout)
        const id = (first as WaitTimeout).request.id
        expect((await get(id, 'agent')).status).toBe('pending')
        const count = await requestCount()

        let announce: (id: string) => void = () => {}
        const attached = new Promise<string>((resolve) => (announce = resolve))
        const second = cs.guard(spec, () => (runs += 1), { timeoutMs: 20_000, onUpdate: (request) => announce(request.id) })
        expect(await attached).toBe(id)
        expect(await requestCount()).toBe(count)
        const dana = new Countersign({ url: gw.url, token: token('dana') })
        await dana.vote(id, { decision: 'approve', digest: (await dana.get(id)).digest, reason: 'once' })
        expect(await second).toBe(1)
        expect(runs).toBe(1)
        expect(seen).toEqual([id])
      })

      it('gives two guard() calls in flight with the same spec one pending request, and runs the action once', async () => {
        const cs = new Countersign({ url: gw.url, token: token('agent') })
        const spec = { ...EXPORT, params: { table: 'twice-at-once' } }
        const count = await requestCount()
        let runs = 0
        const ids: string[] = []
        let announce: () => void = () => {}
        const bothCreated = new Promise<void>((resolve) => (announce = resolve))
        // Each guard's first update is the request its submission returned.
        const firstUpdate = (): ((request: { id: string }) => void) => {
          let seen = false
          return (request) => {
            if (seen) return
            seen = true
            ids.push(request.id)
            if (ids.length === 2) announce()
          }
        }
        const outcomes = Promise.allSettled([
          cs.guard(spec, () => (runs += 1), { timeoutMs: 20_000, onUpdate: firstUpdate() }),
          cs.guard(spec, () => (runs += 1), { timeoutMs: 20_000, onUpdate: firstUpdate() }),
        ])
        await bothCreated
        expect(new Set(ids).size).toBe(1)
        expect(await requestCount()).toBe(count + 1)
        const omar = new Countersign({ url: gw.url, token: token('omar') })
        await omar.vote(ids[0] ?? '', { decision: 'approve', digest: (await omar.get(ids[0] ?? '')).digest, reason: 'once' })
        const settled = await outcomes
        expect(runs).toBe(1)
        expect(settled.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1)
        const refused = settled.find((outcome) => outcome.status === 'rejected')
        expect((refused as PromiseRejectedResult).reason).toBeInstanceOf(GrantRejected)
        expect(((refused as PromiseRejectedResult).reason as GrantRejected).code).toBe('grant_already_redeemed')
      })

      it('opens a second pending request for the same action only when asked with newRequest', async () => {
        const cs = new Countersign({ url: gw.url, token: token('agent') })
        const spec = { ...EXPORT, params: { table: 'asked-twice' } }
        const first = await cs.request(spec)
        const again = await cs.request(spec)
        expect(again.id).toBe(first.id)
        const count = await requestCount()
        const fresh = await cs.request(spec, { newRequest: true })
        expect(fresh.id).not.toBe(first.id)
        expect(fresh.status).toBe('pending')
        expect(await requestCount()).toBe(count + 1)
        await expect(cs.request(spec, { newRequest: true, idempotencyKey: 'k' })).rejects.toThrow(TypeError)
      })

      it('still returns the first request for a caller-supplied idempotency key, even once it is decided', async () => {
        const cs = new Countersign({ url: gw.url, token: token('agent') })
        const spec = { ...EXPORT, params: { table: 'keyed' } }
        const first = await cs.request(spec, { idempotencyKey: 'sdk-keyed-1' })
        await cs.cancel(first.id)
        const again = await cs.request(spec, { idempotencyKey: 'sdk-keyed-1' })
        expect([again.id, again.status]).toEqual([first.id, 'cancelled'])
      })

      it('cancels the pending request when guard() is aborted, and never runs the function', async () => {
        const cs = new Countersign({ url: gw.url, token: token('agent') })
        const controller = new AbortController()
        let ran = false
        let id = ''
        const attempt = cs
          .guard({ ...EXPORT, params: { table: 'aborted' } }, () => (ran = true), {
            signal: controller.signal,
            onUpdate: (request) => {
              id = request.id
              controller.abort(new Error('the pipeline was stopped'))
            },
          })
          .catch((caught: unknown) => caught)
        expect(((await attempt) as Error).message).toBe('the pipeline was stopped')
        expect(ran).toBe(false)
        const request = await get(id, 'agent')
        expect([request.status, request.grant]).toEqual(['cancelled', null])
        const types = (await gw.auditSince()).filter((entry) => entry.requestId === id).map((entry) => entry.type)
        expect(types).toContain('request.cancelled')
      })

      it('records the channel a client declares and refuses a declared channel it may not claim, creating nothing', async () => {
        const cs = new Countersign({ url: gw.url, token: token('agent'), via: 'sdk' })
        const created = await cs.request({ ...EXPORT, params: { table: 'via' } })
        const reviewer = new Countersign({ url: gw.url, token: token('dana'), via: 'cli' })
        const voted = await reviewer.vote(created.id, { decision: 'approve', digest: created.digest, reason: 'fine' })
        expect(voted.votes.map((vote) => vote.via)).toEqual(['cli'])
        const head = await gw.auditHead()
        const count = await requestCount()

        const posing = await call(gw.url, token('agent'), 'POST', '/v1/requests', { ...EXPORT, params: { table: 'posing' } }, { 'x-countersign-via': 'slack' })
        expect([posing.status, posing.body.error.code]).toEqual([400, 'invalid_request'])
        expect(posing.body.error.message).toBe('The x-countersign-via header must be one of api, cli, sdk; leave it out for api.')
        expect(await requestCount()).toBe(count)
        expect(await auditTypesSince(head)).toEqual([])
        expect(() => new Countersign({ url: gw.url, token: 'x', via: 'slack' as 'sdk' })).toThrow(TypeError)
      })

      it('redeems a grant exactly once when ten calls race to redeem it', async () => {
        const cs = new Countersign({ url: gw.url, token: token('agent') })
        const approved = await cs.request({ ...TAGS, params: { team: 'race' } })
        expect(approved.status).toBe('approved')
        const grantToken = approved.grant?.token ?? ''

        const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => cs.redeem(grantToken, approved.digest)))
        const fulfilled = outcomes.filter((outcome) => outcome.status === 'fulfilled')
        const rejected = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as unknown] : []))
        expect(fulfilled).toHaveLength(1)
        expect(rejected).toHaveLength(9)
        for (const reason of rejected) {
          expect(reason).toBeInstanceOf(GrantRejected)
          expect([(reason as GrantRejected).code, (reason as GrantRejected).status]).toEqual(['grant_already_redeemed', 409])
        }
        expect((await get(approved.id, 'agent')).grant.status).toBe('redeemed')
        const entries = (await gw.auditSince()).filter((entry) => entry.requestId === approved.id).map((entry) => entry.type)
        expect(entries.filter((type) => type === 'grant.redeemed')).toHaveLength(1)
      })
    })

    describe('API keys', () => {
      it('refuses a revoked key on its very next call', async () => {
        const { token: doomed, keyId } = await gw.createKey({ kind: 'agent', id: 'short-lived-bot' })
        expect((await call(gw.url, doomed, 'GET', '/v1/requests')).status).toBe(200)
        const head = await gw.auditHead()

        const revoked = await call(gw.url, gw.adminToken, 'POST', `/v1/keys/${keyId}/revoke`, {})
        expect(revoked.status).toBe(200)
        expect(revoked.body.revoked_at).toEqual(expect.any(String))

        const after = await call(gw.url, doomed, 'GET', '/v1/requests')
        expect([after.status, after.body.error.code]).toEqual([401, 'unauthenticated'])
        const refused = await call(gw.url, doomed, 'POST', '/v1/requests', { ...TAGS, params: { team: 'revoked' } })
        expect([refused.status, refused.body.error.code]).toEqual([401, 'unauthenticated'])
        expect((await call(gw.url, token('agent'), 'GET', '/v1/requests')).status).toBe(200)
        expect((await gw.auditSince(head)).map((entry) => [entry.type, entry.data.key_id])).toEqual([['key.revoked', keyId]])
      })

      it('refuses a non-admin listing or revoking keys with forbidden and changes no key', async () => {
        const before = (await call(gw.url, gw.adminToken, 'GET', '/v1/keys')).body.items
        const head = await gw.auditHead()

        const list = await call(gw.url, token('dana'), 'GET', '/v1/keys')
        expect([list.status, list.body.error.code]).toEqual([403, 'forbidden'])
        const target = before.find((key: { principal_id: string }) => key.principal_id === 'omar@example.com')
        const revoke = await call(gw.url, token('dana'), 'POST', `/v1/keys/${target.id}/revoke`, {})
        expect([revoke.status, revoke.body.error.code]).toEqual([403, 'forbidden'])

        expect((await call(gw.url, gw.adminToken, 'GET', '/v1/keys')).body.items).toEqual(before)
        expect(await auditTypesSince(head)).toEqual([])
        expect((await call(gw.url, token('omar'), 'GET', '/v1/requests')).status).toBe(200)
      })

      it('refuses a vote from the admin key, a human who is no approver here, with not_an_approver and counts nothing', async () => {
        const created = await submit({ ...EXPORT, params: { table: 'admin-vote' } })
        const head = await gw.auditHead()

        const refused = await castVote(gw.url, gw.adminToken, created.body.id, { decision: 'approve', reason: 'I am root' })
        expect([refused.status, refused.body.error.code]).toEqual([403, 'not_an_approver'])
        const after = await get(created.body.id)
        expect([after.status, after.votes, after.review.requirements[0].approvals]).toEqual(['pending', [], []])
        expect((await gw.auditSince(head)).map((entry) => [entry.type, entry.data.code])).toEqual([['vote.refused', 'not_an_approver']])
      })
    })
  })
}

describe('the SDK without a gateway', () => {
  it('fails with GatewayUnavailable and never runs the guarded function when the gateway is down', async () => {
    const cs = new Countersign({ url: `http://127.0.0.1:${await freePort()}`, token: 'cs_unused', requestTimeoutMs: 1500 })
    let ran = false
    const error = await cs
      .guard({ ...TAGS, params: { team: 'offline' } }, () => {
        ran = true
      })
      .catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(GatewayUnavailable)
    expect((error as GatewayUnavailable).code).toBe('gateway_unavailable')
    expect(ran).toBe(false)
  })
})
