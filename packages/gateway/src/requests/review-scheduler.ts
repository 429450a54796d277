import { isCountersignError } from '../core/index.js'
import { PENDING, type Store } from '../store/index.js'
import type { ApprovalService } from './approval-service.js'

/** What the scheduler fires timers through. */
export type TimerTarget = Pick<ApprovalService, 'fire'>

/** The longest the scheduler sleeps before looking again, so changes made by other replicas are seen. */
const MAX_SLEEP_MS = 30_000
const BATCH = 100

/**
 * Fires deadlines from the database: expiry and escalation of pending
 * requests, expiry of unredeemed grants. Nothing lives only in memory, so a
 * restart loses no timer; each firing is a locked, guarded transition, so a
 * timer seen by two replicas (or twice) changes the request once.
 *
 * It is built before the approval service (which tells it of new deadlines)
 * and fires nothing until `start` hands it that service.
 */
export class ReviewScheduler {
  readonly #store: Store
  readonly #now: () => number
  readonly #onError: (error: unknown) => void
  #service: TimerTarget | undefined
  #timer: NodeJS.Timeout | undefined
  #nextAt = Number.POSITIVE_INFINITY
  #running: Promise<void> | undefined
  #stopped = true

  constructor(options: { store: Store; now: () => number; onError: (error: unknown) => void }) {
    this.#store = options.store
    this.#now = options.now
    this.#onError = options.onError
  }

  /** Fires due timers through `service` from now on, starting with any already due. */
  start(service: TimerTarget): void {
    this.#service = service
    this.#stopped = false
    this.#arm(this.#now())
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#running
  }

  /** Tells the scheduler about a new deadline, so it wakes in time even if it is sleeping longer. */
  deadlineAdded(at: number): void {
    if (!this.#stopped && at < this.#nextAt) this.#arm(at)
  }

  /** Fires everything due at `now` through `service` (the started one by default); returns how many timers fired. */
  async runDue(now: number, service: TimerTarget | undefined = this.#service): Promise<number> {
    if (service === undefined) throw new TypeError('ReviewScheduler.runDue needs a service: call start(service) first, or pass one')
    const db = this.#store.db
    let fired = 0
    const [expiring, escalating, grants] = await Promise.all([
      db.selectFrom('requests').select('id').where('status', '=', PENDING).where('deadline_at', '<=', now).limit(BATCH).execute(),
      db.selectFrom('requests').select('id').where('status', '=', PENDING).where('escalated_at', 'is', null)
        .where('escalate_at', '<=', now).limit(BATCH).execute(),
      db.selectFrom('grants').select('request_id').where('status', '=', 'issued').where('expires_at', '<=', now).limit(BATCH).execute(),
    ])
    const fire = async (id: string, type: 'expire' | 'escalate' | 'grant_expired'): Promise<void> => {
      try {
        await service.fire(id, { type })
        fired += 1
      } catch (error) {
        // Another replica (or a vote) got there first: the guarded transition refused, nothing changed.
        if (!isCountersignError(error)) this.#onError(error)
      }
    }
    for (const { id } of escalating) await fire(id, 'escalate')
    for (const { id } of expiring) await fire(id, 'expire')
    for (const { request_id } of grants) await fire(request_id, 'grant_expired')
    return fired
  }

  async #nextDue(): Promise<number> {
    const db = this.#store.db
    const [deadline, escalation, grant] = await Promise.all([
      db.selectFrom('requests').select((eb) => eb.fn.min('deadline_at').as('at')).where('status', '=', PENDING).executeTakeFirst(),
      db.selectFrom('requests').select((eb) => eb.fn.min('escalate_at').as('at')).where('status', '=', PENDING)
        .where('escalated_at', 'is', null).executeTakeFirst(),
      db.selectFrom('grants').select((eb) => eb.fn.min('expires_at').as('at')).where('status', '=', 'issued').executeTakeFirst(),
    ])
    const times = [deadline?.at, escalation?.at, grant?.at].filter((at) => at !== null && at !== undefined).map(Number)
    return times.length > 0 ? Math.min(...times) : Number.POSITIVE_INFINITY
  }

  #arm(at: number): void {
    clearTimeout(this.#timer)
    const now = this.#now()
    this.#nextAt = Math.min(at, now + MAX_SLEEP_MS)
    this.#timer = setTimeout(() => this.#tick(), Math.max(0, this.#nextAt - now))
    this.#timer.unref()
  }

  #tick(): void {
    if (this.#stopped) return
    this.#running = (async () => {
      try {
        const fired = await this.runDue(this.#now())
        // Something due that did not fire (refused, or failing) is retried a second later, not in a hot loop.
        const due = fired > 0 ? this.#now() : await this.#nextDue()
        const next = fired === 0 && due <= this.#now() ? this.#now() + 1000 : due
        if (!this.#stopped) this.#arm(next)
      } catch (error) {
        this.#onError(error)
        if (!this.#stopped) this.#arm(this.#now() + 1000)
      }
    })()
  }
}
