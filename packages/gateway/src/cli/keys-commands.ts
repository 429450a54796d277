import { CountersignError as ClientError } from '@countersign/sdk'
import type { Command } from 'commander'
import { type ClientOptions, connection, EXIT, runClientCommand, UsageError, withClientOptions } from './client-options.js'

async function adminCall(flags: ClientOptions, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
  const { url, token } = connection(flags)
  let response: Response
  try {
    response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
  } catch (error) {
    throw new ClientError('gateway_unavailable', `Cannot reach the gateway at ${url}: ${(error as Error).message}`)
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

/** `countersign keys create|list|revoke`: API key management (admin keys only). */
export function registerKeysCommands(program: Command): void {
  const keys = program.command('keys').description('manage API keys (needs an admin key)')

  withClientOptions(keys.command('create'))
    .description('create an API key; its token is printed once')
    .requiredOption('--kind <kind>', 'human, agent or service')
    .requiredOption('--id <id>', 'the principal id (an email for humans)')
    .option('--name <name>', 'display name')
    .option('--email <email>', 'email (humans)')
    .option('--groups <list>', 'comma-separated groups', '')
    .option('--on-behalf-of <id>', 'the human this agent acts for (recorded as claimed)')
    .action((flags: ClientOptions & { kind: string; id: string; name?: string; email?: string; groups: string; onBehalfOf?: string }) =>
      runClientCommand(flags, async () => {
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
