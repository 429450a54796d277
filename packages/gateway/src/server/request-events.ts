import { EventEmitter } from 'node:events'

/** A change to one request, identified by the audit sequence number that recorded it. */
export interface RequestChange {
  requestId: string
  seq: number
}

/**
 * In-process fan-out of request changes to long-polls and SSE streams. A
 * publisher calls `publish` only after its transaction committed, so a woken
 * waiter always reads the new state. Waiting is push-based: nothing polls.
 */
export class RequestEvents {
  readonly #emitter = new EventEmitter()

  constructor() {
    // Every long-poll and SSE stream is one listener; the default cap of 10 would warn.
    this.#emitter.setMaxListeners(0)
  }

  publish(change: RequestChange): void {
    this.#emitter.emit(change.requestId, change)
    this.#emitter.emit('*', change)
  }

  /** Calls `listener` for every change of `requestId` (or of any request with `'*'`); returns the unsubscribe. */
  subscribe(requestId: string | '*', listener: (change: RequestChange) => void): () => void {
    this.#emitter.on(requestId, listener)
    return () => this.#emitter.off(requestId, listener)
  }

  /**
   * Resolves with the next change of `requestId`, or with `undefined` after
   * `timeoutMs` or when `signal` aborts.
   */
  next(requestId: string, timeoutMs: number, signal?: AbortSignal): Promise<RequestChange | undefined> {
    return new Promise((resolve) => {
      const done = (change: RequestChange | undefined): void => {
        clearTimeout(timer)
        unsubscribe()
        signal?.removeEventListener('abort', onAbort)
        resolve(change)
      }
      const onAbort = (): void => done(undefined)
      const unsubscribe = this.subscribe(requestId, done)
      const timer = setTimeout(() => done(undefined), timeoutMs)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
}
