import { expect } from 'vitest'

/** One Server-Sent Event as the gateway framed it. */
export interface StreamedEvent {
  id: string | undefined
  event: string | undefined
  data: any // eslint-disable-line @typescript-eslint/no-explicit-any -- request views are inspected freely
}

export interface EventStream {
  /** The next event carrying data, or a rejection after `timeoutMs`. Comments (keepalives) are skipped. */
  next(timeoutMs?: number): Promise<StreamedEvent>
  /** Disconnects, as a client going away would. */
  close(): void
}

/** Opens `GET /v1/events` with `fetch` and parses the body stream frame by frame. */
export async function openEventStream(url: string, token: string, lastEventId?: number): Promise<EventStream> {
  const controller = new AbortController()
  const response = await fetch(`${url}/v1/events`, {
    headers: {
      authorization: `Bearer ${token}`,
      accept: 'text/event-stream',
      ...(lastEventId !== undefined ? { 'last-event-id': String(lastEventId) } : {}),
    },
    signal: controller.signal,
  })
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
  const body = response.body
  if (body === null) throw new Error('the event stream has no body')
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  const ready: StreamedEvent[] = []

  const parseFrames = (): void => {
    for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
      const frame = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const fields = new Map<string, string>()
      for (const line of frame.split('\n')) {
        if (line.startsWith(':')) continue
        const colon = line.indexOf(':')
        const name = colon === -1 ? line : line.slice(0, colon)
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
        fields.set(name, fields.has(name) && name === 'data' ? `${fields.get(name)}\n${value}` : value)
      }
      const data = fields.get('data')
      if (data !== undefined) ready.push({ id: fields.get('id'), event: fields.get('event'), data: JSON.parse(data) })
    }
  }

  return {
    async next(timeoutMs = 5000) {
      const giveUpAt = Date.now() + timeoutMs
      while (ready.length === 0) {
        let timer: NodeJS.Timeout | undefined
        const timeout = new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), Math.max(0, giveUpAt - Date.now()))
        })
        try {
          const chunk = await Promise.race([reader.read(), timeout])
          if (chunk.done) throw new Error('the event stream ended')
          buffer += decoder.decode(chunk.value, { stream: true })
          parseFrames()
        } finally {
          clearTimeout(timer)
        }
      }
      return ready.shift() as StreamedEvent
    },
    close() {
      controller.abort()
    },
  }
}
