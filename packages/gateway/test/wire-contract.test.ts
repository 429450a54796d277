import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest'
import type { z } from 'zod'
import { Countersign } from '../../sdk/src/countersign.js'
import { errorFromResponse } from '../../sdk/src/errors.js'
import { parseRedemption, parseRequestPage, parseRequestView, requestViewOf } from '../../sdk/src/parse-request-view.js'
import type { ActionRequest, Redemption, ResultInput, VoteInput } from '../../sdk/src/types.js'
import * as sdkContract from '../../sdk/src/wire-contract.generated.js'
import {
  apiKeyListSchema,
  apiKeyViewSchema,
  auditCheckpointSchema,
  auditPublicKeySchema,
  createdApiKeySchema,
  errorBodySchema,
  redemptionSchema,
  requestPageSchema,
  requestViewSchema,
} from '../src/contract/index.js'
import { httpStatusFor, LOCAL_ERROR_CODES, WIRE_ERROR_CODES, type WireErrorCode } from '../src/core/index.js'
import type { resultBody, voteBody } from '../src/server/api-schemas.js'
import { call, castVote, runCli } from './support/gateway-process.js'
import { PEOPLE, startTestGateway, type TestGateway } from './support/test-gateway.js'

/*
 * The wire contract, checked against a real gateway over HTTP: every answer
 * below goes through the zod schemas the gateway is typed by, through the
 * schema the OpenAPI document names for that route and status, and through the
 * SDK's parser, which must give back every field it was sent.
 */

const POLICY = `version: 1
defaults:
  effect: deny
groups:
  owners: [dana@example.com, omar@example.com]
  security: [sofia@example.com]
rules:
  - name: tags-are-free
    match: { action: cloud.tags.set }
    effect: allow
  - name: exports-need-an-owner
    match: { action: db.export }
    effect: review
    review:
      approvers: ["group:owners"]
      allow_edit: true
      timeout: 1h
      escalate: { after: 30m, to: ["group:security"] }
  - name: jobs-expire-quickly
    match: { action: job.run }
    effect: review
    review: { approvers: ["group:owners"], timeout: 2s, on_timeout: expire }
`

