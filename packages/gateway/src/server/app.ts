import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { ApiKeyView } from '../contract/index.js'
import { CountersignError, isCountersignError, type Principal, type RequestState, reviewEligibility, rfc3339 } from '../core/index.js'
import type { GrantSigner } from '../grants/index.js'
import { ADMIN_GROUP, type ApiKeyRepository, type Authenticator } from '../identity/index.js'
import { redactString } from '../policy/index.js'
import { type ApprovalService, canSee, toRequestView } from '../requests/index.js'
import type { Store } from '../store/index.js'
import {
  cancelBody,
  createKeyBody,
  createRequestBody,
  listQuery,
  noQuery,
  redeemBody,
  requestIdParams,
  resultBody,
  voteBody,
  waitQuery,
} from './api-schemas.js'
import type { GatewayAudit } from './audit-appender.js'
import { FailedAuthLimiter } from './failed-auth-limiter.js'
import { installErrorHandling, parseInput, parseJsonBody } from './http-errors.js'
import type { KeyAdmin } from './key-admin.js'
import type { GatewayMetrics } from './metrics.js'
import { openApiDocument } from './openapi.js'
import type { RequestEvents } from './request-events.js'
import { streamEvents } from './sse-stream.js'

export interface AppDependencies {
  service: ApprovalService
  authenticator: Authenticator
  keys: ApiKeyRepository
  keyAdmin: KeyAdmin
  audit: GatewayAudit
  grants: GrantSigner
  events: RequestEvents
  metrics: GatewayMetrics
  store: Store
  now: () => number
  /** Largest accepted body, bytes. */
  bodyLimit: number
  /** Where people open a request in the console; shown by the CLI. */
  publicUrl: string
  logger: boolean
  /** Where log lines go when logging is on; standard output when absent. */
  logStream?: { write(line: string): void }
  trustProxy: boolean | string[]
  /** Aborted when the gateway stops: long-polls answer at once and event streams end. */
  shutdown: AbortSignal
}

/** Failed authentications one address may make in a minute before its failures are throttled. */
const FAILED_AUTH_LIMIT = 30
/** Wrong secrets for one key a throttled address may still have checked in that minute. */
const WRONG_SECRETS_PER_KEY = 3

/** The routes that take a query string; every other route refuses one. */
const QUERY_ROUTES = new Set(['/v1/requests', '/v1/requests/:id/wait'])


declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal
  }
}

/**
 * The channels a client may declare in `x-countersign-via`. Slack, Teams and the console are
 * recorded by the gateway's own handlers, so a caller cannot pose as one of them.
 */
const CLIENT_CHANNELS: ReadonlySet<string> = new Set(['api', 'cli', 'sdk'])

/** Which channel a call came through, from the client's own header (informational only); `api` when absent. */
function viaOf(request: FastifyRequest): string {
  const header = request.headers['x-countersign-via']
  if (header === undefined) return 'api'
  if (typeof header !== 'string' || !CLIENT_CHANNELS.has(header)) {
    throw new CountersignError(
      'invalid_request',
      `The x-countersign-via header must be one of ${[...CLIENT_CHANNELS].join(', ')}; leave it out for api.`,
      { header: 'x-countersign-via' },
    )
  }
  return header
}

