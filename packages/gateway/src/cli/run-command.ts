import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { resolve } from 'node:path'
import { CountersignError as ClientError } from '@countersign/sdk'
import type { Command } from 'commander'
import { type ClientOptions, client, EXIT, printRequest, runClientCommand, UsageError, withClientOptions } from './client-options.js'
import { exitFor, parseJsonObject, waitWithLiveLine, withActionOptions } from './request-commands.js'

interface RunFlags extends ClientOptions {
  action: string
  resource: string
  env: string
  reason?: string
  context?: string
  timeout?: string
  bindFile: string[]
}

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
    throw new ClientError('unexpected_response', 'The approved params are not a command (argv and cwd); refusing to run anything.')
  }
  return { argv: argv as string[], cwd }
}

function runCommand({ argv, cwd }: CommandParams): Promise<number> {
  return new Promise((resolveExit) => {
    const [file, ...args] = argv as [string, ...string[]]
    const child = spawn(file, args, { cwd, stdio: 'inherit' })
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal)
    }
    process.on('SIGINT', forward)
    process.on('SIGTERM', forward)
    child.once('error', (error) => {
      console.error(`countersign: cannot start ${file}: ${error.message}`)
      resolveExit(127)
    })
    child.once('exit', (code, signal) => {
      process.off('SIGINT', forward)
      process.off('SIGTERM', forward)
      resolveExit(code ?? (signal ? 128 : 1))
    })
  })
}

/**
 * `countersign run [flags] -- CMD ARGS…`: asks for approval of this exact
 * command (argv, cwd and the hashes of bound files), waits with a live
 * status line, then redeems the grant and runs exactly what was approved.
 * Anything unclear (gateway unreachable, a bound file changed, a grant
 * refused) refuses to run the command.
 */
export function registerRunCommand(program: Command): void {
  withActionOptions(withClientOptions(program.command('run')))
    .description('run a command only after it is approved: countersign run --action A --resource R --env E -- CMD ARGS…')
    .option('--bind-file <file>', 'a file whose SHA-256 joins the digest and is re-checked right before running (repeatable)',
      (value: string, previous: string[]) => [...previous, value], [] as string[])
    .argument('<command...>', 'the command and its arguments, after --')
    .action((argv: string[], flags: RunFlags) =>
      runClientCommand(flags, async () => {
        const cs = client(flags)
        const bind = await Promise.all(flags.bindFile.map(async (path) => ({ path: resolve(path), sha256: await sha256File(path) })))
        const params: CommandParams = { argv, cwd: process.cwd() }
        let request = await cs.request({
          action: flags.action,
          resource: flags.resource,
          environment: flags.env,
          params: { ...params },
          ...(flags.reason !== undefined ? { reason: flags.reason } : {}),
          ...(flags.context !== undefined ? { context: parseJsonObject(flags.context, '--context') } : {}),
          ...(bind.length > 0 ? { bind } : {}),
        })
        request = await waitWithLiveLine(cs, request, cs.url, flags.timeout)
        if (request.status !== 'approved') {
          printRequest(request, flags.json === true)
          return exitFor(request)
        }
        // The files must still be the ones that were approved, right before running.
        for (const file of bind) {
          if ((await sha256File(file.path)) !== file.sha256) {
            console.error(`countersign: ${file.path} changed after it was approved; not running.`)
            return EXIT.refused
          }
        }
        const token = request.grant?.token
        if (!token) {
          console.error('countersign: the approval carries no usable grant (already redeemed?); not running.')
          return EXIT.refused
        }
        let redemption
        try {
          redemption = await cs.redeem(token, request.digest)
        } catch (error) {
          if (error instanceof ClientError && error.code !== 'gateway_unavailable') {
            console.error(`countersign: grant refused (${error.code}): ${error.message}; not running.`)
            return EXIT.refused
          }
          throw error
        }
        const approved = commandParamsOf(redemption.params)
        if (request.version > 1) console.error(`countersign: a reviewer edited the command; running the approved version: ${approved.argv.join(' ')}`)
        const code = await runCommand(approved)
        await cs
          .reportResult(request.id, { outcome: code === 0 ? 'succeeded' : 'failed', exitCode: code })
          .catch((error: unknown) => console.error(`countersign: could not report the result: ${(error as Error).message}`))
        return code
      }),
    )
}
