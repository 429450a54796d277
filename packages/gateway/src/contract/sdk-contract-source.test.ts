import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { SDK_CONTRACT_FILE, sdkContractSource } from './sdk-contract-source.js'

const generated = fileURLToPath(new URL(`../../../../${SDK_CONTRACT_FILE}`, import.meta.url))

describe('the SDK contract generated from the wire schemas', () => {
  it('is up to date with the schemas (npm run build regenerates it)', () => {
    expect(readFileSync(generated, 'utf8')).toBe(sdkContractSource())
  })

  it('lists the wire error codes and types the request view with snake_case fields', () => {
    const source = sdkContractSource()
    expect(source).toContain('export const WIRE_ERROR_CODES = [\n  "invalid_request",')
    expect(source).not.toMatch(/"(policy_invalid|config_invalid|audit_verify_failed)"/)
    expect(source).toMatch(/export interface RequestView \{\n {2}id: string\n {2}status: RequestStatus\n/)
    expect(source).toContain('  on_behalf_of: OnBehalfOfView | null\n')
    expect(source).toContain('  votes: VoteView[]\n')
  })
})
