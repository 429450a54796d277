import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { AUDIT_EVENT_TYPES } from './audit-event.js'

describe('AUDIT_EVENT_TYPES', () => {
  it('lists every type exactly as the audit guide documents them, in the same order', () => {
    const guide = readFileSync(new URL('../../../../docs/audit.md', import.meta.url), 'utf8')
    const section = guide.slice(guide.indexOf('### Event types and their data'), guide.indexOf('## Hashing'))
    const documented = [...section.matchAll(/^\| `([a-z_.]+)` \|/gm)].map((match) => match[1])
    expect(documented).toEqual([...AUDIT_EVENT_TYPES])
  })
})
