import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { sql } from 'kysely'
import { isConnectionLost, type Store } from '../store/index.js'
import type { RequestChange, RequestEvents } from './request-events.js'

const CHANNEL = 'countersign_changes'
/** The first retry is quick (one terminated backend comes back at once); a server that is down is retried every second. */
const RECONNECT_MS = [100, 1000] as const
/** Changes replayed from the audit log after a reconnect, at most (one per request, the latest). */
const REPLAY_LIMIT = 1000
const ANNOUNCE_ATTEMPTS = 3

/**
 * Carries request changes between gateway replicas that share one PostgreSQL
 * database, so a client long-polling one replica wakes when a reviewer votes
 * through another. Each change is announced with NOTIFY after its commit;
 * every replica LISTENs and republishes what other replicas announce. The
 * payload names the schema, so deployments sharing a database stay apart, and
 * the replica that made the change, which ignores its own echo.
 *
 * The LISTEN connection can die (a restart, a failover, a terminated
 * backend); the feed reconnects by itself. Notifications sent while it was
 * away are lost, so after reconnecting it replays, from the audit log, every
 * request change recorded after the last one it heard.
 */
export class PostgresChangeFeed {
  readonly #databaseUrl: string
  readonly #scope: string
  readonly #events: RequestEvents
  readonly #store: Store
  readonly #onError: (error: unknown) => void
  /** Marks this replica's own announcements, which it already published locally when it made them. */
  readonly #origin = randomUUID()
  #client: pg.Client | undefined
  #closed = false
  #retry: NodeJS.Timeout | undefined
  #failures = 0
  /** The newest audit sequence number known to have reached this replica (heard, or read at connect). */
  #heardSeq = 0

  constructor(options: { databaseUrl: string; scope: string; events: RequestEvents; store: Store; onError: (error: unknown) => void }) {
    this.#databaseUrl = options.databaseUrl
    this.#scope = options.scope
    this.#events = options.events
    this.#store = options.store
    this.#onError = options.onError
  }

  /** Connects and LISTENs; a failure here fails the start. Later connection losses are retried in the background. */
  async start(): Promise<void> {
    await this.#connect()
    this.#heardSeq = await this.#headSeq()
  }

  /** Announces a committed change to the other replicas; a connection lost on the way is retried. */
  async announce(store: Store, change: RequestChange): Promise<void> {
    const payload = `${this.#scope}\t${this.#origin}\t${change.requestId}\t${change.seq}`
    for (let attempt = 1; ; attempt++) {
      try {
        await sql`select pg_notify(${CHANNEL}, ${payload})`.execute(store.db)
        return
      } catch (error) {
        if (attempt >= ANNOUNCE_ATTEMPTS || !isConnectionLost(error)) throw error
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retry)
    const client = this.#client
    this.#client = undefined
    await client?.end().catch(() => undefined)
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#databaseUrl })
    client.on('notification', (message) => this.#receive(message.payload))
    // Either may come first, or alone, when the server goes away; both lead to one reconnect.
    client.on('error', (error) => this.#lost(client, error))
    client.on('end', () => this.#lost(client, undefined))
    try {
      await client.connect()
      await client.query(`listen ${CHANNEL}`)
    } catch (error) {
      client.removeAllListeners('end')
      await client.end().catch(() => undefined)
      throw error
    }
    if (this.#closed) {
      await client.end().catch(() => undefined)
      return
    }
    this.#client = client
  }

  #receive(payload: string | undefined): void {
    const [scope, origin, requestId, seq] = (payload ?? '').split('\t')
    if (scope !== this.#scope || !requestId || !Number.isSafeInteger(Number(seq))) return
    this.#heardSeq = Math.max(this.#heardSeq, Number(seq))
    // An echo of our own change would wake waiters with news they already had (or, arriving late, stale news).
    if (origin === this.#origin) return
    this.#events.publish({ requestId, seq: Number(seq) })
  }

  #lost(client: pg.Client, error: unknown): void {
    if (client !== this.#client) return
    this.#client = undefined
    client.removeAllListeners('end')
    client.end().catch(() => undefined)
    if (this.#closed) return
    this.#onError(error ?? new Error('the LISTEN connection closed'))
    this.#scheduleReconnect()
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#retry) return
    const delay = RECONNECT_MS[Math.min(this.#failures, RECONNECT_MS.length - 1)]
    this.#failures += 1
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      if (this.#closed) return
      this.#reconnect().catch((error: unknown) => {
        this.#onError(error)
        this.#scheduleReconnect()
      })
    }, delay)
    this.#retry.unref()
  }

  async #reconnect(): Promise<void> {
    // A retry after a failed replay keeps the connection it already has.
    if (this.#client === undefined) await this.#connect()
    this.#failures = 0
    await this.#replayMissed()
  }

  /** Publishes the latest change of every request changed after the last one heard, from the durable log. */
  async #replayMissed(): Promise<void> {
    const missed = await this.#store.db
      .selectFrom('audit_entries')
      .select(['seq', 'request_id'])
      .where('seq', '>', this.#heardSeq)
      .where('request_id', 'is not', null)
      .orderBy('seq', 'desc')
      .limit(REPLAY_LIMIT)
      .execute()
    const latest = new Map<string, number>()
    for (const entry of missed) if (entry.request_id !== null && !latest.has(entry.request_id)) latest.set(entry.request_id, entry.seq)
    for (const [requestId, seq] of [...latest].sort((x, y) => x[1] - y[1])) {
      this.#heardSeq = Math.max(this.#heardSeq, seq)
      this.#events.publish({ requestId, seq })
    }
  }

  async #headSeq(): Promise<number> {
    const head = await this.#store.db.selectFrom('audit_entries').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst()
    return Number(head?.seq ?? 0)
  }
}
