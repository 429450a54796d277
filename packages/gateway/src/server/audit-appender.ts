import type { Transaction } from 'kysely'
import { type AuditCheckpoint, appendAuditEvents, createCheckpointer, getLatestCheckpoint, loadAuditSigner } from '../audit/index.js'
import type { AuditEvent, AuditEventData } from '../core/index.js'
import type { AuditAppender } from '../requests/index.js'
import type { Database, Store } from '../store/index.js'

/** The gateway's audit log: appends in the caller's transaction, then checkpoints when due. */
export interface GatewayAudit extends AuditAppender {
  /** Appends one event by the gateway itself in a transaction of its own (policy reloads, for instance). */
  record(event: GatewayEvent, now: number): Promise<void>
  /** Signs a checkpoint of the head if anything is new (on a timer, and on shutdown). */
  checkpointNow(now: number): Promise<void>
  /** What auditors need to check checkpoints: the public key as PEM and JWK, and its id. */
  publicKey: { keyId: string; pem: string; jwk: Record<string, unknown> }
  latestCheckpoint(): Promise<AuditCheckpoint | undefined>
}

/** The events the gateway records as itself, outside any request. */
export type GatewayEvent =
  | { type: 'policy.reloaded'; data: AuditEventData['policy.reloaded'] }
  | { type: 'policy.reload_failed'; data: AuditEventData['policy.reload_failed'] }

export function createAuditAppender(options: { store: Store; dataDir: string; everyEntries: number; everyMs: number }): GatewayAudit {
  const signer = loadAuditSigner({ dataDir: options.dataDir })
  const checkpointer = createCheckpointer(signer, {
    everyEntries: options.everyEntries,
    everyMs: options.everyMs,
  })
  const append = async (trx: Transaction<Database>, events: AuditEvent[], now: number): Promise<number> => {
    const entries = await appendAuditEvents(trx, events, now)
    const head = entries.at(-1)
    await checkpointer.maybeCheckpoint(trx, now, head)
    return head?.seq ?? 0
  }
  return {
    append,
    async record(event, now) {
      const actor = { id: 'countersign', kind: 'system', via: 'gateway' } as const
      await options.store.db.transaction().execute((trx) => append(trx, [{ ...event, actor }], now))
    },
    async checkpointNow(now) {
      await checkpointer.checkpointNow(options.store, now)
    },
    publicKey: { keyId: signer.keyId, pem: signer.publicKeyPem, jwk: { ...signer.publicKeyJwk } },
    latestCheckpoint: () => getLatestCheckpoint(options.store.db),
  }
}
