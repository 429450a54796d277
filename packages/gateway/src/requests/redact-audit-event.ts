import type { AuditEvent } from '../core/index.js'
import { redactString } from '../policy/index.js'

const redactNullable = (text: string | null): string | null => (text === null ? null : redactString(text))

/**
 * What the audit log may hold of an event: every free text (action, resource,
 * environment, reasons, result details) through the built-in detectors, and
 * params as reviewers see them (`shownParams` of the version). Digests, ids
 * and counts are kept, so the entry still binds the real values.
 *
 * Every type is listed, so a new type has to decide what of it is text.
 */
export function redactAuditEvent(event: AuditEvent, shownParams: (version: number) => Record<string, unknown>): AuditEvent {
  switch (event.type) {
    case 'request.created': {
      const { data } = event
      return {
        ...event,
        data: {
          ...data,
          action: redactString(data.action),
          resource: redactString(data.resource),
          environment: redactString(data.environment),
          reason: redactNullable(data.reason),
          params: shownParams(data.version),
        },
      }
    }
    case 'request.edited':
      return { ...event, data: { ...event.data, params: shownParams(event.data.to_version) } }
    case 'vote.cast':
      return { ...event, data: { ...event.data, reason: redactNullable(event.data.reason) } }
    case 'request.cancelled':
      return { ...event, data: { reason: redactNullable(event.data.reason) } }
    case 'request.result':
      return { ...event, data: { ...event.data, detail: redactNullable(event.data.detail) } }
    case 'request.approved':
    case 'request.denied':
    case 'request.expired':
    case 'request.escalated':
    case 'vote.refused':
    case 'cancel.refused':
    case 'result.refused':
    case 'grant.issued':
    case 'grant.redeemed':
    case 'grant.expired':
    case 'grant.refused':
    case 'key.created':
    case 'key.revoked':
    case 'policy.reloaded':
    case 'policy.reload_failed':
      return event
  }
}
