import { readFile } from 'node:fs/promises'
import { LocalError } from '../core/index.js'
import { compilePolicy } from './compile-policy.js'
import type { CompiledPolicy } from './compile-policy.js'

/**
 * Reads and compiles a policy file. Diagnostics name the file as `path` was
 * given, so they match what the operator typed.
 *
 * @throws LocalError `policy_invalid` when the file cannot be read or is invalid
 * @example
 * const policy = await loadPolicyFile('policy.yaml')
 */
export async function loadPolicyFile(path: string): Promise<CompiledPolicy> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw policyReadError(path, error)
  }
  return compilePolicy(text, path)
}

/** The error for a policy file that cannot be read at all. */
export function policyReadError(path: string, error: unknown): LocalError {
  const reason = error instanceof Error && 'code' in error ? String(error.code) : String(error)
  return new LocalError(
    'policy_invalid',
    `Cannot read policy file ${path} (${reason}); check the path and its permissions`,
    { file: path, errors: [{ file: path, line: 1, col: 1, message: `cannot read the file (${reason})` }] },
  )
}
