/**
 * Embedding Countersign: start a gateway from code, or use its policy engine
 * and audit verification directly. The `countersign` command is built on the
 * same functions.
 */
export { startGateway, loadGatewayConfig } from './server/index.js'
export type { ConfigOverrides, Gateway, GatewayConfig, GatewayHooks } from './server/index.js'
export { compilePolicy, evaluate, loadPolicyFile } from './policy/index.js'
export type { CompiledPolicy, Evaluation } from './policy/index.js'
export { canonicalDigest, CountersignError, httpStatusFor, LocalError, LOCAL_ERROR_CODES, WIRE_ERROR_CODES } from './core/index.js'
export type { ActionSpec, ErrorCode, LocalErrorCode, Principal, WireErrorCode } from './core/index.js'
export { verifyAuditLog } from './audit/index.js'
export type { AuditVerification } from './audit/index.js'
