import { type ActionRequest, requestViewOf } from '@countersign/sdk'
import type { Command } from 'commander'
import {
  type ClientOptions,
  client,
  EXIT,
  printRequest,
  runClientCommand,
  statusLine,
  UsageError,
  withClientOptions,
} from './client-options.js'
import { LiveLine } from './live-line.js'

interface RequestFlags extends ClientOptions {
  action: string
  resource: string
  env: string
  params?: string
  reason?: string
  context?: string
  wait?: boolean
  timeout?: string
}

/** Parses a JSON object given on the command line. */
export function parseJsonObject(text: string | undefined, flag: string): Record<string, unknown> {
  if (text === undefined) return {}
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new UsageError(`${flag} is not valid JSON (${(error as Error).message}); pass an object such as '{"table":"customers"}'.`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${flag} must be a JSON object such as '{"table":"customers"}'.`)
  }
  return value as Record<string, unknown>
}

/** Adds the flags that describe an action: --action, --resource, --env, --reason, --context. */
export function withActionOptions(command: Command): Command {
  return command
    .requiredOption('--action <action>', 'dotted verb, e.g. db.export')
    .requiredOption('--resource <resource>', 'what it acts on, e.g. pg://prod/customers')
    .requiredOption('--env <environment>', 'environment, e.g. prod')
    .option('--reason <text>', 'why, for the reviewers')
    .option('--context <json>', 'JSON object of context for reviewers (run id, commit, ...)')
    .option('--timeout <seconds>', 'stop waiting after this many seconds')
}

/** Waits for a decision, keeping one live status line up to date. */
export async function waitWithLiveLine(cs: ReturnType<typeof client>, request: ActionRequest, url: string, timeout?: string): Promise<ActionRequest> {
  if (request.status !== 'pending') return request
  const line = new LiveLine(process.stderr)
  let latest = request
  const render = (): void =>
    line.update(
      latest.status === 'pending'
        ? `${statusLine(latest)} · approve: countersign approve ${latest.id} · ${url}/v1/requests/${latest.id}`
        : statusLine(latest),
    )
  render()
  const ticker = setInterval(render, 1000)
  try {
    const options: Parameters<typeof cs.wait>[1] = {
      onUpdate(update) {
        latest = update
        render()
      },
    }
    if (timeout !== undefined) options.timeoutMs = seconds(timeout) * 1000
    latest = await cs.wait(request.id, options)
    render()
    return latest
  } finally {
    clearInterval(ticker)
    line.done()
  }
}

export function seconds(text: string): number {
  const value = Number(text)
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--timeout must be a positive number of seconds, not "${text}".`)
  return value
}

/** The exit code for a decided request. */
export function exitFor(request: ActionRequest): number {
  switch (request.status) {
    case 'approved':
      return EXIT.ok
    case 'denied':
      return EXIT.denied
    case 'expired':
      return EXIT.expired
    case 'cancelled':
      return EXIT.cancelled
    default:
      return EXIT.expired
  }
}

export function registerRequestCommands(program: Command): void {
  withActionOptions(withClientOptions(program.command('request')))
    .description('ask for an action; with --wait, wait for the decision')
    .option('--params <json>', 'JSON object of the exact parameters')
    .option('--wait', 'wait for the decision')
    .action((flags: RequestFlags) =>
      runClientCommand(flags, async () => {
        const cs = client(flags)
        let request = await cs.request({
          action: flags.action,
          resource: flags.resource,
          environment: flags.env,
          params: parseJsonObject(flags.params, '--params'),
          ...(flags.reason !== undefined ? { reason: flags.reason } : {}),
          ...(flags.context !== undefined ? { context: parseJsonObject(flags.context, '--context') } : {}),
        })
        if (flags.wait) request = await waitWithLiveLine(cs, request, cs.url, flags.timeout)
        printRequest(request, flags.json === true)
        return flags.wait ? exitFor(request) : EXIT.ok
      }),
    )

  withClientOptions(program.command('ls'))
    .description('list requests')
    .option('--status <status>', 'pending, approved, denied, expired or cancelled')
    .option('--mine', 'only my requests')
    .option('--reviewable', 'only requests I can vote on now')
    .action((flags: ClientOptions & { status?: string; mine?: boolean; reviewable?: boolean }) =>
      runClientCommand(flags, async () => {
        const page = await client(flags).list({
          ...(flags.status !== undefined ? { status: flags.status as ActionRequest['status'] } : {}),
          ...(flags.mine ? { mine: true } : {}),
          ...(flags.reviewable ? { reviewable: true } : {}),
        })
        if (flags.json) console.log(JSON.stringify(page.items.map(requestViewOf), null, 2))
        else if (page.items.length === 0) console.log('no requests')
        else for (const request of page.items) console.log(`${statusLine(request)} · ${request.action} ${request.resource} (${request.environment}) by ${request.requester.id}`)
        return EXIT.ok
      }),
    )

  withClientOptions(program.command('show <id>'))
    .description('show one request')
    .action((id: string, flags: ClientOptions) =>
      runClientCommand(flags, async () => {
        printRequest(await client(flags).get(id), flags.json === true)
        return EXIT.ok
      }),
    )

  withClientOptions(program.command('approve <id>'))
    .description('approve a request (optionally with edited params)')
    .option('--reason <text>', 'why')
    .option('--params <json>', 'approve these edited params instead (where the policy allows edits)')
    .action((id: string, flags: ClientOptions & { reason?: string; params?: string }) =>
      runClientCommand(flags, async () => {
        const request = await client(flags).vote(id, {
          decision: 'approve',
          ...(flags.reason !== undefined ? { reason: flags.reason } : {}),
          ...(flags.params !== undefined ? { params: parseJsonObject(flags.params, '--params') } : {}),
        })
        printRequest(request, flags.json === true)
        return EXIT.ok
      }),
    )

  withClientOptions(program.command('deny <id>'))
    .description('deny a request')
    .requiredOption('--reason <text>', 'why (shown to the requester)')
    .action((id: string, flags: ClientOptions & { reason: string }) =>
      runClientCommand(flags, async () => {
        printRequest(await client(flags).vote(id, { decision: 'deny', reason: flags.reason }), flags.json === true)
        return EXIT.ok
      }),
    )

  withClientOptions(program.command('cancel <id>'))
    .description('cancel your pending request')
    .option('--reason <text>', 'why')
    .action((id: string, flags: ClientOptions & { reason?: string }) =>
      runClientCommand(flags, async () => {
        printRequest(await client(flags).cancel(id, flags.reason !== undefined ? { reason: flags.reason } : {}), flags.json === true)
        return EXIT.ok
      }),
    )

  withClientOptions(program.command('wait <id>'))
    .description('wait for a request to be decided')
    .option('--timeout <seconds>', 'stop waiting after this many seconds')
    .action((id: string, flags: ClientOptions & { timeout?: string }) =>
      runClientCommand(flags, async () => {
        const cs = client(flags)
        const request = await waitWithLiveLine(cs, await cs.get(id), cs.url, flags.timeout)
        printRequest(request, flags.json === true)
        return exitFor(request)
      }),
    )
}
