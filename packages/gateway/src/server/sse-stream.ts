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
  const resumeFrom = Number.isSafeInteger(lastEventId) && lastEventId > 0 ? lastEventId : 0
  let lastSent = resumeFrom
  const send = (change: RequestChange): void => {
    chain = chain.then(async () => {
      if (change.seq <= lastSent || out.destroyed) return
      const view = await options.load(change.requestId)
      lastSent = change.seq
      if (view !== undefined && !out.destroyed) out.write(`id: ${change.seq}\nevent: request\ndata: ${JSON.stringify(view)}\n\n`)
    })
  }

  // Live changes that arrive while the missed ones are read wait for them, so ids stay in order.
  let heldBack: RequestChange[] | undefined = resumeFrom > 0 ? [] : undefined
  const unsubscribe = options.events.subscribe('*', (change) => (heldBack ? heldBack.push(change) : send(change)))
  const keepalive = setInterval(() => out.write(': keepalive\n\n'), KEEPALIVE_MS)
  const end = (): void => {
    unsubscribe()
    clearInterval(keepalive)
    options.shutdown.removeEventListener('abort', end)
    if (!out.destroyed) out.end()
  }
  request.raw.once('close', end)
  options.shutdown.addEventListener('abort', end, { once: true })

  if (heldBack) {
    const missed = await options.store.db
      .selectFrom('audit_entries')
      .select(['seq', 'request_id'])
      .where('seq', '>', resumeFrom)
      .where('request_id', 'is not', null)
      .orderBy('seq')
      .limit(RESUME_LIMIT)
      .execute()
    // One event per request, at its latest change: the view sent is the request as it is now.
    const latest = new Map<string, number>()
    for (const entry of missed) if (entry.request_id !== null) latest.set(entry.request_id, entry.seq)
    for (const [requestId, seq] of [...latest].sort((a, b) => a[1] - b[1])) send({ requestId, seq })
    const live = heldBack
    heldBack = undefined
    for (const change of live) send(change)
  }
}