/** Builds the gateway's HTTP API. */
export function buildApp(deps: AppDependencies): FastifyInstance {
  const app = Fastify({
    logger: deps.logger ? logOptions(deps.logStream) : false,
    bodyLimit: deps.bodyLimit,
    trustProxy: deps.trustProxy,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    frameworkErrors(error, _request, reply) {
      const refused = new CountersignError('invalid_request', `The request line is malformed: ${error.message}`)
      // This hook's reply is typed for no particular route; it is an ordinary reply.
      void (reply as FastifyReply).status(400).send({ error: refused.toJSON() })
    },
  })
  installErrorHandling(app, deps.metrics)
  app.removeContentTypeParser('application/json')
  // Bytes, not a string: Fastify's own decoding would turn invalid UTF-8 into U+FFFD before anyone could refuse it.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as Buffer))
    } catch (error) {
      done(error as Error, undefined)
    }
  })
  app.decorateRequest('principal', null as unknown as Principal)

  const failedAuth = new FailedAuthLimiter({ limit: FAILED_AUTH_LIMIT, perKeyLimit: WRONG_SECRETS_PER_KEY, windowMs: 60_000 })
  // A throttled address still gets in with a valid key; its failures are answered rate_limited.
  const authenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const now = deps.now()
    const waitMs = failedAuth.retryAfterMs(request.ip, now)
    try {
      request.principal = await deps.authenticator.authenticate(request.headers.authorization, now, failedAuth.secretCheckBudget(request.ip, now))
    } catch (error) {
      if (!isCountersignError(error) || error.code !== 'unauthenticated') throw error
      failedAuth.recordFailure(request.ip, now)
      if (waitMs === 0) throw error
      const seconds = Math.ceil(waitMs / 1000)
      void reply.header('retry-after', String(seconds))
      throw new CountersignError('rate_limited', `Too many failed sign-ins from this address; try again in ${seconds} s. A valid key is still accepted.`)
    }
  }
  const view = (record: Parameters<typeof toRequestView>[0], request: FastifyRequest) =>
    toRequestView(record, request.principal, deps.grants)

  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    try {
      await deps.store.db.selectFrom('requests').select('id').limit(1).execute()
      return { status: 'ready', store: deps.store.dialect }
    } catch {
      const error = new CountersignError('store_unavailable', 'The store does not answer.')
      return reply.status(503).send({ error: error.toJSON() })
    }
  })
  app.get('/metrics', async (_request, reply) => {
    void reply.header('content-type', deps.metrics.registry.contentType)
    return deps.metrics.registry.metrics()
  })
  app.get('/.well-known/jwks.json', async () => deps.grants.jwks())
  // Published so auditors can keep the key and checkpoints outside the operator's reach.
  app.get('/audit/public-key', async () => ({ key_id: deps.audit.publicKey.keyId, pem: deps.audit.publicKey.pem, jwk: deps.audit.publicKey.jwk }))
  app.get('/audit/checkpoint', async (_request, reply) => {
    const checkpoint = await deps.audit.latestCheckpoint()
    if (!checkpoint) {
      const error = new CountersignError('not_found', 'No checkpoint has been signed yet; one is written after the first entries.')
      return reply.status(404).send({ error: error.toJSON() })
    }
    return checkpoint
  })
  app.get('/openapi.json', async () => openApiDocument())

  app.register(async (v1) => {
    v1.addHook('onRequest', authenticate)
    v1.addHook('preValidation', async (request) => {
      if (!(request.method === 'GET' && QUERY_ROUTES.has(request.routeOptions.url ?? ''))) parseInput(noQuery, request.query, 'query')
    })

    v1.post('/requests', async (request, reply) => {
      const body = parseInput(createRequestBody, request.body, 'request body')
      const input = {
        action: body.action,
        resource: body.resource,
        environment: body.environment,
        params: body.params,
        ...(body.reason !== undefined ? { reason: body.reason } : {}),
        ...(body.context !== undefined ? { context: body.context } : {}),
        ...(body.bind !== undefined ? { bind: body.bind } : {}),
        ...(body.idempotency_key !== undefined ? { idempotencyKey: body.idempotency_key } : {}),
      }
      const submission = await deps.service.submit(request.principal, input, viaOf(request))
      return reply.status(submission.created ? 201 : 200).send(await view(submission.record, request))
    })

    v1.get('/requests', async (request) => {
      const query = parseInput(listQuery, request.query, 'query')
      const page = await deps.service.list(request.principal, {
        ...(query.status !== undefined ? { status: query.status } : {}),
        ...(query.action !== undefined ? { action: query.action } : {}),
        mine: query.mine === 'true',
        limit: query.limit,
        ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
      })
      const now = deps.now()
      // The same answer the vote path gives (a sign-in that is too old still counts: signing in again is all it takes).
      const records = query.reviewable === 'true' ? page.records.filter((r) => reviewEligibility(r.state, request.principal, now).eligible) : page.records
      return { items: await Promise.all(records.map((r) => view(r, request))), next_cursor: page.nextCursor }
    })

    v1.get('/requests/:id', async (request) => {
      const { id } = parseInput(requestIdParams, request.params, 'path')
      return view(await deps.service.get(request.principal, id), request)
    })

    v1.get('/requests/:id/wait', async (request) => {
      const { id } = parseInput(requestIdParams, request.params, 'path')
      const { timeout } = parseInput(waitQuery, request.query, 'query')
      const closed = new AbortController()
      request.raw.once('close', () => closed.abort())
      const signal = AbortSignal.any([closed.signal, deps.shutdown])
      const until = Date.now() + timeout * 1000
      // Subscribe before reading, so a decision committed in between still wakes us.
      let next = deps.events.next(id, timeout * 1000, signal)
      try {
        let record = await deps.service.get(request.principal, id)
        const seen = changeMark(record.state)
        while (record.state.status === 'pending' && Date.now() < until) {
          if ((await next) === undefined) break
          next = deps.events.next(id, Math.max(0, until - Date.now()), signal)
          record = await deps.service.get(request.principal, id)
          // A wake-up may be news already read (a replica replaying what it missed); wait on for a real change.
          if (changeMark(record.state) !== seen) break
        }
        return await view(record, request)
      } finally {
        closed.abort()
      }
    })

    v1.get('/events', async (request, reply) => {
      await streamEvents(request, reply, {
        events: deps.events,
        store: deps.store,
        shutdown: deps.shutdown,
        load: async (id) => {
          try {
            const record = await deps.service.get(request.principal, id)
            return canSee(request.principal, record.state) ? await view(record, request) : undefined
          } catch {
            return undefined
          }
        },
      })
    })

    v1.post('/requests/:id/votes', async (request) => {
      const { id } = parseInput(requestIdParams, request.params, 'path')
      const body = parseInput(voteBody, request.body, 'vote')
      const record = await deps.service.vote(
        request.principal,
        id,
        {
          decision: body.decision,
          digest: body.digest,
          ...(body.reason !== undefined ? { reason: body.reason } : {}),
          ...(body.params !== undefined ? { editParams: body.params } : {}),
        },
        viaOf(request),
      )
      return view(record, request)
    })

    v1.post('/requests/:id/cancel', async (request) => {
      const { id } = parseInput(requestIdParams, request.params, 'path')
      const body = parseInput(cancelBody, request.body ?? {}, 'cancel')
      return view(await deps.service.cancel(request.principal, id, body.reason, viaOf(request)), request)
    })

    v1.post('/requests/:id/result', async (request) => {
      const { id } = parseInput(requestIdParams, request.params, 'path')
      const body = parseInput(resultBody, request.body, 'result')
      const result = {
        outcome: body.outcome,
        ...(body.exit_code !== undefined ? { exitCode: body.exit_code } : {}),
        ...(body.detail !== undefined ? { detail: body.detail } : {}),
      }
      return view(await deps.service.reportResult(request.principal, id, result, viaOf(request)), request)
    })

    v1.post('/grants/redeem', async (request) => {
      const body = parseInput(redeemBody, request.body, 'redemption')
      const redemption = await deps.service.redeem(request.principal, body.token, body.digest, viaOf(request))
      return {
        request_id: redemption.requestId,
        jti: redemption.jti,
        digest: redemption.digest,
        action: redemption.action,
        resource: redemption.resource,
        environment: redemption.environment,
        params: redemption.params,
        redeemed_at: rfc3339(redemption.redeemedAt),
      }
    })

    const requireAdmin = (request: FastifyRequest): void => {
      if (request.principal.kind !== 'human' || !request.principal.groups.includes(ADMIN_GROUP)) {
        throw new CountersignError('forbidden', `Managing API keys needs a human key in the ${ADMIN_GROUP} group.`)
      }
    }

    v1.post('/keys', async (request, reply: FastifyReply) => {
      requireAdmin(request)
      const body = parseInput(createKeyBody, request.body, 'key')
      const created = await deps.keyAdmin.create(request.principal, {
        kind: body.kind,
        principalId: body.id,
        displayName: body.name ?? body.id,
        ...(body.email !== undefined ? { email: body.email } : {}),
        groups: body.groups,
        ...(body.on_behalf_of !== undefined ? { onBehalfOf: body.on_behalf_of } : {}),
        createdBy: request.principal.id,
      }, viaOf(request))
      return reply.status(201).send({ ...keyView(created.record), token: created.token })
    })

    v1.get('/keys', async (request) => {
      requireAdmin(request)
      return { items: (await deps.keys.list()).map(keyView) }
    })

    v1.post('/keys/:id/revoke', async (request) => {
      requireAdmin(request)
      const { id } = parseInput(requestIdParams, request.params, 'path')
      return keyView(await deps.keyAdmin.revoke(request.principal, id, viaOf(request)))
    })
  }, { prefix: '/v1' })

  return app
}

