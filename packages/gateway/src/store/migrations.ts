import { Migrator, sql } from 'kysely'
import type { Kysely, Migration, MigrationProvider } from 'kysely'
import { CountersignError } from '../core/index.js'
import type { StoreDialect } from './store-backend.js'

/*
 * Migrations run on both dialects from the same code. Timestamps are BIGINT
 * milliseconds, JSON is TEXT (both hand back the exact bytes written), and the
 * only dialect branch is the outbox's auto-increment id.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations see the database as it was when they were written, not the current Database type
type AnyDb = Kysely<any>

function initialSchema(dialect: StoreDialect): Migration {
  return {
    async up(db: AnyDb): Promise<void> {
      await db.schema
        .createTable('requests')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('requester_id', 'text', (c) => c.notNull())
        .addColumn('requester_kind', 'text', (c) => c.notNull())
        .addColumn('requester', 'text', (c) => c.notNull())
        .addColumn('on_behalf_of_id', 'text')
        .addColumn('on_behalf_of_verified', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('resource', 'text', (c) => c.notNull())
        .addColumn('environment', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('context', 'text', (c) => c.notNull())
        .addColumn('bind', 'text', (c) => c.notNull())
        .addColumn('idempotency_key', 'text')
        .addColumn('current_version', 'integer', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('effect', 'text', (c) => c.notNull())
        .addColumn('decision', 'text', (c) => c.notNull())
        .addColumn('review', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('deadline_at', 'bigint')
        .addColumn('escalate_at', 'bigint')
        .addColumn('escalated_at', 'bigint')
        .addColumn('decided_at', 'bigint')
        .addColumn('result', 'text')
        .execute()
      await db.schema.createIndex('requests_status_idx').on('requests').column('status').execute()
      await db.schema.createIndex('requests_deadline_at_idx').on('requests').column('deadline_at').execute()
      await db.schema.createIndex('requests_escalate_at_idx').on('requests').column('escalate_at').execute()

      await db.schema
        .createTable('request_versions')
        .addColumn('request_id', 'text', (c) => c.notNull().references('requests.id'))
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('redacted_params', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('request_versions_pkey', ['request_id', 'version'])
        .execute()

      // One vote per person per version is a security invariant; the
      // constraint holds it even when two votes race past the service checks.
      await db.schema
        .createTable('votes')
        .addColumn('request_id', 'text', (c) => c.notNull().references('requests.id'))
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('voter_id', 'text', (c) => c.notNull())
        .addColumn('voter', 'text', (c) => c.notNull())
        .addColumn('decision', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('via', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('votes_pkey', ['request_id', 'version', 'voter_id'])
        .execute()

      await db.schema
        .createTable('grants')
        .addColumn('jti', 'text', (c) => c.primaryKey())
        .addColumn('request_id', 'text', (c) => c.notNull().references('requests.id'))
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('issued_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('redeemed_at', 'bigint')
        .addUniqueConstraint('grants_request_id_key', ['request_id'])
        .execute()

      // No foreign key to requests: the log also records refusals of requests
      // that were never stored, and it must never block on other tables.
      await db.schema
        .createTable('audit_entries')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text')
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute()

      await db.schema
        .createTable('checkpoints')
        .addColumn('size', 'bigint', (c) => c.primaryKey())
        .addColumn('head_hash', 'text', (c) => c.notNull())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('signature', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .execute()

      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('prefix', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('principal_id', 'text', (c) => c.notNull())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('email', 'text')
        .addColumn('groups', 'text', (c) => c.notNull())
        .addColumn('on_behalf_of', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .execute()
      await db.schema.createIndex('api_keys_prefix_key').unique().on('api_keys').column('prefix').execute()

      await db.schema
        .createTable('idempotency_keys')
        .addColumn('requester_id', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text', (c) => c.notNull().references('requests.id'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('idempotency_keys_pkey', ['requester_id', 'key'])
        .execute()

      await db.schema
        .createTable('outbox')
        .addColumn('id', dialect === 'postgres' ? 'bigint' : 'integer', (c) =>
          // SQLite's AUTOINCREMENT never reuses an id after a delete; PostgreSQL's identity never does either.
          dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
        )
        .addColumn('topic', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text')
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
        .addColumn('delivered_at', 'bigint')
        .addColumn('last_error', 'text')
        .execute()
      await db.schema.createIndex('outbox_next_attempt_at_idx').on('outbox').column('next_attempt_at').execute()
    },
  }
}

/** Indexes for the lookups every request makes: deduplication by digest, listings, grant expiry. */
const lookupIndexes: Migration = {
  async up(db: AnyDb): Promise<void> {
    await db.schema.createIndex('requests_requester_status_digest_idx').on('requests').columns(['requester_id', 'status', 'digest']).execute()
    await db.schema.createIndex('requests_requester_created_idx').on('requests').columns(['requester_id', 'created_at']).execute()
    await db.schema.createIndex('requests_created_idx').on('requests').columns(['created_at', 'id']).execute()
    await db.schema.createIndex('grants_status_expires_idx').on('grants').columns(['status', 'expires_at']).execute()
  },
}