/** The SDK's camelCase view of a wire type: the same fields, renamed, nothing more and nothing less. */
type Camel<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<Camel<Tail>>}` : S
type CamelCased<T> = T extends ReadonlyArray<infer Item>
  ? Array<CamelCased<Item>>
  : T extends object
    ? string extends keyof T
      ? T
      : { [K in keyof T as K extends string ? Camel<K> : K]: CamelCased<T[K]> }
    : T

interface Answer {
  status: number
  body: unknown
}

interface OpenApiDocument {
  components: { schemas: Record<string, unknown> }
  paths: Record<string, Record<string, { responses: Record<string, { content?: { 'application/json'?: { schema: unknown } } }> }>>
}

describe('the wire contract of a running gateway', () => {
  let gw: TestGateway
  let document: OpenApiDocument
  const ajv = new Ajv2020({ allErrors: true, strict: false })
  addFormats.default(ajv)
  const token = (name: keyof typeof PEOPLE): string => gw.tokens[name] ?? ''
  const submit = (action: string, params: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    call(gw.url, token('agent'), 'POST', '/v1/requests', { action, resource: 'pg://prod/customers', environment: 'prod', params, ...extra })

  beforeAll(async () => {
    gw = await startTestGateway({ backend: 'sqlite', policy: POLICY, keys: PEOPLE })
    document = (await call(gw.url, undefined, 'GET', '/openapi.json')).body as OpenApiDocument
  })

  afterAll(async () => {
    await gw?.close()
  })

  /** The body an answer must match, as the OpenAPI document describes the route, method and status. */
  function documented(path: string, method: string, status: number): unknown {
    const responses = document.paths[path]?.[method]?.responses
    expect(responses, `OpenAPI describes ${method.toUpperCase()} ${path}`).toBeDefined()
    const response = responses?.[String(status)] ?? responses?.['default']
    const schema = response?.content?.['application/json']?.schema
    expect(schema, `OpenAPI describes the ${status} answer of ${method.toUpperCase()} ${path}`).toBeDefined()
    return schema
  }

  function expectDocumented(path: string, method: string, answer: Answer): void {
    const validate = ajv.compile({ ...(documented(path, method, answer.status) as object), components: document.components })
    expect(validate(answer.body) ? [] : validate.errors).toEqual([])
  }

  function expectRequestView(path: string, method: string, answer: Answer, status = 200): ActionRequest {
    expect(answer.status).toBe(status)
    expect(requestViewSchema.safeParse(answer.body).error?.issues ?? []).toEqual([])
    expectDocumented(path, method, answer)
    const parsed = parseRequestView(answer.body)
    expect(requestViewOf(parsed)).toEqual(answer.body)
    return parsed
  }

  function expectErrorBody(path: string, method: string, answer: Answer, code: WireErrorCode): void {
    expect(answer.body).toMatchObject({ error: { code } })
    expect(answer.status).toBe(httpStatusFor(code))
    expect(errorBodySchema.safeParse(answer.body).error?.issues ?? []).toEqual([])
    expectDocumented(path, method, answer)
    const error = errorFromResponse(answer.status, answer.body)
    expect([error.code, error.status, error.message, error.details]).toEqual([
      code,
      answer.status,
      (answer.body as z.output<typeof errorBodySchema>).error.message,
      (answer.body as z.output<typeof errorBodySchema>).error.details,
    ])
  }

  it('holds the SDK types to the wire types, with the names camelCased', () => {
    expectTypeOf<ActionRequest>().toEqualTypeOf<CamelCased<sdkContract.RequestView>>()
    expectTypeOf<Redemption>().toEqualTypeOf<CamelCased<sdkContract.RedemptionView>>()
    expectTypeOf<sdkContract.RequestView>().toEqualTypeOf<z.output<typeof requestViewSchema>>()
    expectTypeOf<sdkContract.RequestPage>().toEqualTypeOf<z.output<typeof requestPageSchema>>()
    expectTypeOf<sdkContract.RedemptionView>().toEqualTypeOf<z.output<typeof redemptionSchema>>()
    expectTypeOf<sdkContract.ErrorBody>().toEqualTypeOf<z.output<typeof errorBodySchema>>()
  })

  it('holds what the SDK sends to the bodies the gateway parses, with the names camelCased', () => {
    expectTypeOf<VoteInput>().toEqualTypeOf<CamelCased<z.input<typeof voteBody>>>()
    expectTypeOf<ResultInput>().toEqualTypeOf<CamelCased<z.input<typeof resultBody>>>()
  })

  it('gives the SDK exactly the wire error codes, and OpenAPI only those', () => {
    expect([...sdkContract.WIRE_ERROR_CODES]).toEqual([...WIRE_ERROR_CODES])
    const openApiCodes = (document.components.schemas['WireErrorCode'] as { enum: string[] }).enum
    expect(openApiCodes).toEqual([...WIRE_ERROR_CODES])
    expect(openApiCodes.filter((code) => (LOCAL_ERROR_CODES as readonly string[]).includes(code))).toEqual([])
    for (const code of WIRE_ERROR_CODES) {
      expect(errorFromResponse(httpStatusFor(code), { error: { code, message: 'm', details: {} } }).code).toBe(code)
    }
  })

  it('names only components that exist in every $ref of the OpenAPI document', () => {
    const refs = JSON.stringify(document).match(/"\$ref":"[^"]+"/g) ?? []
    const missing = refs.map((ref) => ref.slice(8, -1)).filter((ref) => !(ref.replace('#/components/schemas/', '') in document.components.schemas))
    expect(refs.length).toBeGreaterThan(20)
    expect(missing).toEqual([])
  })

  it('describes a pending request, and the same request to a reviewer, with redacted params and no token', async () => {
    const created = await submit('db.export', { table: 'customers' }, { reason: 'weekly report', context: { run: 7 }, bind: [{ path: 'q.sql', sha256: 'a'.repeat(64) }] })
    const pending = expectRequestView('/v1/requests', 'post', created, 201)
    expect(pending).toMatchObject({ status: 'pending', grant: null, votes: [], onBehalfOf: { id: 'priya@example.com', verified: false } })
    expect(pending.review?.deadlineAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    expect(pending.review?.escalateAt).not.toBeNull()
    expectRequestView('/v1/requests/{id}', 'get', await call(gw.url, token('dana'), 'GET', `/v1/requests/${pending.id}`))
  })

  it('describes an approval with its vote and grant, to the requester (token) and to a reviewer (none)', async () => {
    const created = await submit('db.export', { table: 'orders' })
    const approved = expectRequestView(
      '/v1/requests/{id}/votes',
      'post',
      await castVote(gw.url, token('dana'), created.body.id, { decision: 'approve', reason: 'fine' }),
    )
    expect(approved).toMatchObject({ status: 'approved', votes: [{ voterId: 'dana@example.com', voterName: 'dana@example.com', reason: 'fine' }] })
    expect(approved.grant).toMatchObject({ status: 'issued', token: null, redeemedAt: null })
    const mine = expectRequestView('/v1/requests/{id}/wait', 'get', await call(gw.url, token('agent'), 'GET', `/v1/requests/${created.body.id}/wait?timeout=0`))
    expect(mine.grant?.token).toMatch(/^ey/)
    expect(mine.decidedAt).not.toBeNull()
  })

  it('describes a request approved by policy, a redemption and a reported result', async () => {
    const created = await submit('cloud.tags.set', { tags: { team: 'data' } })
    const allowed = expectRequestView('/v1/requests', 'post', created, 201)
    expect(allowed).toMatchObject({ status: 'approved', review: null, decision: { effect: 'allow' } })
    const redeemed = await call(gw.url, token('agent'), 'POST', '/v1/grants/redeem', { token: allowed.grant?.token, digest: allowed.digest })
    expect(redeemed.status).toBe(200)
    expect(redemptionSchema.safeParse(redeemed.body).error?.issues ?? []).toEqual([])
    expectDocumented('/v1/grants/redeem', 'post', redeemed)
    expect(parseRedemption(redeemed.body)).toMatchObject({ requestId: allowed.id, digest: allowed.digest, params: { tags: { team: 'data' } } })
    const reported = expectRequestView(
      '/v1/requests/{id}/result',
      'post',
      await call(gw.url, token('agent'), 'POST', `/v1/requests/${allowed.id}/result`, { outcome: 'failed', exit_code: 3, detail: 'quota' }),
    )
    expect(reported.result).toEqual({ outcome: 'failed', exitCode: 3, detail: 'quota' })
    expect(reported.grant).toMatchObject({ status: 'redeemed', token: null })
    expect(reported.grant?.redeemedAt).not.toBeNull()

    const again = await call(gw.url, token('agent'), 'POST', '/v1/grants/redeem', { token: allowed.grant?.token, digest: allowed.digest })
    expectErrorBody('/v1/grants/redeem', 'post', again, 'grant_already_redeemed')
    expect(again.body.error.details.redeemed_at).toBe(reported.grant?.redeemedAt)
  })

  it('describes denied, edited, cancelled and expired requests', async () => {
    const toDeny = await submit('db.export', { table: 'payments' })
    const denied = expectRequestView(
      '/v1/requests/{id}/votes',
      'post',
      await castVote(gw.url, token('omar'), toDeny.body.id, { decision: 'deny', reason: 'no' }),
    )
    expect(denied).toMatchObject({ status: 'denied', grant: null, votes: [{ decision: 'deny' }] })

    const toEdit = await submit('db.export', { table: 'invoices', limit: 1000 })
    const edited = expectRequestView(
      '/v1/requests/{id}/votes',
      'post',
      await castVote(gw.url, token('dana'), toEdit.body.id, { decision: 'approve', params: { table: 'invoices', limit: 10 } }),
    )
    expect(edited).toMatchObject({ version: 2, params: { table: 'invoices', limit: 10 } })
    expect(edited.digest).not.toBe(toEdit.body.digest)

    const toCancel = await submit('db.export', { table: 'refunds' })
    const cancelled = expectRequestView(
      '/v1/requests/{id}/cancel',
      'post',
      await call(gw.url, token('agent'), 'POST', `/v1/requests/${toCancel.body.id}/cancel`, { reason: 'not needed' }),
    )
    expect(cancelled).toMatchObject({ status: 'cancelled', grant: null })

    const toExpire = await submit('job.run', { job: 'nightly' })
    const expired = expectRequestView('/v1/requests/{id}/wait', 'get', await call(gw.url, token('agent'), 'GET', `/v1/requests/${toExpire.body.id}/wait?timeout=20`))
    expect(expired).toMatchObject({ status: 'expired', grant: null })
  })

  it('describes a page of the list and its cursor', async () => {
    await submit('db.export', { table: 'page-a' })
    await submit('db.export', { table: 'page-b' })
    const first = await call(gw.url, token('dana'), 'GET', '/v1/requests?limit=2')
    expect(first.status).toBe(200)
    expect(requestPageSchema.safeParse(first.body).error?.issues ?? []).toEqual([])
    expectDocumented('/v1/requests', 'get', first)
    const page = parseRequestPage(first.body)
    expect(page.items.map(requestViewOf)).toEqual(first.body.items)
    expect(page.nextCursor).toEqual(expect.any(String))
    const next = await call(gw.url, token('dana'), 'GET', `/v1/requests?limit=2&cursor=${page.nextCursor}`)
    expectDocumented('/v1/requests', 'get', next)
    expect(parseRequestPage(next.body).items).toHaveLength(2)
  })

  it('describes refusals of every kind the same way, with snake_case details', async () => {
    const pending = await submit('db.export', { table: 'errors' })
    const id = pending.body.id as string
    expectErrorBody('/v1/requests', 'post', await call(gw.url, token('agent'), 'POST', '/v1/requests', { action: 'db.export' }), 'invalid_request')
    expectErrorBody('/v1/requests/{id}', 'get', await call(gw.url, token('agent'), 'GET', '/v1/requests/req_missing'), 'not_found')
    const byAgent = await castVote(gw.url, token('otherAgent'), id, { decision: 'approve' })
    expectErrorBody('/v1/requests/{id}/votes', 'post', byAgent, 'not_found')
    const byRequester = await castVote(gw.url, token('agent'), id, { decision: 'approve' })
    expectErrorBody('/v1/requests/{id}/votes', 'post', byRequester, 'non_human_reviewer')
    expect(byRequester.body.error.details).toEqual({ voter_id: 'etl-bot', kind: 'agent' })
    const stale = await castVote(gw.url, token('dana'), id, { decision: 'approve', digest: 'c'.repeat(64) })
    expectErrorBody('/v1/requests/{id}/votes', 'post', stale, 'version_mismatch')
    expect(stale.body.error.details).toEqual({ digest: 'c'.repeat(64), current_version: 1, current_digest: pending.body.digest })
    const notMine = await call(gw.url, token('dana'), 'POST', `/v1/requests/${id}/cancel`, {})
    expectErrorBody('/v1/requests/{id}/cancel', 'post', notMine, 'not_requester')
    expect(notMine.body.error.details).toEqual({ principal_id: 'dana@example.com' })
    const mismatch = await call(gw.url, token('agent'), 'POST', '/v1/grants/redeem', { token: 'not-a-jwt', digest: 'b'.repeat(64) })
    expectErrorBody('/v1/grants/redeem', 'post', mismatch, 'grant_invalid')
    expectErrorBody('/v1/requests', 'get', await call(gw.url, undefined, 'GET', '/v1/requests'), 'unauthenticated')
  })

  function expectBody(schema: z.ZodType, path: string, method: string, answer: Answer, status: number): void {
    expect(answer.status).toBe(status)
    expect(schema.safeParse(answer.body).error?.issues ?? []).toEqual([])
    expectDocumented(path, method, answer)
  }

  it('describes the API keys an admin creates, lists and revokes', async () => {
    const created = await call(gw.url, gw.adminToken, 'POST', '/v1/keys', { kind: 'human', id: 'lee@example.com', email: 'lee@example.com', groups: ['owners'] })
    expectBody(createdApiKeySchema, '/v1/keys', 'post', created, 201)
    expectBody(apiKeyListSchema, '/v1/keys', 'get', await call(gw.url, gw.adminToken, 'GET', '/v1/keys'), 200)
    const revoked = await call(gw.url, gw.adminToken, 'POST', `/v1/keys/${created.body.id}/revoke`)
    expectBody(apiKeyViewSchema, '/v1/keys/{id}/revoke', 'post', revoked, 200)
    expect(revoked.body.revoked_at).toMatch(/Z$/)
    expectErrorBody('/v1/keys', 'get', await call(gw.url, token('dana'), 'GET', '/v1/keys'), 'forbidden')
  })

  it('describes the signed audit checkpoint, whose ts stays the signed milliseconds', async () => {
    await gw.restart()
    const checkpoint = await call(gw.url, undefined, 'GET', '/audit/checkpoint')
    expectBody(auditCheckpointSchema, '/audit/checkpoint', 'get', checkpoint, 200)
    expect(Number.isSafeInteger(checkpoint.body.ts)).toBe(true)
    expectBody(auditPublicKeySchema, '/audit/public-key', 'get', await call(gw.url, undefined, 'GET', '/audit/public-key'), 200)
  })

  it('prints the wire view on the command line with --json', async () => {
    const created = await submit('db.export', { table: 'cli' })
    const env = { COUNTERSIGN_URL: gw.url, COUNTERSIGN_TOKEN: token('agent') }
    const shown = await runCli(['show', created.body.id as string, '--json'], env)
    expect(shown.stderr).toBe('')
    expect(JSON.parse(shown.stdout)).toEqual((await call(gw.url, token('agent'), 'GET', `/v1/requests/${created.body.id}`)).body)
    const listed = await runCli(['ls', '--json'], env)
    expect(requestPageSchema.safeParse(JSON.parse(listed.stdout)).error?.issues ?? []).toEqual([])
  })

  describe('401 answers carry a Bearer challenge (RFC 6750)', () => {
    const challenge = async (authorization?: string) => {
      const response = await fetch(`${gw.url}/v1/requests`, authorization === undefined ? {} : { headers: { authorization } })
      return { status: response.status, challenge: response.headers.get('www-authenticate'), code: ((await response.json()) as { error: { code: string } }).error.code }
    }

    it('rejects a missing Authorization header with a challenge and no error code', async () => {
      expect(await challenge()).toEqual({ status: 401, challenge: 'Bearer realm="countersign"', code: 'unauthenticated' })
    })

    it('rejects a refused bearer token with invalid_token', async () => {
      expect(await challenge('Bearer cs_not_a_real_key')).toEqual({
        status: 401,
        challenge: 'Bearer realm="countersign", error="invalid_token"',
        code: 'unauthenticated',
      })
    })

    it('rejects credentials of another scheme with invalid_request', async () => {
      expect(await challenge('Basic ZGFuYTpzZWNyZXQ=')).toEqual({
        status: 401,
        challenge: 'Bearer realm="countersign", error="invalid_request"',
        code: 'unauthenticated',
      })
    })

    it('answers with no challenge when the call is authenticated', async () => {
      const response = await fetch(`${gw.url}/v1/requests`, { headers: { authorization: `Bearer ${token('dana')}` } })
      expect([response.status, response.headers.get('www-authenticate')]).toEqual([200, null])
    })
  })

  it('gives the SDK client the same request the wire carried', async () => {
    const created = await submit('db.export', { table: 'sdk' })
    const client = new Countersign({ url: gw.url, token: token('agent') })
    expect(requestViewOf(await client.get(created.body.id as string))).toEqual(created.body)
  })
})
