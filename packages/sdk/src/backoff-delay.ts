const BASE_DELAY_MS = 250
const MAX_DELAY_MS = 5_000

/**
 * How long to wait before retry number `attempt` (0 for the first retry): 250 ms doubling up to
 * 5 s, then scaled into [50 %, 100 %] of that by `random`. The jitter spreads out the clients
 * that all lost their connection in the same gateway restart, so they do not reconnect in lockstep;
 * the floor keeps a retry from firing again at once.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  // Capping the exponent first keeps 2 ** attempt finite for any attempt count.
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.min(attempt, 16))
  const fraction = Math.min(1, Math.max(0, random()))
  return Math.round(ceiling * (0.5 + fraction / 2))
}
