import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CompiledQuery, createQueryId, type KyselyPlugin, type RootOperationNode } from 'kysely'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { openStore, type Store } from '../store/index.js'
import { PENDING_BY_DIGEST_SQL, requestRepository } from './request-repository.js'
import { ReviewScheduler } from './review-scheduler.js'

/** Records the queries that pass through it, so a test can look at their plans. */
function captureQueries(): { plugin: KyselyPlugin; nodes: RootOperationNode[] } {
  const nodes: RootOperationNode[] = []
  return {
    nodes,
    plugin: {
      transformQuery: ({ node }) => {
        nodes.push(node)
        return node
      },
      transformResult: async ({ result }) => result,
    },
  }
}

let dataDir: string
let store: Store

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'countersign-pending-'))
  store = await openStore({ dataDir })
})

afterEach(async () => {
  await store.close()
  rmSync(dataDir, { recursive: true, force: true })
})

/**
 * SQLite's plan for each captured query, one line per query. A query of
 * pending requests must name the status as a literal: with a parameter SQLite
 * still finds the partial index, but plans the statement again on every run.
 */
async function plans(nodes: RootOperationNode[]): Promise<string[]> {
  const executor = store.db.getExecutor()
  const result: string[] = []
  for (const node of nodes) {
    const compiled = executor.compileQuery(node, createQueryId())
    if (compiled.sql.includes('from "requests"')) expect(compiled.sql).toContain(`"status" = 'pending'`)
    const { rows } = await store.db.executeQuery<{ detail: string }>(
      CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]),
    )
    result.push(rows.map((row) => row.detail).join('; '))
  }
  return result
}

it('looks up a pending request by digest through the index of pending requests only', async () => {
  const { rows } = await store.db.executeQuery<{ detail: string }>(
    CompiledQuery.raw(`explain query plan ${PENDING_BY_DIGEST_SQL}`, ['agent', 'f'.repeat(64)]),
  )
  expect(rows.map((row) => row.detail)).toEqual([expect.stringContaining('USING INDEX requests_pending_digest_idx')])
  expect(PENDING_BY_DIGEST_SQL).toContain(`"status" = 'pending'`)
  await store.db.transaction().execute(async (trx) => {
    expect(await requestRepository.findPendingByDigest(trx, 'agent', 'f'.repeat(64))).toBeUndefined()
  })
})

it('finds due deadlines and escalations through an index, without reading every request', async () => {
  const { plugin, nodes } = captureQueries()
  const scheduler = new ReviewScheduler({
    store: { ...store, db: store.db.withPlugin(plugin) },
    now: () => Date.now(),
    onError: (error) => {
      throw error
    },
  })
  // Nothing is due in an empty store, so the service is never called.
  const fire = (): Promise<never> => Promise.reject(new Error('nothing should fire'))
  expect(await scheduler.runDue(Date.now(), { fire })).toBe(0)
  const requestPlans = (await plans(nodes)).filter((plan) => !plan.includes('grants'))
  expect(requestPlans).toHaveLength(2)
  for (const plan of requestPlans) expect(plan).toMatch(/^SEARCH requests USING INDEX requests_(status|pending_\w+)_idx/)
})
