import { type ActionRequest, Countersign, CountersignError as ClientError, requestViewOf } from '@countersign/sdk'
import type { Command } from 'commander'

/** Exit codes of the client commands, documented in docs/cli.md. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  denied: 3,
  expired: 4,
  cancelled: 5,
  unavailable: 6,
  refused: 7,
} as const

export interface ClientOptions {
  url?: string
  token?: string
  json?: boolean
}

/** Adds the options every client command shares: --url, --token, --json. */
export function withClientOptions(command: Command): Command {
  return command
    .option('--url <url>', 'gateway URL (env COUNTERSIGN_URL, default http://127.0.0.1:8080)')
    .option('--token <token>', 'API key or identity token (env COUNTERSIGN_TOKEN)')
    .option('--json', 'print JSON instead of text')
}

/** The gateway URL and token from flags or environment; a missing token is a usage error. */
export function connection(options: ClientOptions): { url: string; token: string } {
  const url = options.url ?? process.env.COUNTERSIGN_URL ?? 'http://127.0.0.1:8080'
  const token = options.token ?? process.env.COUNTERSIGN_TOKEN
  if (!token) {
    throw new UsageError('No token: pass --token or set COUNTERSIGN_TOKEN (an API key from `countersign keys create`).')
  }
  return { url: url.replace(/\/+$/, ''), token }
}

export function client(options: ClientOptions): Countersign {
  const { url, token } = connection(options)
  return new Countersign({ url, token, userAgent: 'countersign-cli/0.1.0' })
}

/** A mistake in how the command was called. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** Runs a client command body, turning errors into a message and an exit code. */
export async function runClientCommand(options: ClientOptions, body: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await body()
  } catch (error) {
    process.exitCode = report(error, options.json === true)
  }
}

function report(error: unknown, json: boolean): number {
  if (error instanceof UsageError) {
    console.error(`countersign: ${error.message}`)
    return EXIT.usage
  }
  if (error instanceof ClientError) {
    if (json) console.log(JSON.stringify({ error: error.toJSON() }))
    else console.error(`countersign: ${error.message}${error.code ? ` (${error.code})` : ''}`)
    switch (error.code) {
      case 'action_denied':
        return EXIT.denied
      case 'action_expired':
        return EXIT.expired
      case 'action_cancelled':
        return EXIT.cancelled
      case 'gateway_unavailable':
        return EXIT.unavailable
      default:
        return EXIT.failure
    }
  }
  throw error
}

/** One line describing where a request stands: state, votes so far / quorum, time left. */
export function statusLine(request: ActionRequest, now = Date.now()): string {
  const parts = [`${request.id} ${request.status}`]
  const review = request.review
  if (review) {
    for (const requirement of review.requirements) {
      parts.push(`${requirement.approvals.length}/${requirement.quorum} approvals (${requirement.approvers.join(', ')})`)
    }
    if (request.status === 'pending' && review.deadlineAt) {
      parts.push(`${formatRemaining(Date.parse(review.deadlineAt) - now)} left`)
    }
  }
  return parts.join(' · ')
}

function formatRemaining(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000))
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = total % 60
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s).padStart(2, '0')}s`
}

/** Prints a request as JSON (the API's request view) or as a short human summary. */
export function printRequest(request: ActionRequest, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(requestViewOf(request), null, 2))
    return
  }
  console.log(statusLine(request))
  console.log(`  ${request.action} on ${request.resource} in ${request.environment} (digest ${request.digest.slice(0, 12)}, v${request.version})`)
  console.log(`  requested by ${request.requester.id}${request.onBehalfOf ? ` for ${request.onBehalfOf.id}${request.onBehalfOf.verified ? '' : ' (claimed)'}` : ''}`)
  if (request.reason) console.log(`  reason: ${request.reason}`)
  console.log(`  params: ${JSON.stringify(request.params)}`)
  if (request.decision) {
    console.log(`  policy: ${request.decision.effect}, risk ${request.decision.risk}, rules ${request.decision.matchedRules.map((r) => r.name).join(', ') || '(none)'}`)
  }
  for (const vote of request.votes) {
    console.log(`  ${vote.decision} by ${vote.voterId} on v${vote.version} via ${vote.via}${vote.reason ? `: ${vote.reason}` : ''}`)
  }
}
