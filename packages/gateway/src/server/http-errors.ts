import type { FastifyError, FastifyInstance } from 'fastify'
import type { z } from 'zod'
import { CountersignError, decodeUtf8, httpStatusFor, isCountersignError, parseIJson } from '../core/index.js'
import { redactString } from '../policy/index.js'
import { isConnectionLost } from '../store/index.js'
import type { GatewayMetrics } from './metrics.js'

/** Turns zod issues into one `invalid_request` error that names every bad field. */
export function invalidRequest(error: z.ZodError, where: string): CountersignError {
  const issues = error.issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(root)',
    message: issue.message,
  }))
  const summary = issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')
  return new CountersignError('invalid_request', `Invalid ${where}: ${summary}`, { issues })
}

/** Parses untrusted input with a strict schema, or throws `invalid_request`. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value)
  if (!result.success) throw invalidRequest(result.error, where)
  return result.data
}

/**
 * Parses a JSON body as I-JSON (RFC 7493): invalid UTF-8, duplicate keys,
 * numbers a double would change and lone surrogates are refused rather than
 * silently given one of their possible meanings (see `parseIJson`).
 */
export function parseJsonBody(body: Uint8Array): unknown {
  return parseIJson(decodeUtf8(body))
}

function fromFastifyError(error: FastifyError): CountersignError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new CountersignError('payload_too_large', 'The request body is larger than this gateway accepts; send less data.')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new CountersignError('unsupported_media_type', 'Send the body as application/json.')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new CountersignError('invalid_request', 'The body is empty; send a JSON object.')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new CountersignError('invalid_request', 'The Content-Length header does not match the body.')
    default:
      break
  }
  if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new CountersignError('invalid_request', `The body is not valid JSON: ${error.message}`)
  }
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    return new CountersignError('invalid_request', error.message)
  }
  return undefined
}

const BEARER_CREDENTIALS = /^\s*bearer\s+\S/i

/**
 * The challenge of a 401 (RFC 6750 section 3): `invalid_token` when a bearer
 * token was presented and refused, `invalid_request` when the header is not a
 * bearer credential, no error code when none was sent, and the step-up error of
 * RFC 9470 when the review needs a fresh sign-in.
 */
export function bearerChallenge(error: CountersignError, authorization: string | undefined): string {
  const params = ['realm="countersign"']
  if (error.code === 'fresh_auth_required') {
    params.push('error="insufficient_user_authentication"')
    const freshMs = error.details['fresh_auth_ms']
    if (typeof freshMs === 'number') params.push(`max_age=${Math.floor(freshMs / 1000)}`)
  } else if (error.code === 'unauthenticated' && authorization !== undefined && authorization.trim() !== '') {
    params.push(BEARER_CREDENTIALS.test(authorization) ? 'error="invalid_token"' : 'error="invalid_request"')
  }
  return `Bearer ${params.join(', ')}`
}

/**
 * A database restart or failover cut the connection under this call. Whether
 * its transaction committed is unknown to the gateway, so the client is told
 * to try again rather than that anything failed or succeeded.
 */
function storeUnavailable(error: unknown): CountersignError | undefined {
  if (!isConnectionLost(error)) return undefined
  return new CountersignError('store_unavailable', 'The database connection was lost while answering; try again shortly.')
}

/**
 * Every error leaves as `{error: {code, message, details}}` with the status from
 * `httpStatusFor`; a lost database connection is `store_unavailable`. Anything unexpected becomes an opaque 500 and a log line,
 * never a stack trace.
 */
export function installErrorHandling(app: FastifyInstance, metrics: GatewayMetrics): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const known = isCountersignError(error) ? error : (storeUnavailable(error) ?? fromFastifyError(error))
    if (known) {
      metrics.errors.inc({ code: known.code })
      const status = httpStatusFor(known.code)
      if (status === 401) void reply.header('www-authenticate', bearerChallenge(known, request.headers.authorization))
      void reply.status(status).send({ error: known.toJSON() })
      return
    }
    metrics.errors.inc({ code: 'internal' })
    // Logged whether or not request logging is on: an unexpected error is always worth a line.
    // The error may quote the input (a driver echoing a value), so the line passes through the detectors too.
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error)
    console.error(redactString(`countersign: unexpected error on ${request.method} ${request.url.split('?')[0]}: ${text}`))
    const internal = new CountersignError('internal', 'The gateway failed unexpectedly; the error was logged.')
    void reply.status(500).send({ error: internal.toJSON() })
  })
  app.setNotFoundHandler((request, reply) => {
    const error = new CountersignError('not_found', `No route ${request.method} ${request.url.split('?')[0]}; see /openapi.json.`)
    void reply.status(404).send({ error: error.toJSON() })
  })
}
