import { CountersignError as ClientError } from '@countersign/sdk'
import type { Command } from 'commander'
import { isCountersignError, isLocalError } from '../core/index.js'
import { createLocalAdminKey, LOCAL_OPERATOR, loadGatewayConfig } from '../server/index.js'
import { type ClientOptions, connection, describeCause, EXIT, runClientCommand, UsageError, withClientOptions } from './client-options.js'

async function adminCall(flags: ClientOptions, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
  const { url, token } = connection(flags)
  let response: Response
  try {
    response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'x-countersign-via': 'cli', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
  } catch (error) {
    throw new ClientError('gateway_unavailable', `Could not reach the Countersign gateway at ${url}: ${describeCause(error)}`, { cause: error })
  }
  const payload = (await response.json().catch(() => ({}))) as Record<string, unknown>
  if (!response.ok) {
    const error = (payload.error ?? {}) as { code?: string; message?: string }
    throw new ClientError('unexpected_response', `${error.message ?? `HTTP ${response.status}`} (${error.code ?? response.status})`, {
      status: response.status,
    })
  }
  return payload
}

const KINDS = ['human', 'agent', 'service']

interface CreateFlags extends ClientOptions {
  kind?: string
  id?: string
  name?: string
  email?: string
  groups: string
  onBehalfOf?: string
  admin?: boolean
  dataDir?: string
  config?: string
  database?: string
  databaseSchema?: string
}

/** `keys create --admin`: a new admin key written straight into the store (see docs/operations.md). */
async function createAdminKeyLocally(flags: CreateFlags): Promise<number> {
  if (flags.kind !== undefined || flags.id !== undefined || flags.groups !== '' || flags.onBehalfOf !== undefined || flags.url !== undefined || flags.token !== undefined) {
    throw new UsageError('--admin creates the admin key locally: it takes --data-dir (or --config, --database), not --kind, --id, --groups, --url or --token.')
  }
  let config
  try {
    config = loadGatewayConfig({
      ...(flags.config !== undefined ? { config: flags.config } : {}),
      ...(flags.dataDir !== undefined ? { dataDir: flags.dataDir } : {}),
      ...(flags.database !== undefined ? { database: flags.database } : {}),
      ...(flags.databaseSchema !== undefined ? { databaseSchema: flags.databaseSchema } : {}),
    })
  } catch (error) {
    if (isLocalError(error)) throw new UsageError(error.message)
    throw error
  }
  let created
  try {
    created = await createLocalAdminKey(config)
  } catch (error) {
    if (isLocalError(error) && error.code === 'config_invalid') throw new UsageError(error.message)
    if (isCountersignError(error) && error.code === 'store_unavailable') throw new ClientError('gateway_unavailable', error.message)
    throw error
  }
  if (flags.json) console.log(JSON.stringify({ id: created.record.id, prefix: created.record.prefix, principal_id: created.record.principalId, token: created.token }, null, 2))
  else {
    console.error(`created admin key ${created.record.prefix} in ${config.databaseUrl === undefined ? config.dataDir : 'the PostgreSQL store'} (audited as ${LOCAL_OPERATOR.id}); the token is shown once:`)
    console.log(created.token)
    console.error('Revoke the lost key: countersign keys list, then countersign keys revoke <prefix>.')
  }
  return EXIT.ok
}

/** `countersign keys create|list|revoke`: API key management (admin keys only). */
export function registerKeysCommands(program: Command): void {
  const keys = program.command('keys').description('manage API keys (needs an admin key)')

  withClientOptions(keys.command('create'))
    .description('create an API key; its token is printed once (--admin: a new admin key, made locally in the store)')
    .option('--kind <kind>', 'human, agent or service')
    .option('--id <id>', 'the principal id (an email for humans)')
    .option('--name <name>', 'display name')
    .option('--email <email>', 'email (humans)')
    .option('--groups <list>', 'comma-separated groups', '')
    .option('--on-behalf-of <id>', 'the human this agent acts for (recorded as claimed)')
    .option('--admin', 'recover a lost admin key: create one straight in the store, no HTTP or token (stop the gateway first)')
    .option('--data-dir <dir>', 'with --admin: the gateway\'s data directory (env COUNTERSIGN_DATA_DIR, default ./.countersign)')
    .option('--config <file>', 'with --admin: the gateway\'s countersign.yaml (env COUNTERSIGN_CONFIG)')
    .option('--database <url>', 'with --admin: the gateway\'s PostgreSQL store (env COUNTERSIGN_DATABASE)')
    .option('--database-schema <name>', 'with --admin: its PostgreSQL schema (env COUNTERSIGN_DATABASE_SCHEMA)')
    .action((flags: CreateFlags) =>
      runClientCommand(flags, async () => {
        if (flags.admin) return createAdminKeyLocally(flags)
        if (flags.kind === undefined || flags.id === undefined) {
          throw new UsageError('keys create needs --kind and --id (or --admin to recover an admin key locally).')
        }
        if (flags.dataDir !== undefined || flags.config !== undefined || flags.database !== undefined || flags.databaseSchema !== undefined) {
          throw new UsageError('--data-dir, --config and --database go with --admin only; other keys are created over HTTP with an admin key.')
        }
        if (!KINDS.includes(flags.kind)) throw new UsageError(`--kind must be one of ${KINDS.join(', ')}, not "${flags.kind}".`)
        const email = flags.email ?? (flags.kind === 'human' && flags.id.includes('@') ? flags.id : undefined)
        const created = await adminCall(flags, 'POST', '/v1/keys', {
          kind: flags.kind,
          id: flags.id,
          ...(flags.name !== undefined ? { name: flags.name } : {}),
          ...(email !== undefined ? { email } : {}),
          groups: flags.groups.split(',').map((g) => g.trim()).filter(Boolean),
          ...(flags.onBehalfOf !== undefined ? { on_behalf_of: flags.onBehalfOf } : {}),
        })
        if (flags.json) console.log(JSON.stringify(created, null, 2))
        else {
          console.error(`created ${String(created.kind)} key ${String(created.prefix)} for ${String(created.principal_id)}; the token is shown once:`)
          console.log(String(created.token))
        }
        return EXIT.ok
      }),
    )

  withClientOptions(keys.command('list'))
    .description('list API keys')
    .action((flags: ClientOptions) =>
      runClientCommand(flags, async () => {
        const { items } = (await adminCall(flags, 'GET', '/v1/keys')) as { items: Array<Record<string, unknown>> }
        if (flags.json) console.log(JSON.stringify(items, null, 2))
        else {
          for (const key of items) {
            const groups = (key.groups as string[]).join(',') || '-'
            console.log(`${String(key.prefix)}  ${String(key.kind).padEnd(7)}  ${String(key.principal_id)}  groups=${groups}${key.revoked_at ? `  revoked ${String(key.revoked_at)}` : ''}`)
          }
        }
        return EXIT.ok
      }),
    )

  withClientOptions(keys.command('revoke <id>'))
    .description('revoke an API key by id or cs_ prefix')
    .action((id: string, flags: ClientOptions) =>
      runClientCommand(flags, async () => {
        const key = await adminCall(flags, 'POST', `/v1/keys/${encodeURIComponent(id)}/revoke`)
        if (flags.json) console.log(JSON.stringify(key, null, 2))
        else console.log(`revoked ${String(key.prefix)} (${String(key.principal_id)})`)
        return EXIT.ok
      }),
    )
}
