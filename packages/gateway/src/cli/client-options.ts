import { type ActionRequest, Countersign, CountersignError as ClientError, requestViewOf } from '@countersign/sdk'
import { type Command, CommanderError } from 'commander'
import { VERSION } from '../version.js'
import { describeStatus } from './live-line.js'

/** Exit codes of the client commands, documented in docs/cli.md (keep the two in step). */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  denied: 3,
  expired: 4,
  cancelled: 5,
  unavailable: 6,
  refused: 7,
  pending: 8,
  /** Ctrl-C while waiting, when the request could not be cancelled (the shell's 128 + SIGINT). */
  interrupted: 130,
} as const

/**
 * For `exitOverride`: every error commander reports itself (unknown option, missing flag or
 * argument, unknown command) is a usage error, exit 2; --help and --version keep their 0.
 */
export function exitOnUsageError(error: CommanderError): never {
  throw error.exitCode === 0 ? error : new CommanderError(EXIT.usage, error.code, error.message)
}

/**
 * How long a call may keep failing to reach the gateway before the CLI gives up: long enough to
 * ride out a blip, short enough that a closed port or an unknown host is reported at once.
 * Waiting for a decision has its own, longer deadline and rides out restarts.
 */
const CALL_TIMEOUT_MS = 3_000

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

/** The gateway URL and token from flags or environment; a missing token or a URL without a scheme is a usage error. */
export function connection(options: ClientOptions): { url: string; token: string } {
  const url = options.url ?? process.env.COUNTERSIGN_URL ?? 'http://127.0.0.1:8080'
  if (!/^https?:\/\/[^/]/i.test(url)) {
    const source = options.url !== undefined ? '--url' : 'COUNTERSIGN_URL'
    throw new UsageError(`${source} must start with http:// or https://, e.g. http://${url.includes('://') ? url.slice(url.indexOf('://') + 3) : url}; not "${url}".`)
  }
  try {
    new URL(url)
  } catch {
    throw new UsageError(`"${url}" is not a valid URL; pass one such as http://127.0.0.1:8080.`)
  }
  const token = options.token ?? process.env.COUNTERSIGN_TOKEN
  if (!token) {
    throw new UsageError('No token: pass --token or set COUNTERSIGN_TOKEN (an API key from `countersign keys create`).')
  }
  return { url: url.replace(/\/+$/, ''), token }
}

export function client(options: ClientOptions): Countersign {
  const { url, token } = connection(options)
  return new Countersign({ url, token, userAgent: `countersign-cli/${VERSION}`, via: 'cli', requestTimeoutMs: CALL_TIMEOUT_MS })
}

/** A mistake in how the command was called. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** The approval could not be used (a bound file changed, the approved params are not a command): nothing ran. */
export class NotRun extends Error {
  override readonly name = 'NotRun'
}

/** Runs a client command body, turning errors into a message and an exit code. */
export async function runClientCommand(options: ClientOptions, body: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await body()
  } catch (error) {
    process.exitCode = report(error, options.json === true)
  }
}

/** The exit code for an error a client command ended with. */
export function exitForError(error: unknown): number | undefined {
  if (error instanceof UsageError) return EXIT.usage
  if (error instanceof NotRun) return EXIT.refused
  if (!(error instanceof ClientError)) return undefined
  switch (error.code) {
    case 'action_denied':
      return EXIT.denied
    case 'action_expired':
    case 'wait_timeout':
      return EXIT.expired
    case 'action_cancelled':
      return EXIT.cancelled
    case 'gateway_unavailable':
      return EXIT.unavailable
    case 'grant_invalid':
    case 'grant_already_redeemed':
    case 'grant_expired':
    case 'digest_mismatch':
      return EXIT.refused
    default:
      return EXIT.failure
  }
}

/** Prints an error (as JSON with --json) and returns its exit code; anything unforeseen is rethrown. */
export function report(error: unknown, json: boolean): number {
  const code = exitForError(error)
  if (code === undefined) throw error
  if (json && error instanceof ClientError) console.log(JSON.stringify({ error: error.toJSON() }))
  console.error(`countersign: ${messageOf(error)}`)
  return code
}

function messageOf(error: unknown): string {
  if (error instanceof ClientError) {
    if (error.code === 'gateway_unavailable') return `${error.message.replace(/: .*$/s, '')}: ${describeCause(error.cause)}; nothing was run.`
    if (error.code === 'wait_timeout') {
      return `${error.message} (--timeout). The request stays pending; run the same command again to attach to it, or cancel it.`
    }
    return `${error.message}${error.status !== undefined ? ` (${error.code})` : ''}`
  }
  return error instanceof Error ? error.message : String(error)
}

/**
 * The innermost reason behind a failed call, e.g. `connect ECONNREFUSED 127.0.0.1:8081`: fetch
 * wraps the socket's error in a "fetch failed" TypeError, and a happy-eyeballs connect in an
 * AggregateError with one error per address.
 */
export function describeCause(cause: unknown): string {
  let described = cause instanceof Error ? cause.message : String(cause)
  const seen = new Set<unknown>()
  let current: unknown = cause
  while (current instanceof Error && !seen.has(current)) {
    seen.add(current)
    if (current instanceof ClientError) return current.status !== undefined ? `HTTP ${current.status}: ${current.message}` : current.message
    if (current.name === 'TimeoutError') return 'no answer before the timeout'
    if (current instanceof AggregateError && current.errors.length > 0) {
      return [...new Set(current.errors.map((inner: unknown) => describeCause(inner)))].join('; ')
    }
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string' && code.startsWith('ERR_SSL_')) {
      return `TLS handshake failed (${code}); check the URL's scheme: http:// or https://`
    }
    if (typeof code === 'string' && /CERT|^UNABLE_TO_|HOSTNAME_MISMATCH/.test(code)) return `TLS certificate refused: ${current.message} (${code})`
    if (current.message !== '' && typeof code === 'string') described = current.message
    current = current.cause
  }
  return described
}

/** Prints a request as JSON (the API's request view) or as a short human summary: bound files, votes and the policy's explanation included. */
export function printRequest(request: ActionRequest, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(requestViewOf(request), null, 2))
    return
  }
  console.log(describeStatus(request))
  console.log(`  ${request.action} on ${request.resource} in ${request.environment} (digest ${request.digest.slice(0, 12)}, v${request.version})`)
  console.log(`  requested by ${request.requester.id}${request.onBehalfOf ? ` for ${request.onBehalfOf.id}${request.onBehalfOf.verified ? '' : ' (claimed)'}` : ''}`)
  if (request.reason) console.log(`  reason: ${request.reason}`)
  console.log(`  params: ${JSON.stringify(request.params)}`)
  for (const file of request.bind) console.log(`  bound file: ${file.path} sha256 ${file.sha256}`)
  if (request.decision) {
    console.log(`  policy: ${request.decision.effect}, risk ${request.decision.risk}, rules ${request.decision.matchedRules.map((r) => r.name).join(', ') || '(none)'}`)
    for (const line of request.decision.explain) console.log(`    ${line}`)
  }
  for (const vote of request.votes) {
    console.log(`  ${vote.decision} by ${vote.voterId} on v${vote.version} via ${vote.via}${vote.reason ? `: ${vote.reason}` : ''}`)
  }
  if (request.result) {
    console.log(`  result: ${request.result.outcome}${request.result.exitCode !== null ? ` (exit ${request.result.exitCode})` : ''}${request.result.detail ? `: ${request.result.detail}` : ''}`)
  }
}