/**
 * The lookups by digest, deadline and escalation only ever look for pending
 * requests, so their indexes hold only those. A request decided at once (most
 * of them) then updates none of the three, and the digest index no longer
 * takes a write at a random place for every request.
 */
const pendingIndexes: Migration = {
  async up(db: AnyDb): Promise<void> {
    await db.schema.dropIndex('requests_requester_status_digest_idx').execute()
    await db.schema.dropIndex('requests_deadline_at_idx').execute()
    await db.schema.dropIndex('requests_escalate_at_idx').execute()
    const pendingOnly = sql<boolean>`status = ${sql.lit('pending')}`
    await db.schema.createIndex('requests_pending_digest_idx').on('requests').columns(['requester_id', 'digest']).where(pendingOnly).execute()
    await db.schema.createIndex('requests_pending_deadline_idx').on('requests').column('deadline_at').where(pendingOnly).execute()
    await db.schema.createIndex('requests_pending_escalate_idx').on('requests').column('escalate_at').where(pendingOnly).execute()
  },
}

/**
 * Operator rights belong to humans only. The admin key the first start
 * created was recorded as a service, though a person (the operator) holds
 * it; it becomes the human key it always was, so it keeps working. Any other
 * non-human key in the admin group is left as it is, and refused.
 */
const humanBootstrapAdmin: Migration = {
  async up(db: AnyDb): Promise<void> {
    await db
      .updateTable('api_keys')
      .set({ kind: 'human' })
      .where('kind', '=', 'service')
      .where('principal_id', '=', 'admin')
      .where('created_by', '=', 'countersign')
      .execute()
  },
}

function migrationsFor(dialect: StoreDialect): MigrationProvider {
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      return { '0001_initial': initialSchema(dialect), '0002_lookup_indexes': lookupIndexes, '0003_pending_indexes': pendingIndexes, '0004_human_bootstrap_admin': humanBootstrapAdmin }
    },
  }
}

/**
 * Brings the schema up to date. Safe to call on every start and from several
 * processes at once: Kysely takes a lock and skips migrations already applied.
 */
export async function migrateToLatest(db: AnyDb, dialect: StoreDialect): Promise<void> {
  // Kysely looks for its bookkeeping tables in every schema unless told which
  // one; another schema's copy would make it skip creating its own.
  const migrationTableSchema = dialect === 'postgres' ? await currentSchema(db) : undefined
  const migrator = new Migrator({
    db,
    provider: migrationsFor(dialect),
    ...(migrationTableSchema === undefined ? {} : { migrationTableSchema }),
  })
  const { error, results } = await migrator.migrateToLatest()
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName ?? 'setup'
    const reason = error instanceof Error ? error.message : String(error)
    throw new CountersignError(
      'store_unavailable',
      `Database migration ${failed} failed: ${reason}. The schema stays at the last migration that succeeded; fix the cause and restart.`,
      { migration: failed },
    )
  }
}

async function currentSchema(db: AnyDb): Promise<string> {
  const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db)
  const schema = rows[0]?.schema
  if (!schema) {
    throw new CountersignError(
      'store_unavailable',
      'The PostgreSQL search_path names no existing schema, so there is nowhere to create the tables. Create the schema or fix search_path for this role.',
    )
  }
  return schema
}
