export type { AuditCheckpoint, AuditEntry } from './audit-entry.js'
export { GENESIS_HASH, hashAuditEntry } from './audit-hash.js'
export { appendAuditEvents } from './append-audit-events.js'
export {
  AUDIT_SIGNING_KEY_FILE,
  loadAuditSigner,
  parseAuditPublicKey,
  verifyCheckpointSignature,
} from './audit-signer.js'
export type { AuditPublicJwk, AuditSigner } from './audit-signer.js'
export { DEFAULT_CHECKPOINT_POLICY, createCheckpointer, getLatestCheckpoint } from './checkpointer.js'
export type { CheckpointPolicy, Checkpointer } from './checkpointer.js'
export { verifyAuditLog } from './verify-audit-log.js'
export type { AuditProblem, AuditVerification, AuditVerifyProgress } from './verify-audit-log.js'
export { exportAuditLog } from './export-audit-log.js'
export type { AuditExportFormat, AuditExportOptions } from './export-audit-log.js'
