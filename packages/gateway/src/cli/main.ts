import { Command } from 'commander'
import { exitOnUsageError } from './client-options.js'
import { registerAuditCommands } from './audit-commands.js'
import { registerInitCommand } from './init-command.js'
import { registerKeysCommands } from './keys-commands.js'
import { registerPolicyCommands } from './policy-commands.js'
import { registerRequestCommands } from './request-commands.js'
import { registerRunCommand } from './run-command.js'
import { registerServeCommand } from './serve-command.js'
import { VERSION } from '../version.js'

/** Builds the `countersign` command tree. */
export function buildProgram(): Command {
  const program = new Command('countersign')
    .description('Action-level approvals for AI agents and pipelines')
    .version(VERSION)
    .showHelpAfterError()
    // Set before the subcommands are added: commander copies it into each one as it is created.
    .exitOverride(exitOnUsageError)
    .addHelpText(
      'after',
      '\nExit codes: 0 approved (run: the command\'s own), 1 refused by the gateway, 2 usage error, 3 denied,\n' +
        '4 expired or --timeout, 5 cancelled, 6 gateway unreachable, 7 grant or binding refused, 8 still pending.\n' +
        'Every command, flag and code: docs/cli.md',
    )
  registerServeCommand(program)
  registerInitCommand(program)
  registerKeysCommands(program)
  registerRequestCommands(program)
  registerRunCommand(program)
  registerPolicyCommands(program)
  registerAuditCommands(program)
  return program
}

/** Runs the CLI and resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram()
  try {
    await program.parseAsync(argv)
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (error) {
    const code = (error as { exitCode?: unknown }).exitCode
    if (typeof code === 'number') return code
    throw error
  }
}
