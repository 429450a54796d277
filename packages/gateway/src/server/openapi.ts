import { z } from 'zod'
import { ERROR_CODES } from '../core/index.js'
import { cancelBody, createKeyBody, createRequestBody, listQuery, redeemBody, resultBody, voteBody, waitQuery } from './api-schemas.js'
import { VERSION } from '../version.js'

const schema = (type: z.ZodType) => z.toJSONSchema(type, { io: 'input', unrepresentable: 'any' })

const errorBody = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'details'],
      properties: {
        code: { type: 'string', enum: [...ERROR_CODES] },
        message: { type: 'string' },
        details: { type: 'object' },
      },
    },
  },
}

const json = (body: unknown) => ({ content: { 'application/json': { schema: body } } })
const requestView = { $ref: '#/components/schemas/RequestView' }
const errors = { default: { description: 'An error with a stable code', ...json(errorBody) } }
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
      schemas: { RequestView: { type: 'object', description: 'See docs/api.md for the fields.' }, Error: errorBody },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/requests': {
        post: { summary: 'Submit an action request', requestBody: json(schema(createRequestBody)), responses: { 201: { description: 'Created', ...json(requestView) }, 200: { description: 'An idempotent retry', ...json(requestView) }, ...errors } },
        get: { summary: 'List requests', parameters: queryParams(listQuery), responses: { 200: { description: 'A page of requests', ...json({ type: 'object', properties: { items: { type: 'array', items: requestView }, next_cursor: { type: ['string', 'null'] } } }) }, ...errors } },
      },
      '/v1/requests/{id}': { get: { summary: 'Read a request', parameters: idParam, responses: { 200: { description: 'The request', ...json(requestView) }, ...errors } } },
      '/v1/requests/{id}/wait': { get: { summary: 'Wait for a decision (long-poll)', parameters: [...idParam, ...queryParams(waitQuery)], responses: { 200: { description: 'Decided, or still pending at the timeout', ...json(requestView) }, ...errors } } },
      '/v1/requests/{id}/votes': { post: { summary: 'Approve or deny, optionally editing params', parameters: idParam, requestBody: json(schema(voteBody)), responses: { 200: { description: 'The request after the vote', ...json(requestView) }, ...errors } } },
      '/v1/requests/{id}/cancel': { post: { summary: 'Cancel a pending request (requester only)', parameters: idParam, requestBody: json(schema(cancelBody)), responses: { 200: { description: 'Cancelled', ...json(requestView) }, ...errors } } },
      '/v1/requests/{id}/result': { post: { summary: 'Report how the action went', parameters: idParam, requestBody: json(schema(resultBody)), responses: { 200: { description: 'Recorded', ...json(requestView) }, ...errors } } },
      '/v1/grants/redeem': { post: { summary: 'Redeem a grant exactly once', requestBody: json(schema(redeemBody)), responses: { 200: { description: 'Redeemed' }, ...errors } } },
      '/v1/events': { get: { summary: 'Server-Sent Events of request changes', responses: { 200: { description: 'text/event-stream' }, ...errors } } },
      '/v1/keys': {
        post: { summary: 'Create an API key (admin)', requestBody: json(schema(createKeyBody)), responses: { 201: { description: 'The key; its token is shown only here' }, ...errors } },
        get: { summary: 'List API keys (admin)', responses: { 200: { description: 'Keys' }, ...errors } },
      },
      '/v1/keys/{id}/revoke': { post: { summary: 'Revoke an API key (admin)', parameters: idParam, responses: { 200: { description: 'Revoked' }, ...errors } } },
      '/.well-known/jwks.json': { get: { summary: 'Grant verification keys', security: [], responses: { 200: { description: 'JWKS' } } } },
      '/audit/public-key': { get: { summary: 'The audit checkpoint signing key (PEM and JWK)', security: [], responses: { 200: { description: 'The public key' } } } },
      '/audit/checkpoint': { get: { summary: 'The latest signed audit checkpoint', security: [], responses: { 200: { description: '{size, head_hash, ts, signature, key_id}' }, ...errors } } },
      '/healthz': { get: { summary: 'Liveness', security: [], responses: { 200: { description: 'ok' } } } },
      '/readyz': { get: { summary: 'Readiness (store reachable)', security: [], responses: { 200: { description: 'ready' }, 503: { description: 'store unavailable' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { 200: { description: 'text/plain' } } } },
    },
  }
  return document
}
