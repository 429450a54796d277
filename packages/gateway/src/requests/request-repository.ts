import { type Kysely, type Selectable, sql, type Transaction } from 'kysely'
import {
  CountersignError,
  type Effect,
  type GrantState,
  type Principal,
  type RecordedVote,
  type RequestState,
  type RequestStatus,
  type RequestVersion,
  type ReviewRequirements,
} from '../core/index.js'
import {
  type Database,
  dialectOf,
  insertRows,
  isUniqueViolation,
  type RequestsTable,
  runSql,
} from '../store/index.js'

/** What a request row holds beyond the lifecycle state: the decision and what the reviewer is shown. */
export interface RequestRecord {
  state: RequestState
  effect: Effect
  reason: string | null
  /** Redacted when stored. */
  context: Record<string, unknown>
  decision: StoredDecision
  idempotencyKey: string | null
  /** Redacted params per version. */
  redactedParams: Map<number, Record<string, unknown>>
}

export interface StoredDecision {
  matchedRules: Array<{ name: string; effect: Effect }>
  risk: number
  explain: string[]
  policySha256: string
}

/** Which requests a listing returns; `requesterId` limits it to one requester's own. */
export interface RequestListFilter {
  status?: string
  action?: string
  requesterId?: string
  limit: number
  cursor?: string
}

type RequestRow = Selectable<RequestsTable>

/** Every submission runs this lookup; the status is a literal for the reason given at `PENDING`. */
export const PENDING_BY_DIGEST_SQL = `select "id" from "requests" where "requester_id" = ? and "digest" = ? and "status" = 'pending'`

const json = (value: unknown): string => JSON.stringify(value)
const parse = <T>(text: string): T => JSON.parse(text) as T

/**
 * Reads and writes requests with their versions, votes and grant. Every method
 * takes the caller's transaction: a state change and its audit entries commit
 * together or not at all.
 */
