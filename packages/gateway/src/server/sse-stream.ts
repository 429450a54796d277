import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Store } from '../store/index.js'
import type { RequestChange, RequestEvents } from './request-events.js'

const KEEPALIVE_MS = 15_000
const RESUME_LIMIT = 1000

/**
 * Streams request changes as Server-Sent Events. Event ids are audit sequence
 * numbers, so `Last-Event-ID` resumes from the durable log: changes made while
 * the client was away (or the gateway restarted) are replayed first.
 */
export async function streamEvents(
  request: FastifyRequest,
  reply: FastifyReply,
  options: { events: RequestEvents; store: Store; shutdown: AbortSignal; load: (requestId: string) => Promise<unknown> },
): Promise<void> {
  const lastEventId = Number(request.headers['last-event-id'] ?? Number.NaN)
  reply.hijack()
  const out = reply.raw
  out.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  })
  out.write(': connected\n\n')

  // Sends run one after another so events leave in sequence order.
  let chain = Promise.resolve()
  let lastSent = Number.isInteger(lastEventId) && lastEventId > 0 ? lastEventId : 0
  const send = (change: RequestChange): void => {
    chain = chain.then(async () => {
      if (change.seq <= lastSent || out.destroyed) return
      const view = await options.load(change.requestId)
      lastSent = change.seq
      if (view !== undefined && !out.destroyed) out.write(`id: ${change.seq}\nevent: request\ndata: ${JSON.stringify(view)}\n\n`)
    })
  }

  const unsubscribe = options.events.subscribe('*', send)
  const keepalive = setInterval(() => out.write(': keepalive\n\n'), KEEPALIVE_MS)
  const end = (): void => {
    unsubscribe()
    clearInterval(keepalive)
    options.shutdown.removeEventListener('abort', end)
    if (!out.destroyed) out.end()
  }
  request.raw.once('close', end)
  options.shutdown.addEventListener('abort', end, { once: true })

  if (lastSent > 0) {
    const missed = await options.store.db
      .selectFrom('audit_entries')
      .select(['seq', 'request_id'])
      .where('seq', '>', lastSent)
      .where('request_id', 'is not', null)
      .orderBy('seq')
      .limit(RESUME_LIMIT)
      .execute()
    const latest = new Map<string, number>()
    for (const entry of missed) if (entry.request_id !== null) latest.set(entry.request_id, entry.seq)
    const replay = [...latest].map(([requestId, seq]) => ({ requestId, seq })).sort((a, b) => a.seq - b.seq)
    // Replayed changes carry older ids than live ones; let them through first.
    const resumeFrom = lastSent
    lastSent = 0
    for (const change of replay) if (change.seq > resumeFrom) send(change)
  }
}
