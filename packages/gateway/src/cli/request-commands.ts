import { type ActionRequest, type Countersign, requestViewOf, WaitTimeout } from '@countersign/sdk'
import type { Command } from 'commander'
import {
  type ClientOptions,
  client,
  EXIT,
  printRequest,
  report,
  runClientCommand,
  UsageError,
  withClientOptions,
} from './client-options.js'
import { describeStatus } from './live-line.js'
import { DecisionWatch, exitFor, Interrupted, Interruption, reportInterrupted, timeoutMs } from './wait-for-decision.js'

interface RequestFlags extends ClientOptions {
  action: string
  resource: string
  env: string
  params?: string
  reason?: string
  context?: string
  wait?: boolean
  timeout?: string
  new?: boolean
}

const SHA256_HEX = /^[0-9a-f]{64}$/

/**
 * The digest a vote names: the one given with `--digest`, or that of the
 * version read right now, said on stderr so the voter knows what they voted
 * on. The gateway refuses the vote with version_mismatch if an edit lands
 * in between.
 */
async function digestToVoteOn(flags: ClientOptions & { digest?: string }, id: string): Promise<string> {
  if (flags.digest !== undefined) {
    if (!SHA256_HEX.test(flags.digest)) {
      throw new UsageError(`--digest must be 64 lowercase hex digits (the request's digest, see \`countersign show ${id}\`); got "${flags.digest}".`)
    }
    return flags.digest
  }
  const current = await client(flags).get(id)
  process.stderr.write(`voting on version ${current.version} of ${current.id} (digest ${current.digest})\n`)
  return current.digest
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

/** Adds the flags that describe an action: --action, --resource, --env, --reason, --context, --timeout, --new. */
export function withActionOptions(command: Command): Command {
  return command
    .requiredOption('--action <action>', 'dotted verb, e.g. db.export')
    .requiredOption('--resource <resource>', 'what it acts on, e.g. pg://prod/customers')
    .requiredOption('--env <environment>', 'environment, e.g. prod')
    .option('--reason <text>', 'why, for the reviewers')
    .option('--context <json>', 'JSON object of context for reviewers (run id, commit, ...)')
    .option('--timeout <seconds>', 'stop waiting after this many seconds (exit 4; the request stays pending)')
    .option('--new', 'open a new request even if the same action of yours is already pending')
}

/**
 * Waits for a decision with a live line, prints the outcome and returns its exit code. Ctrl-C
 * cancels the request if it is still pending (exit 5); a `--timeout` that runs out leaves it
 * pending for a rerun to attach to (exit 4).
 */
export async function waitForDecision(cs: Countersign, request: ActionRequest, flags: ClientOptions & { timeout?: string }): Promise<number> {
  const limit = timeoutMs(flags.timeout)
  let decided = request
  if (request.status === 'pending') {
    const watch = new DecisionWatch(cs.url)
    const interruption = new Interruption()
    watch.onUpdate(request)
    try {
      decided = await cs.wait(request.id, {
        signal: interruption.signal,
        onUpdate: watch.onUpdate,
        onReachability: watch.onReachability,
        ...(limit !== undefined ? { timeoutMs: limit } : {}),
      })
    } catch (error) {
      watch.done()
      if (error instanceof Interrupted) return reportInterrupted(cs, request.id, true)
      if (error instanceof WaitTimeout) {
        // The request as last seen is the answer (still pending); the message says what to do next.
        printRequest(error.request, flags.json === true)
        return report(error, false)
      }
      return report(error, flags.json === true)
    } finally {
      watch.done()
      interruption.dispose()
    }
  }
  printRequest(decided, flags.json === true)
  return exitFor(decided)
}

export function registerRequestCommands(program: Command): void {
  withActionOptions(withClientOptions(program.command('request')))
    .description('ask for an action; exits 0 approved, 3 denied, 8 pending (with --wait: waits for the decision)')
    .option('--params <json>', 'JSON object of the exact parameters')
    .option('--wait', 'wait for the decision')
    .action((flags: RequestFlags) =>
      runClientCommand(flags, async () => {
        const cs = client(flags)
        const spec = {
          action: flags.action,
          resource: flags.resource,
          environment: flags.env,
          params: parseJsonObject(flags.params, '--params'),
          ...(flags.reason !== undefined ? { reason: flags.reason } : {}),
          ...(flags.context !== undefined ? { context: parseJsonObject(flags.context, '--context') } : {}),
        }
        timeoutMs(flags.timeout)
        const request = await cs.request(spec, flags.new === true ? { newRequest: true } : {})
        if (flags.wait) return waitForDecision(cs, request, flags)
        printRequest(request, flags.json === true)
        if (request.status === 'pending' && flags.json !== true) {
          console.error(`countersign: ${request.id} is pending review; wait for it with: countersign wait ${request.id}`)
        }
        return exitFor(request)
      }),
    )

  withClientOptions(program.command('ls'))
    .description('list requests, newest first, one page at a time')
    .option('--status <status>', 'pending, approved, denied, expired or cancelled')
    .option('--mine', 'only my requests')
    .option('--reviewable', 'only requests I can vote on now')
    .option('--limit <n>', 'requests per page, 1 to 200', '50')
    .option('--cursor <cursor>', 'the next page, from the previous page\'s footer')
    .action((flags: ClientOptions & { status?: string; mine?: boolean; reviewable?: boolean; limit: string; cursor?: string }) =>
      runClientCommand(flags, async () => {
        const limit = Number(flags.limit)
        if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new UsageError(`--limit must be a whole number from 1 to 200, not "${flags.limit}".`)
        if (flags.status !== undefined && !STATUSES.includes(flags.status as ActionRequest['status'])) {
          throw new UsageError(`--status must be one of ${STATUSES.join(', ')}, not "${flags.status}".`)
        }
        const page = await client(flags).list({
          ...(flags.status !== undefined ? { status: flags.status as ActionRequest['status'] } : {}),
          ...(flags.mine ? { mine: true } : {}),
          ...(flags.reviewable ? { reviewable: true } : {}),
          limit,
          ...(flags.cursor !== undefined ? { cursor: flags.cursor } : {}),
        })
        if (flags.json) {
          console.log(JSON.stringify({ items: page.items.map(requestViewOf), next_cursor: page.nextCursor }, null, 2))
          return EXIT.ok
        }
        if (page.items.length === 0) console.log(flags.cursor === undefined ? 'no requests' : 'no more requests')
        for (const request of page.items) console.log(`${describeStatus(request)} · ${request.action} ${request.resource} (${request.environment}) by ${request.requester.id}`)
        if (page.nextCursor !== null) console.log(`${page.items.length} shown; more: countersign ls --cursor ${page.nextCursor}${flags.limit !== '50' ? ` --limit ${limit}` : ''}`)
        return EXIT.ok
      }),
    )

  withClientOptions(program.command('show <id>'))
    .description('show one request: params, bound files, votes and the policy\'s explanation')
    .action((id: string, flags: ClientOptions) =>
      runClientCommand(flags, async () => {
        printRequest(await client(flags).get(id), flags.json === true)
        return EXIT.ok
      }),
    )

  withClientOptions(program.command('approve <id>'))
    .description('approve the current version of a request (optionally with edited params)')
    .option('--reason <text>', 'why')
    .option('--params <json>', 'approve these edited params instead (where the policy allows edits)')
    .option('--digest <sha256>', 'approve only the version with this digest (default: the version read just before voting)')
    .action((id: string, flags: ClientOptions & { reason?: string; params?: string; digest?: string }) =>
      runClientCommand(flags, async () => {
        // A usage error is told before anything is read from the gateway.
        const edited = flags.params !== undefined ? { params: parseJsonObject(flags.params, '--params') } : {}
        const request = await client(flags).vote(id, {
          decision: 'approve',
          digest: await digestToVoteOn(flags, id),
          ...(flags.reason !== undefined ? { reason: flags.reason } : {}),
          ...edited,
        })
        printRequest(request, flags.json === true)
        return EXIT.ok
      }),
    )

  withClientOptions(program.command('deny <id>'))
    .description('deny the current version of a request')
    .requiredOption('--reason <text>', 'why (shown to the requester)')
    .option('--digest <sha256>', 'deny only the version with this digest (default: the version read just before voting)')
    .action((id: string, flags: ClientOptions & { reason: string; digest?: string }) =>
      runClientCommand(flags, async () => {
        const digest = await digestToVoteOn(flags, id)
        printRequest(await client(flags).vote(id, { decision: 'deny', digest, reason: flags.reason }), flags.json === true)
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
    .description('wait for a request to be decided; exits with its outcome (Ctrl-C cancels your pending request)')
    .option('--timeout <seconds>', 'stop waiting after this many seconds (exit 4; the request stays pending)')
    .action((id: string, flags: ClientOptions & { timeout?: string }) =>
      runClientCommand(flags, async () => {
        timeoutMs(flags.timeout)
        const cs = client(flags)
        return waitForDecision(cs, await cs.get(id), flags)
      }),
    )
}

const STATUSES: readonly ActionRequest['status'][] = ['pending', 'approved', 'denied', 'expired', 'cancelled']