export const requestRepository = {
  /** Loads a request, locking its row on PostgreSQL so concurrent votes and redemptions serialize. */
  async load(trx: Transaction<Database>, id: string, options: { lock: boolean }): Promise<RequestRecord | undefined> {
    let query = trx.selectFrom('requests').selectAll().where('id', '=', id)
    if (options.lock && dialectOf(trx) === 'postgres') query = query.forUpdate()
    const row = await query.executeTakeFirst()
    if (!row) return undefined
    const [versions, votes, grant] = await Promise.all([
      trx.selectFrom('request_versions').selectAll().where('request_id', '=', id).orderBy('version').execute(),
      trx.selectFrom('votes').selectAll().where('request_id', '=', id).orderBy('created_at').execute(),
      trx.selectFrom('grants').selectAll().where('request_id', '=', id).executeTakeFirst(),
    ])
    const state = stateFromRows(row, versions, votes, grant)
    return {
      state,
      effect: row.effect as Effect,
      reason: row.reason,
      context: parse(row.context),
      decision: parse(row.decision),
      idempotencyKey: row.idempotency_key,
      redactedParams: new Map(versions.map((v) => [v.version, parse<Record<string, unknown>>(v.redacted_params)])),
    }
  },

  /** Inserts a new request (version 1, and its grant when the policy allowed it). */
  async insert(trx: Transaction<Database>, record: RequestRecord): Promise<void> {
    const { state } = record
    await insertRows(trx, 'requests', [{
      id: state.id,
      requester_id: state.requester.id,
      requester_kind: state.requester.kind,
      requester: json(state.requester),
      on_behalf_of_id: state.onBehalfOf?.id ?? null,
      on_behalf_of_verified: state.onBehalfOf?.verified ? 1 : 0,
      action: state.action,
      resource: state.resource,
      environment: state.environment,
      reason: record.reason,
      context: json(record.context),
      bind: json(state.bind),
      idempotency_key: record.idempotencyKey,
      current_version: state.currentVersion,
      digest: state.digest,
      status: state.status,
      effect: record.effect,
      decision: json(record.decision),
      review: state.review ? json(state.review) : null,
      created_at: state.createdAt,
      updated_at: state.updatedAt,
      deadline_at: state.deadlineAt ?? null,
      escalate_at: state.escalateAt ?? null,
      escalated_at: state.escalatedAt ?? null,
      decided_at: state.decidedAt ?? null,
      result: state.result ? json(state.result) : null,
    }])
    if (record.idempotencyKey !== null) {
      await insertRows(trx, 'idempotency_keys', [
        { requester_id: state.requester.id, key: record.idempotencyKey, request_id: state.id, created_at: state.createdAt },
      ])
    }
    await insertNewRows(trx, undefined, state, record.redactedParams)
  },

  /** Writes what changed between `before` and `after`. */
  async update(
    trx: Transaction<Database>,
    before: RequestState,
    after: RequestState,
    redactedParams: Map<number, Record<string, unknown>>,
  ): Promise<void> {
    const result = await trx
      .updateTable('requests')
      .set({
        current_version: after.currentVersion,
        digest: after.digest,
        status: after.status,
        review: after.review ? json(after.review) : null,
        updated_at: after.updatedAt,
        deadline_at: after.deadlineAt ?? null,
        escalate_at: after.escalateAt ?? null,
        escalated_at: after.escalatedAt ?? null,
        decided_at: after.decidedAt ?? null,
        result: after.result ? json(after.result) : null,
      })
      .where('id', '=', after.id)
      // Guards against a writer that did not hold the lock: the row must still be as it was read.
      .where('status', '=', before.status)
      .where('updated_at', '=', before.updatedAt)
      .executeTakeFirst()
    if (result.numUpdatedRows !== 1n) {
      throw new CountersignError('invalid_transition', 'The request changed while this change was being made; retry.', {
        request_id: after.id,
      })
    }
    await insertNewRows(trx, before, after, redactedParams)
  },

  /**
   * Serializes submissions of one action by one requester, so two identical
   * submissions racing on PostgreSQL cannot both find nothing and both insert.
   * SQLite's single writer already serializes them.
   */
  async lockSubmission(trx: Transaction<Database>, requesterId: string, digest: string): Promise<void> {
    if (dialectOf(trx) === 'postgres') {
      await sql`select pg_advisory_xact_lock(hashtext(${requesterId}), hashtext(${digest}))`.execute(trx)
    }
  },

  /** The request a requester already made under an idempotency key, if any. */
  async findByIdempotencyKey(trx: Transaction<Database>, requesterId: string, key: string): Promise<string | undefined> {
    const row = await trx
      .selectFrom('idempotency_keys')
      .select('request_id')
      .where('requester_id', '=', requesterId)
      .where('key', '=', key)
      .executeTakeFirst()
    return row?.request_id
  },

  /** Whether a request with this id exists (refusals are audited only for requests that do). */
  async exists(trx: Transaction<Database>, id: string): Promise<boolean> {
    const row = await trx.selectFrom('requests').select('id').where('id', '=', id).executeTakeFirst()
    return row !== undefined
  },

  /** How many requests wait for review. */
  async countPending(db: Kysely<Database>): Promise<number> {
    const row = await db
      .selectFrom('requests')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'pending')
      .executeTakeFirst()
    return Number(row?.n ?? 0)
  },

  /**
   * One page of requests, newest first. The cursor is opaque to callers: it
   * names the last request of the previous page, and a full page returns the
   * cursor of its last request.
   *
   * @throws CountersignError `invalid_request` for a cursor this gateway did not issue.
   */
  async listPage(trx: Transaction<Database>, filter: RequestListFilter): Promise<{ records: RequestRecord[]; nextCursor: string | null }> {
    const after = filter.cursor === undefined ? undefined : decodeCursor(filter.cursor)
    let query = trx.selectFrom('requests').select(['id', 'created_at'])
    if (filter.status !== undefined) query = query.where('status', '=', filter.status)
    if (filter.action !== undefined) query = query.where('action', '=', filter.action)
    if (filter.requesterId !== undefined) query = query.where('requester_id', '=', filter.requesterId)
    if (after !== undefined) {
      query = query.where((eb) =>
        eb.or([eb('created_at', '<', after.createdAt), eb.and([eb('created_at', '=', after.createdAt), eb('id', '<', after.id)])]),
      )
    }
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(filter.limit).execute()
    const records: RequestRecord[] = []
    for (const row of rows) {
      const record = await requestRepository.load(trx, row.id, { lock: false })
      if (record) records.push(record)
    }
    const last = records.at(-1)
    const nextCursor = records.length === filter.limit && last ? encodeCursor(last.state) : null
    return { records, nextCursor }
  },

  /** A pending request by the same requester for the same digest, so retries never duplicate. */
  async findPendingByDigest(trx: Transaction<Database>, requesterId: string, digest: string): Promise<string | undefined> {
    const { rows } = await runSql<{ id: string }>(trx, PENDING_BY_DIGEST_SQL, [requesterId, digest])
    return rows[0]?.id
  },
}

