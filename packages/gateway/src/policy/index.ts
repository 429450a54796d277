export { compilePolicy, validatePolicy } from './compile-policy.js'
export type {
  CompiledPolicy,
  CompiledRiskRule,
  CompiledRule,
} from './compile-policy.js'
export { loadPolicyFile } from './load-policy-file.js'
export { evaluate } from './evaluate.js'
export type { Evaluation, MatchedRule } from './evaluate.js'
export { explainView } from './explain-view.js'
export { redactString, redactValue } from './redact.js'
export type { SecretKind } from './redact.js'
export { watchPolicy } from './policy-watcher.js'
export type { PolicyWatcher, PolicyWatcherHandlers } from './policy-watcher.js'
export { runPolicyTests } from './run-policy-tests.js'
export type { PolicyTestResult } from './run-policy-tests.js'
export { parseActionRequest, parsePrincipal } from './policy-inputs.js'
export { formatDiagnostic, parseYamlSource } from './yaml-source.js'
export type { PolicyDiagnostic, YamlPath, YamlSource } from './yaml-source.js'
export { zodDiagnostics } from './zod-diagnostics.js'
