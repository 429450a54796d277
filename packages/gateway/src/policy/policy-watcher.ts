import { createHash } from 'node:crypto'
import { readFileSync, watch } from 'node:fs'
import type { FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { isLocalError, LocalError } from '../core/index.js'
import { compilePolicy } from './compile-policy.js'
import type { CompiledPolicy } from './compile-policy.js'
import { policyReadError } from './load-policy-file.js'

export interface PolicyWatcherHandlers {
  /** Called with each policy that replaced the previous one after a change. */
  onLoad(policy: CompiledPolicy): void
  /** Called when a changed file does not load; the previous policy stays in force. */
  onError(error: LocalError): void
  /** Quiet time after the last change before reloading; editors write in bursts. Default 100 ms. */
  debounceMs?: number
}

export interface PolicyWatcher {
  /** The last policy that loaded successfully. */
  current(): CompiledPolicy
  /** Stops watching; no handler is called afterwards. */
  close(): void
}

/**
 * Loads a policy file and reloads it whenever it changes. The first load is
 * synchronous and throws if the policy is invalid, so a server never starts
 * without one; later failures go to `onError` and the last good policy stays.
 *
 * The directory is watched rather than the file because editors and config
 * management usually replace a file (write a temp file, rename it over), which
 * a watch on the old file would not see.
 *
 * @throws LocalError `policy_invalid` when the initial load fails
 * @example
 * const watcher = watchPolicy('policy.yaml', {
 *   onLoad: (policy) => log.info({ sha256: policy.sha256 }, 'policy reloaded'),
 *   onError: (error) => log.error(error.message),
 * })
 * evaluate(watcher.current(), request, principal, Date.now())
 */
export function watchPolicy(path: string, handlers: PolicyWatcherHandlers): PolicyWatcher {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw policyReadError(path, error)
  }
  let current = compilePolicy(text, path)
  let lastSeen = current.sha256
  let closed = false
  let timer: ReturnType<typeof setTimeout> | undefined
  // Reloads run one after another so an older read never overwrites a newer one.
  let queue = Promise.resolve()

  const reload = async (): Promise<void> => {
    let changed: string
    try {
      changed = await readFile(path, 'utf8')
    } catch (error) {
      if (!closed) handlers.onError(policyReadError(path, error))
      return
    }
    const sha256 = createHash('sha256').update(changed, 'utf8').digest('hex')
    if (closed || sha256 === lastSeen) return
    lastSeen = sha256
    try {
      current = compilePolicy(changed, path)
    } catch (error) {
      handlers.onError(
        isLocalError(error)
          ? error
          : new LocalError('policy_invalid', `Policy ${path} failed to load: ${String(error)}`, { file: path }),
      )
      return
    }
    handlers.onLoad(current)
  }

  const name = basename(path)
  const watcher: FSWatcher = watch(dirname(path), (_event, filename) => {
    // Some platforms do not say which file changed; reload to be safe.
    if (closed || (filename !== null && filename !== name)) return
    clearTimeout(timer)
    timer = setTimeout(() => {
      queue = queue.then(reload)
    }, handlers.debounceMs ?? 100)
  })
  watcher.on('error', (error) => {
    if (!closed) handlers.onError(policyReadError(path, error))
  })

  return {
    current: () => current,
    close: () => {
      closed = true
      clearTimeout(timer)
      watcher.close()
    },
  }
}
