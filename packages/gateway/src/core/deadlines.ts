import { CountersignError } from './errors.js'

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 } as const
// Units in descending order, each at most once: `1h30m`, not `30m1h` or `1h1h`.
const DURATION = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/

/**
 * Parses a policy duration such as `30s`, `15m`, `2h`, `1d` or `1h30m` into
 * milliseconds. Units go from largest to smallest and appear at most once.
 *
 * @throws CountersignError `invalid_request` for anything else, including zero.
 * @example
 * parseDuration('1h30m') // 5_400_000
 */
export function parseDuration(text: string): number {
  const match = typeof text === 'string' ? DURATION.exec(text) : null
  if (match === null || text === '') {
    throw new CountersignError(
      'invalid_request',
      `Duration ${JSON.stringify(text)} is not valid; write whole numbers with units d, h, m, s, largest first (e.g. "15m", "1h30m").`,
      { value: text },
    )
  }
  const [, days, hours, minutes, seconds] = match
  const ms =
    Number(days ?? 0) * UNIT_MS.d +
    Number(hours ?? 0) * UNIT_MS.h +
    Number(minutes ?? 0) * UNIT_MS.m +
    Number(seconds ?? 0) * UNIT_MS.s
  if (ms === 0 || !Number.isSafeInteger(ms)) {
    throw new CountersignError(
      'invalid_request',
      `Duration ${JSON.stringify(text)} must be greater than zero and at most ${Number.MAX_SAFE_INTEGER} ms.`,
      { value: text },
    )
  }
  return ms
}

export interface DeadlineSettings {
  timeoutMs: number
  escalateAfterMs?: number
}

export interface Deadlines {
  deadlineAt: number
  escalateAt?: number
}

/**
 * When a review times out and, if escalation is configured, when it escalates.
 *
 * @throws CountersignError `invalid_request` when a duration is not a positive
 *   whole number of ms, or escalation would come at or after the timeout (it
 *   would never happen).
 * @example
 * computeDeadlines(now, { timeoutMs: parseDuration('30m'), escalateAfterMs: parseDuration('10m') })
 */
export function computeDeadlines(now: number, settings: DeadlineSettings): Deadlines {
  assertPositiveMs('timeout', settings.timeoutMs)
  const deadlines: Deadlines = { deadlineAt: now + settings.timeoutMs }
  if (settings.escalateAfterMs !== undefined) {
    assertPositiveMs('escalate.after', settings.escalateAfterMs)
    if (settings.escalateAfterMs >= settings.timeoutMs) {
      throw new CountersignError(
        'invalid_request',
        `escalate.after (${settings.escalateAfterMs} ms) must be shorter than the review timeout (${settings.timeoutMs} ms), or the request times out before it escalates.`,
        { escalate_after_ms: settings.escalateAfterMs, timeout_ms: settings.timeoutMs },
      )
    }
    deadlines.escalateAt = now + settings.escalateAfterMs
  }
  return deadlines
}

function assertPositiveMs(name: string, ms: number): void {
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    throw new CountersignError('invalid_request', `${name} must be a positive whole number of milliseconds; got ${String(ms)}.`, {
      [name]: ms,
    })
  }
}
