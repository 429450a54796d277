import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { resolve } from 'node:path'
import { type ActionRequest, type BoundFile, CountersignError as ClientError, requestViewOf } from '@countersign/sdk'
import type { Command } from 'commander'
import { type ClientOptions, client, NotRun, printRequest, report, runClientCommand, UsageError, withClientOptions } from './client-options.js'
import { parseJsonObject, withActionOptions } from './request-commands.js'
import { DecisionWatch, Interrupted, Interruption, reportInterrupted, timeoutMs } from './wait-for-decision.js'

interface RunFlags extends ClientOptions {
  action: string
  resource: string
  env: string
  reason?: string
  context?: string
  timeout?: string
  new?: boolean
  bindFile: string[]
}

const RUN_EXAMPLE = 'countersign run --action A --resource R --env E -- CMD ARGS…'

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  } catch (error) {
    throw new UsageError(`Cannot read bound file ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)}).`)
  }
  return hash.digest('hex')
}

/** The params a command is approved with: its exact argv and working directory. */
interface CommandParams {
  argv: string[]
  cwd: string
}

function commandParamsOf(params: Record<string, unknown>): CommandParams {
  const { argv, cwd } = params
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string') || typeof cwd !== 'string') {
    throw new NotRun('The approved params are not a command (argv and cwd); refusing to run anything.')
  }
  return { argv: argv as string[], cwd }
}

/** Right before running: every bound file must still hash to what was approved. */
async function checkBoundFiles(bind: readonly BoundFile[]): Promise<void> {
  for (const file of bind) {
    let now: string
    try {
      now = await sha256File(file.path)
    } catch (error) {
      throw new NotRun(`${(error as Error).message} It was approved with sha256 ${file.sha256}; not running.`)
    }
    if (now !== file.sha256) throw new NotRun(`${file.path} changed after it was approved (sha256 ${now}, approved ${file.sha256}); not running.`)
  }
}

function runCommand({ argv, cwd }: CommandParams, interruption: Interruption): Promise<number> {
  return new Promise((resolveExit) => {
    const [file, ...args] = argv as [string, ...string[]]
    const child = spawn(file, args, { cwd, stdio: 'inherit' })
    // Once the command runs, Ctrl-C is the command's to handle.
    interruption.forwardTo((signal) => child.kill(signal))
    child.once('error', (error) => {
      interruption.forwardTo(undefined)
      console.error(`countersign: cannot start ${file}: ${error.message}`)
      resolveExit(127)
    })
    child.once('exit', (code, signal) => {
      interruption.forwardTo(undefined)
      resolveExit(code ?? (signal ? 128 : 1))
    })
  })
}

/**
 * The command comes after `--`, always: without it commander would take the command's own flags
 * (`echo hi --env staging`) as run's, and file the request for something other than what runs.
 */
function assertCommandAfterDashDash(command: Command, argv: string[]): void {
  let root = command
  while (root.parent) root = root.parent
  // Commander keeps the raw argv on the root command; it is not in its typings.
  const raw = (root as Command & { rawArgs?: string[] }).rawArgs ?? []
  const dashDash = raw.indexOf('--', raw.indexOf('run') + 1)
  const after = dashDash === -1 ? [] : raw.slice(dashDash + 1)
  if (dashDash === -1 || after.length !== argv.length || after.some((arg, i) => arg !== argv[i])) {
    throw new UsageError(
      `run needs the command after --, so that its flags are not taken as run's own: ${RUN_EXAMPLE}` +
        (argv.length > 0 ? `\n  e.g. countersign run --action … --resource … --env … -- ${argv.join(' ')}` : ''),
    )
  }
}

/**
 * `countersign run [flags] -- CMD ARGS…`: asks for approval of this exact command (argv, cwd
 * and the hashes of bound files), waits with a live status line, then runs exactly what was
 * approved. Built on the SDK's `guard()`, which decides what executes: the grant must redeem
 * for the approved request and digest, and the bound files are re-checked right before the
 * command starts. Anything unclear (gateway unreachable, a bound file changed, a grant refused)
 * runs nothing.
 */
export function registerRunCommand(program: Command): void {
  withActionOptions(withClientOptions(program.command('run')))
    .description(`run a command only after it is approved: ${RUN_EXAMPLE}`)
    .option('--bind-file <file>', 'a file whose SHA-256 joins the digest and is re-checked right before running (repeatable)',
      (value: string, previous: string[]) => [...previous, value], [] as string[])
    .argument('[command...]', 'the command and its arguments, after --')
    .action((argv: string[], flags: RunFlags, command: Command) =>
      runClientCommand(flags, async () => {
        assertCommandAfterDashDash(command, argv)
        if (argv.length === 0) throw new UsageError(`run needs a command after --: ${RUN_EXAMPLE}`)
        const limit = timeoutMs(flags.timeout)
        const context = flags.context !== undefined ? parseJsonObject(flags.context, '--context') : undefined
        const cs = client(flags)
        const bind = await Promise.all(flags.bindFile.map(async (path) => ({ path: resolve(path), sha256: await sha256File(path) })))
        const params: CommandParams = { argv, cwd: process.cwd() }
        const watch = new DecisionWatch(cs.url)
        const interruption = new Interruption()
        let exitCode: number | undefined
        let ran: ActionRequest | undefined
        try {
          exitCode = await cs.guard(
            {
              action: flags.action,
              resource: flags.resource,
              environment: flags.env,
              params: { ...params },
              ...(flags.reason !== undefined ? { reason: flags.reason } : {}),
              ...(context !== undefined ? { context } : {}),
              ...(bind.length > 0 ? { bind } : {}),
            },
            (approved, request) => {
              watch.done()
              ran = request
              if (request.version > 1) console.error(`countersign: a reviewer edited the command; running the approved version: ${commandParamsOf(approved).argv.join(' ')}`)
              return runCommand(commandParamsOf(approved), interruption)
            },
            {
              signal: interruption.signal,
              onUpdate: watch.onUpdate,
              onReachability: watch.onReachability,
              ...(limit !== undefined ? { timeoutMs: limit } : {}),
              ...(flags.new === true ? { newRequest: true } : {}),
              async beforeRun(approved) {
                commandParamsOf(approved)
                await checkBoundFiles(bind)
              },
              resultOf: (code) => ({ outcome: code === 0 ? 'succeeded' : 'failed', exitCode: code }),
            },
          )
        } catch (error) {
          watch.done()
          if (error instanceof Interrupted) return reportInterrupted(cs, watch.latest?.id, false)
          const request = (error as { request?: unknown }).request
          if (error instanceof ClientError && isRequest(request)) printRequest(request, flags.json === true)
          return report(error, flags.json === true && !isRequest(request))
        } finally {
          watch.done()
          interruption.dispose()
        }
        if (flags.json && ran !== undefined) console.log(JSON.stringify({ request: requestViewOf(ran), exit_code: exitCode }, null, 2))
        return exitCode
      }),
    )
}

function isRequest(value: unknown): value is ActionRequest {
  return typeof value === 'object' && value !== null && 'status' in value && 'digest' in value
}
