import type { Insertable } from 'kysely'
import type { RequestsTable } from './schema.js'

/** A minimal pending request row, for storage tests that need a request to hang rows on. */
export function requestRow(id: string, now: number): Insertable<RequestsTable> {
  return {
    id,
    requester_id: 'agent-1',
    requester_kind: 'agent',
    requester: '{}',
    on_behalf_of_id: null,
    on_behalf_of_verified: 0,
    action: 'db.export',
    resource: 'db/customers',
    environment: 'prod',
    reason: null,
    context: '{}',
    bind: '[]',
    idempotency_key: null,
    current_version: 1,
    digest: 'd'.repeat(64),
    status: 'pending',
    effect: 'review',
    decision: '{}',
    review: null,
    created_at: now,
    updated_at: now,
    deadline_at: now + 900_000,
    escalate_at: null,
    escalated_at: null,
    decided_at: null,
    result: null,
  }
}
