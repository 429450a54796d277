import type { ActionRequest } from './types.js'

/** The longest a single long-poll asks the gateway to hold the connection. */
export const MAX_POLL_SECONDS = 25

/**
 * How long after a request's review deadline a waiter keeps going. The gateway expires the
 * request at its deadline, so a waiter still without an answer well past it has lost the gateway,
 * not the decision.
 */
export const DEADLINE_GRACE_MS = 60_000

export interface WaitDeadlineInput {
  startedAt: number
  /** The caller's own limit, if any. */
  timeoutMs: number | undefined
  /** The limit for a call that has not reached the gateway yet. */
  requestTimeoutMs: number
  /** The newest view of the request, once one has been seen. */
  lastSeen: ActionRequest | undefined
}

/**
 * When `wait` stops, in epoch milliseconds: the caller's `timeoutMs` if given; otherwise the
 * request's review deadline plus a grace period; before the request has been seen at all, the
 * ordinary per-call limit. Infinity when the request has no review deadline.
 */
export function waitDeadline(input: WaitDeadlineInput): number {
  if (input.timeoutMs !== undefined) return input.startedAt + input.timeoutMs
  if (input.lastSeen === undefined) return input.startedAt + input.requestTimeoutMs
  const deadlineAt = input.lastSeen.review?.deadlineAt
  const reviewDeadline = deadlineAt == null ? Number.NaN : Date.parse(deadlineAt)
  return Number.isNaN(reviewDeadline) ? Number.POSITIVE_INFINITY : reviewDeadline + DEADLINE_GRACE_MS
}

/** The `?timeout=` for the next long-poll: as long as allowed, but not past the deadline. */
export function pollTimeoutSeconds(remainingMs: number): number {
  return Math.min(MAX_POLL_SECONDS, Math.max(1, Math.ceil(remainingMs / 1000)))
}