async function insertNewRows(
  trx: Transaction<Database>,
  before: RequestState | undefined,
  after: RequestState,
  redactedParams: Map<number, Record<string, unknown>>,
): Promise<void> {
  const knownVersions = new Set(before?.versions.map((v) => v.version) ?? [])
  const newVersions = after.versions.filter((v) => !knownVersions.has(v.version))
  if (newVersions.length > 0) {
    await insertRows(
      trx,
      'request_versions',
      newVersions.map((v) => ({
        request_id: after.id,
        version: v.version,
        params: json(v.params),
        redacted_params: json(redactedParams.get(v.version) ?? {}),
        digest: v.digest,
        created_at: v.createdAt,
        created_by: v.createdBy,
      })),
    )
  }
  const knownVotes = new Set(before?.votes.map(voteKey) ?? [])
  const newVotes = after.votes.filter((vote) => !knownVotes.has(voteKey(vote)))
  for (const vote of newVotes) {
    try {
      await insertRows(trx, 'votes', [{
        request_id: after.id,
        version: vote.version,
        voter_id: vote.voterId,
        voter: json(vote.voter),
        decision: vote.decision,
        reason: vote.reason ?? null,
        via: vote.via,
        created_at: vote.at,
      }])
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new CountersignError('already_voted', 'You already voted on this version of the request.', {
          request_id: after.id,
          version: vote.version,
        })
      }
      throw error
    }
  }
  await writeGrant(trx, before?.grant, after)
}

async function writeGrant(trx: Transaction<Database>, before: GrantState | undefined, after: RequestState): Promise<void> {
  const grant = after.grant
  if (!grant) return
  if (!before) {
    await insertRows(trx, 'grants', [{
      jti: grant.jti,
      request_id: after.id,
      digest: after.digest,
      subject: after.requester.id,
      status: grant.status,
      issued_at: grant.issuedAt,
      expires_at: grant.expiresAt,
      redeemed_at: grant.redeemedAt ?? null,
    }])
    return
  }
  if (before.status === grant.status) return
  // Single use: the update only succeeds from the state that was read, so two racing redemptions cannot both win.
  const result = await trx
    .updateTable('grants')
    .set({ status: grant.status, redeemed_at: grant.redeemedAt ?? null })
    .where('jti', '=', grant.jti)
    .where('status', '=', before.status)
    .executeTakeFirst()
  if (result.numUpdatedRows !== 1n) {
    throw new CountersignError('grant_already_redeemed', 'This grant was already used; request the action again.', {
      jti: grant.jti,
    })
  }
}

const voteKey = (vote: RecordedVote): string => `${vote.version}\u0000${vote.voterId}`

