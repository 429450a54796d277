import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { sql } from 'kysely'
import type { Store } from '../store/index.js'
import type { RequestChange, RequestEvents } from './request-events.js'

const CHANNEL = 'countersign_changes'
const RECONNECT_MS = 1000

/**
 * Carries request changes between gateway replicas that share one PostgreSQL
 * database, so a client long-polling one replica wakes when a reviewer votes
 * through another. Each change is announced with NOTIFY after its commit;
 * every replica LISTENs and republishes what other replicas announce. The
 * payload names the schema, so deployments sharing a database stay apart, and
 * the replica that made the change, which ignores its own echo.
 */
export class PostgresChangeFeed {
  readonly #databaseUrl: string
  readonly #scope: string
  readonly #events: RequestEvents
  readonly #onError: (error: unknown) => void
  /** Marks this replica's own announcements, which it already published locally when it made them. */
  readonly #origin = randomUUID()
  #client: pg.Client | undefined
  #closed = false
  #retry: NodeJS.Timeout | undefined

  constructor(options: { databaseUrl: string; scope: string; events: RequestEvents; onError: (error: unknown) => void }) {
    this.#databaseUrl = options.databaseUrl
    this.#scope = options.scope
    this.#events = options.events
    this.#onError = options.onError
  }

  /** Connects and LISTENs; later connection losses are retried in the background. */
  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#databaseUrl })
    client.on('notification', (message) => this.#receive(message.payload))
    client.on('error', (error) => {
      this.#onError(error)
      this.#reconnect()
    })
    await client.connect()
    await client.query(`listen ${CHANNEL}`)
    this.#client = client
  }

  /** Announces a committed change to the other replicas. */
  async announce(store: Store, change: RequestChange): Promise<void> {
    const payload = `${this.#scope}\t${this.#origin}\t${change.requestId}\t${change.seq}`
    await sql`select pg_notify(${CHANNEL}, ${payload})`.execute(store.db)
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retry)
    await this.#client?.end().catch(() => undefined)
  }

  #receive(payload: string | undefined): void {
    const [scope, origin, requestId, seq] = (payload ?? '').split('\t')
    // An echo of our own change would wake waiters with news they already had (or, arriving late, stale news).
    if (scope !== this.#scope || origin === this.#origin || !requestId || !Number.isSafeInteger(Number(seq))) return
    this.#events.publish({ requestId, seq: Number(seq) })
  }

  #reconnect(): void {
    const broken = this.#client
    this.#client = undefined
    void broken?.end().catch(() => undefined)
    if (this.#closed || this.#retry) return
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      if (this.#closed) return
      this.start().catch((error: unknown) => {
        this.#onError(error)
        this.#reconnect()
      })
    }, RECONNECT_MS)
    this.#retry.unref()
  }
}