/**
 * Request lines name the path and query, which a caller may have put a secret
 * in (`/v1/requests?action=…`); the log gets them through the detectors.
 */
function logOptions(stream: AppDependencies['logStream']): FastifyServerOptions['logger'] {
  return {
    ...(stream !== undefined ? { stream } : {}),
    serializers: {
      req: (request: FastifyRequest) => ({
        method: request.method,
        url: redactString(request.url),
        host: request.host,
        remoteAddress: request.ip,
      }),
    },
  }
}

/** What a waiter compares to tell a change of the request from a repeated wake-up. */
function changeMark(state: RequestState): string {
  return `${state.status}|${state.currentVersion}|${state.votes.length}|${state.escalatedAt ?? ''}|${state.updatedAt}`
}

function keyView(record: Awaited<ReturnType<ApiKeyRepository['list']>>[number]): ApiKeyView {
  return {
    id: record.id,
    prefix: record.prefix,
    kind: record.kind,
    principal_id: record.principalId,
    display_name: record.displayName,
    email: record.email ?? null,
    groups: record.groups,
    on_behalf_of: record.onBehalfOf ?? null,
    created_at: rfc3339(record.createdAt),
    created_by: record.createdBy,
    revoked_at: record.revokedAt === undefined ? null : rfc3339(record.revokedAt),
  }
}
