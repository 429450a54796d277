import { z } from 'zod'
import { wireRegistry } from '../contract/index.js'
import { cancelBody, createKeyBody, createRequestBody, listQuery, redeemBody, resultBody, voteBody, waitQuery } from './api-schemas.js'
import { VERSION } from '../version.js'

const schema = (type: z.ZodType) => z.toJSONSchema(type, { io: 'input', unrepresentable: 'any' })

/** The answers' schemas, one component each, referring to one another by `$ref`. */
export function wireComponents(): Record<string, Record<string, unknown>> {
  const { schemas } = z.toJSONSchema(wireRegistry, { io: 'output', uri: (id) => `#/components/schemas/${id}` })
  return Object.fromEntries(
    Object.entries(schemas).map(([id, { $schema: _dialect, $id: _id, ...component }]) => [id, component]),
  )
}

const json = (body: unknown) => ({ content: { 'application/json': { schema: body } } })
const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` })
const requestView = ref('RequestView')
const errors = { default: { description: 'An error with a stable code', ...json(ref('ErrorBody')) } }
/** Every `/v1` route: a missing or refused token is answered 401 with a challenge. */
const authErrors = {
  ...errors,
  401: {
    description: 'No valid credentials; the answer carries `WWW-Authenticate: Bearer` (RFC 6750)',
    headers: { 'WWW-Authenticate': { schema: { type: 'string' } } },
    ...json(ref('ErrorBody')),
  },
}
const idParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }]

function queryParams(type: z.ZodObject): Array<Record<string, unknown>> {
  const properties = (schema(type) as { properties?: Record<string, unknown> }).properties ?? {}
  return Object.entries(properties).map(([name, value]) => ({ name, in: 'query', required: false, schema: value }))
}

let document: Record<string, unknown> | undefined

/** The OpenAPI 3.1 description of the API, generated from the same zod schemas that parse requests. */
export function openApiDocument(): Record<string, unknown> {
  document ??= {
    openapi: '3.1.0',
    info: { title: 'Countersign', version: VERSION, description: 'Action-level approvals for AI agents and pipelines.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: wireComponents(),
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/requests': {
        post: { summary: 'Submit an action request', requestBody: json(schema(createRequestBody)), responses: { 201: { description: 'Created', ...json(requestView) }, 200: { description: 'An idempotent retry', ...json(requestView) }, ...authErrors } },
        get: { summary: 'List requests', parameters: queryParams(listQuery), responses: { 200: { description: 'A page of requests', ...json(ref('RequestPage')) }, ...authErrors } },
      },
      '/v1/requests/{id}': { get: { summary: 'Read a request', parameters: idParam, responses: { 200: { description: 'The request', ...json(requestView) }, ...authErrors } } },
      '/v1/requests/{id}/wait': { get: { summary: 'Wait for a decision (long-poll)', parameters: [...idParam, ...queryParams(waitQuery)], responses: { 200: { description: 'Decided, or still pending at the timeout', ...json(requestView) }, ...authErrors } } },
      '/v1/requests/{id}/votes': { post: { summary: 'Approve or deny, optionally editing params', parameters: idParam, requestBody: json(schema(voteBody)), responses: { 200: { description: 'The request after the vote', ...json(requestView) }, ...authErrors } } },
      '/v1/requests/{id}/cancel': { post: { summary: 'Cancel a pending request (requester only)', parameters: idParam, requestBody: json(schema(cancelBody)), responses: { 200: { description: 'Cancelled', ...json(requestView) }, ...authErrors } } },
      '/v1/requests/{id}/result': { post: { summary: 'Report how the action went', parameters: idParam, requestBody: json(schema(resultBody)), responses: { 200: { description: 'Recorded', ...json(requestView) }, ...authErrors } } },
      '/v1/grants/redeem': { post: { summary: 'Redeem a grant exactly once', requestBody: json(schema(redeemBody)), responses: { 200: { description: 'Redeemed', ...json(ref('RedemptionView')) }, ...authErrors } } },
      '/v1/events': { get: { summary: 'Server-Sent Events of request changes', responses: { 200: { description: 'text/event-stream' }, ...authErrors } } },
      '/v1/keys': {
        post: { summary: 'Create an API key (admin)', requestBody: json(schema(createKeyBody)), responses: { 201: { description: 'The key; its token is shown only here', ...json(ref('CreatedApiKey')) }, ...authErrors } },
        get: { summary: 'List API keys (admin)', responses: { 200: { description: 'Keys', ...json(ref('ApiKeyList')) }, ...authErrors } },
      },
      '/v1/keys/{id}/revoke': { post: { summary: 'Revoke an API key (admin)', parameters: idParam, responses: { 200: { description: 'Revoked', ...json(ref('ApiKeyView')) }, ...authErrors } } },
      '/.well-known/jwks.json': { get: { summary: 'Grant verification keys', security: [], responses: { 200: { description: 'JWKS' } } } },
      '/audit/public-key': { get: { summary: 'The audit checkpoint signing key (PEM and JWK)', security: [], responses: { 200: { description: 'The public key', ...json(ref('AuditPublicKey')) } } } },
      '/audit/checkpoint': { get: { summary: 'The latest signed audit checkpoint', security: [], responses: { 200: { description: 'The checkpoint', ...json(ref('AuditCheckpoint')) }, ...errors } } },
      '/healthz': { get: { summary: 'Liveness', security: [], responses: { 200: { description: 'ok' } } } },
      '/readyz': { get: { summary: 'Readiness (store reachable)', security: [], responses: { 200: { description: 'ready' }, 503: { description: 'store unavailable' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { 200: { description: 'text/plain' } } } },
    },
  }
  return document
}
