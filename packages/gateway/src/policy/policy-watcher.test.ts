import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { LocalError } from '../core/index.js'
import { watchPolicy } from './index.js'
import type { CompiledPolicy, PolicyWatcher } from './index.js'

const allowAll = 'version: 1\ndefaults: { effect: allow }\n'
const denyAll = 'version: 1\ndefaults: { effect: deny }\n'
const broken = 'version: 1\nrules:\n  - name: x\n    effect: maybe\n'

/** Collects what the watcher reports and lets a test await the next report. */
function recorder() {
  const events: Array<{ loaded: CompiledPolicy } | { failed: LocalError }> = []
  let wake: (() => void) | undefined
  const push = (event: (typeof events)[number]): void => {
    events.push(event)
    wake?.()
  }
  return {
    events,
    handlers: {
      onLoad: (loaded: CompiledPolicy) => push({ loaded }),
      onError: (failed: LocalError) => push({ failed }),
      debounceMs: 20,
    },
    next: (count: number): Promise<void> =>
      new Promise((resolve) => {
        const check = (): void => {
          if (events.length >= count) resolve()
        }
        wake = check
        check()
      }),
  }
}

describe('watchPolicy', () => {
  let dir: string
  let file: string
  let watcher: PolicyWatcher | undefined

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'countersign-policy-'))
    file = join(dir, 'policy.yaml')
  })

  afterEach(async () => {
    watcher?.close()
    watcher = undefined
    await rm(dir, { recursive: true, force: true })
  })

  it('loads the policy at once and refuses to start on an invalid one', () => {
    writeFileSync(file, broken)
    expect(() => watchPolicy(file, recorder().handlers)).toThrow(expect.objectContaining({ code: 'policy_invalid' }))
  })

  it('refuses to start when the file is missing', () => {
    expect(() => watchPolicy(file, recorder().handlers)).toThrow(/Cannot read policy file .*policy\.yaml \(ENOENT\)/)
  })

  it('reloads the policy when the file changes', async () => {
    writeFileSync(file, allowAll)
    const seen = recorder()
    watcher = watchPolicy(file, seen.handlers)
    expect(watcher.current().defaultEffect).toBe('allow')

    await writeFile(file, denyAll)
    await seen.next(1)
    expect(seen.events[0]).toEqual({ loaded: watcher.current() })
    expect(watcher.current().defaultEffect).toBe('deny')
  })

  it('keeps the last good policy and reports the error when a change is invalid', async () => {
    writeFileSync(file, allowAll)
    const seen = recorder()
    watcher = watchPolicy(file, seen.handlers)
    const good = watcher.current()

    await writeFile(file, broken)
    await seen.next(1)
    const [event] = seen.events
    expect(event && 'failed' in event ? event.failed.code : undefined).toBe('policy_invalid')
    expect(watcher.current()).toBe(good)

    await writeFile(file, denyAll)
    await seen.next(2)
    expect(watcher.current().defaultEffect).toBe('deny')
  })

  it('sees a file replaced by rename, as editors and config management do', async () => {
    writeFileSync(file, allowAll)
    const seen = recorder()
    watcher = watchPolicy(file, seen.handlers)

    const staged = join(dir, '.policy.yaml.tmp')
    await writeFile(staged, denyAll)
    await rename(staged, file)
    await seen.next(1)
    expect(watcher.current().defaultEffect).toBe('deny')
  })

  it('reports a deleted file and keeps the policy it had', async () => {
    writeFileSync(file, allowAll)
    const seen = recorder()
    watcher = watchPolicy(file, seen.handlers)

    await rm(file)
    await seen.next(1)
    const [event] = seen.events
    expect(event && 'failed' in event ? event.failed.message : '').toMatch(/ENOENT/)
    expect(watcher.current().defaultEffect).toBe('allow')
  })
})
