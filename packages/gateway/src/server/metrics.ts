import { Counter, Gauge, Histogram, Registry } from 'prom-client'

/** The gateway's Prometheus metrics, on a registry of its own (never the global one). */
export class GatewayMetrics {
  readonly registry = new Registry()
  readonly requests: Counter<'effect'>
  readonly timeToDecision: Histogram<'outcome'>
  readonly votes: Counter<'decision'>
  readonly grantsRedeemed: Counter
  readonly errors: Counter<'code'>
  /** Where the pending gauge reads from; set once the approval service exists. */
  #countPending: (() => Promise<number>) | undefined

  constructor() {
    const registers = [this.registry]
    const pending = (): Promise<number> | undefined => this.#countPending?.()
    this.requests = new Counter({
      name: 'countersign_requests_total',
      help: 'Action requests by the policy effect they received.',
      labelNames: ['effect'],
      registers,
    })
    this.timeToDecision = new Histogram({
      name: 'countersign_time_to_decision_seconds',
      help: 'Time from a reviewed request to its final decision.',
      labelNames: ['outcome'],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 14400],
      registers,
    })
    new Gauge({
      name: 'countersign_pending_requests',
      help: 'Requests waiting for review.',
      registers,
      async collect() {
        const count = await pending()
        if (count !== undefined) this.set(count)
      },
    })
    this.votes = new Counter({
      name: 'countersign_votes_total',
      help: 'Votes counted, by decision.',
      labelNames: ['decision'],
      registers,
    })
    this.grantsRedeemed = new Counter({
      name: 'countersign_grants_redeemed_total',
      help: 'Grants redeemed.',
      registers,
    })
    this.errors = new Counter({
      name: 'countersign_errors_total',
      help: 'Refusals and failures answered, by error code.',
      labelNames: ['code'],
      registers,
    })
  }

  /** Names the source of `countersign_pending_requests`, read at each scrape. */
  countPendingWith(countPending: () => Promise<number>): void {
    this.#countPending = countPending
  }
}