function stateFromRows(
  row: RequestRow,
  versionRows: Array<Selectable<Database['request_versions']>>,
  voteRows: Array<Selectable<Database['votes']>>,
  grantRow: Selectable<Database['grants']> | undefined,
): RequestState {
  const versions: RequestVersion[] = versionRows.map((v) => ({
    version: v.version,
    params: parse(v.params),
    digest: v.digest,
    createdAt: v.created_at,
    createdBy: v.created_by,
  }))
  const votes: RecordedVote[] = voteRows.map((v) => {
    const vote: RecordedVote = {
      requestId: v.request_id,
      version: v.version,
      voterId: v.voter_id,
      voter: parse<Principal>(v.voter),
      decision: v.decision as RecordedVote['decision'],
      at: v.created_at,
      via: v.via,
    }
    if (v.reason !== null) vote.reason = v.reason
    return vote
  })
  const state: RequestState = {
    id: row.id,
    status: row.status as RequestStatus,
    requester: parse(row.requester),
    action: row.action,
    resource: row.resource,
    environment: row.environment,
    bind: parse(row.bind),
    versions,
    currentVersion: row.current_version,
    digest: row.digest,
    votes,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }
  if (row.on_behalf_of_id !== null) state.onBehalfOf = { id: row.on_behalf_of_id, verified: row.on_behalf_of_verified === 1 }
  if (row.review !== null) state.review = storedReview(row, parse(row.review))
  if (row.deadline_at !== null) state.deadlineAt = row.deadline_at
  if (row.escalate_at !== null) state.escalateAt = row.escalate_at
  if (row.escalated_at !== null) state.escalatedAt = row.escalated_at
  if (row.decided_at !== null) state.decidedAt = row.decided_at
  if (row.result !== null) state.result = parse(row.result)
  if (grantRow) {
    const grant: GrantState = {
      jti: grantRow.jti,
      status: grantRow.status as GrantState['status'],
      issuedAt: grantRow.issued_at,
      expiresAt: grantRow.expires_at,
    }
    if (grantRow.redeemed_at !== null) grant.redeemedAt = grantRow.redeemed_at
    state.grant = grant
  }
  return state
}

/**
 * A stored review as the current shape. Requests stored before the review
 * kept its durations and notification channels lack them; their deadlines
 * are stored on the row, so the durations are read back from those.
 */
function storedReview(row: RequestRow, stored: Partial<ReviewRequirements> & Pick<ReviewRequirements, 'requirements'>): ReviewRequirements {
  const review: ReviewRequirements = {
    requirements: stored.requirements,
    timeoutMs: stored.timeoutMs ?? (row.deadline_at ?? row.created_at) - row.created_at,
    onTimeout: stored.onTimeout ?? 'deny',
    requireReason: stored.requireReason ?? false,
    allowEdit: stored.allowEdit ?? false,
    escalateTo: stored.escalateTo ?? [],
    notify: stored.notify ?? [],
    policyGroups: stored.policyGroups ?? {},
  }
  if (stored.freshAuthMs !== undefined) review.freshAuthMs = stored.freshAuthMs
  const escalateAfterMs = stored.escalateAfterMs ?? (row.escalate_at === null ? undefined : row.escalate_at - row.created_at)
  if (escalateAfterMs !== undefined) review.escalateAfterMs = escalateAfterMs
  return review
}

function encodeCursor(state: RequestState): string {
  return Buffer.from(JSON.stringify({ c: state.createdAt, i: state.id })).toString('base64url')
}

function decodeCursor(cursor: string): { createdAt: number; id: string } {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { c?: unknown; i?: unknown }
    if (Number.isSafeInteger(value.c) && typeof value.i === 'string') return { createdAt: value.c as number, id: value.i }
  } catch {
    // falls through to the refusal below
  }
  throw new CountersignError('invalid_request', 'The cursor is not one this gateway issued; start again without it.', { cursor })
}
