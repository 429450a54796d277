import type { ActionRequest, Countersign } from '@countersign/sdk'
import { EXIT, UsageError } from './client-options.js'
import { describeStatus, LiveLine } from './live-line.js'

/**
 * Keeps one live line up to date while a request waits: state, votes, who approved, time left
 * (or "gateway unreachable, retrying…" while the gateway does not answer) and how to approve.
 */
export class DecisionWatch {
  readonly #line = new LiveLine(process.stderr)
  readonly #url: string
  readonly #ticker: NodeJS.Timeout
  #latest: ActionRequest | undefined
  #reachable = true

  constructor(url: string) {
    this.#url = url
    this.#ticker = setInterval(() => this.#render(), 1000)
  }

  /** The newest view seen, if any. */
  get latest(): ActionRequest | undefined {
    return this.#latest
  }

  readonly onUpdate = (request: ActionRequest): void => {
    this.#latest = request
    this.#reachable = true
    this.#render()
  }

  readonly onReachability = (reachable: boolean): void => {
    this.#reachable = reachable
    this.#render()
  }

  done(): void {
    clearInterval(this.#ticker)
    this.#line.done()
  }

  #render(): void {
    const request = this.#latest
    if (request === undefined || request.status !== 'pending') return
    this.#line.update(describeStatus(request, { width: this.#line.width, url: this.#url, reachable: this.#reachable }))
  }
}

/**
 * Aborts on Ctrl-C (SIGINT) or SIGTERM until disposed. While something runs that should get the
 * signal instead (the approved command), `forwardTo` hands it over.
 */
export class Interruption {
  readonly #controller = new AbortController()
  #forward: ((signal: NodeJS.Signals) => void) | undefined
  readonly #onSignal = (signal: NodeJS.Signals): void => {
    if (this.#forward) this.#forward(signal)
    else this.#controller.abort(new Interrupted(signal))
  }

  constructor() {
    process.on('SIGINT', this.#onSignal)
    process.on('SIGTERM', this.#onSignal)
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }

  forwardTo(forward: ((signal: NodeJS.Signals) => void) | undefined): void {
    this.#forward = forward
  }

  dispose(): void {
    process.off('SIGINT', this.#onSignal)
    process.off('SIGTERM', this.#onSignal)
  }
}

/** The reason an interrupted wait was aborted with. */
export class Interrupted extends Error {
  override readonly name = 'Interrupted'

  constructor(readonly signalName: NodeJS.Signals) {
    super(`interrupted by ${signalName}`)
  }
}

/**
 * After Ctrl-C: reports whether the request ended up cancelled. `guard` cancels a pending request
 * itself when its signal aborts; `cancel` is passed for waits that did not go through `guard`.
 */
export async function reportInterrupted(cs: Countersign, id: string | undefined, cancel: boolean): Promise<number> {
  if (id === undefined) {
    console.error('countersign: interrupted before the gateway answered; nothing was run.')
    return EXIT.interrupted
  }
  try {
    const request = cancel ? await cs.cancel(id, { reason: 'the requester stopped waiting' }) : await cs.get(id)
    if (request.status === 'cancelled') {
      console.error(`countersign: interrupted; cancelled ${id}, nothing was run.`)
      return EXIT.cancelled
    }
    console.error(`countersign: interrupted; ${id} is ${request.status}, nothing was run.`)
  } catch (error) {
    console.error(`countersign: interrupted; could not cancel ${id} (${(error as Error).message}); nothing was run.`)
  }
  return EXIT.interrupted
}

/** `--timeout` in seconds, as milliseconds. */
export function timeoutMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const value = Number(text)
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not "${text}".`)
  return value * 1000
}

/** The exit code for a decided request. */
export function exitFor(request: ActionRequest): number {
  switch (request.status) {
    case 'approved':
      return EXIT.ok
    case 'denied':
      return EXIT.denied
    case 'expired':
      return EXIT.expired
    case 'cancelled':
      return EXIT.cancelled
    case 'pending':
      return EXIT.pending
  }
}
