import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { isCountersignError, isLocalError } from '../core/index.js'
import type { Principal } from '../core/index.js'
import {
  evaluate,
  explainView,
  formatDiagnostic,
  loadPolicyFile,
  parseActionRequest,
  parsePrincipal,
  runPolicyTests,
} from '../policy/index.js'
import type { CompiledPolicy, PolicyDiagnostic } from '../policy/index.js'

interface Output {
  out(line: string): void
  err(line: string): void
}

/** The principal `policy explain` assumes when none is given. */
const EXPLAIN_PRINCIPAL: Principal = {
  id: 'policy-explain',
  kind: 'agent',
  displayName: 'policy explain',
  groups: [],
}

/** Exit codes of the policy commands (docs/cli.md): a bad policy or a failing case is 1, a bad flag or input file 2. */
const POLICY_EXIT = { invalid: 1, usage: 2 } as const

/**
 * Adds `countersign policy check|test|explain`. Problems are written to
 * stderr, one `file:line:col: message` per problem, so editors and CI annotate
 * the right line. An invalid policy or a failing case exits 1; a bad flag, an
 * unreadable or malformed --tests/--request/--principal input exits 2.
 */
export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('Validate, test and dry-run policy files')

  policy
    .command('check')
    .description('Validate a policy file and report every problem as file:line:col')
    .argument('<file>', 'policy file (YAML)')
    .action(async (file: string, _options: unknown, command: Command) => {
      const io = output(command)
      const loaded = await loadForCli(file, io)
      if (loaded === undefined) return
      io.out(
        `${file}: valid (${plural(loaded.rules.length, 'rule')}, ${plural(loaded.risk.length, 'risk rule')}, sha256 ${loaded.sha256})`,
      )
    })

  policy
    .command('test')
    .description('Run a YAML file of test cases against a policy')
    .argument('<file>', 'policy file (YAML)')
    .requiredOption('--tests <file>', 'YAML list of cases: {name, request, principal, now?, expect}')
    .action(async (file: string, options: { tests: string }, command: Command) => {
      const io = output(command)
      const loaded = await loadForCli(file, io)
      if (loaded === undefined) return
      const text = await readInput(options.tests, io)
      if (text === undefined) return
      const results = attempt(() => runPolicyTests(loaded, text, options.tests, Date.now()), io, POLICY_EXIT.usage)
      if (results === undefined) return
      for (const result of results) {
        io.out(result.passed ? `PASS ${result.name}` : `FAIL ${result.name}: ${result.failures.join('; ')}`)
      }
      const failed = results.filter((result) => !result.passed).length
      io.out(`${plural(results.length - failed, 'case')} passed, ${failed} failed`)
      if (failed > 0) process.exitCode = POLICY_EXIT.invalid
    })

  policy
    .command('explain')
    .description('Evaluate one request against a policy and print the decision as JSON')
    .argument('<file>', 'policy file (YAML)')
    .requiredOption('--request <json>', 'the request as JSON, or @path to a JSON or YAML file')
    .option('--principal <json>', 'the requester as JSON, or @path (default: an agent with no groups)')
    .option('--now <time>', 'evaluate as of this ISO 8601 time or epoch milliseconds (default: now)')
    .action(
      async (file: string, options: { request: string; principal?: string; now?: string }, command: Command) => {
        const io = output(command)
        const now = parseNow(options.now)
        if (now === undefined) {
          io.err(`error: --now must be an ISO 8601 time (2025-01-31T09:00:00Z) or epoch milliseconds, not "${options.now}"`)
          process.exitCode = POLICY_EXIT.usage
          return
        }
        const loaded = await loadForCli(file, io)
        if (loaded === undefined) return
        const requestText = await inlineOrFile(options.request, '--request', io)
        if (requestText === undefined) return
        const principalText =
          options.principal === undefined ? undefined : await inlineOrFile(options.principal, '--principal', io)
        if (options.principal !== undefined && principalText === undefined) return
        const evaluation = attempt(() => {
          const request = parseActionRequest(requestText.text, requestText.name)
          const principal =
            principalText === undefined ? EXPLAIN_PRINCIPAL : parsePrincipal(principalText.text, principalText.name)
          return evaluate(loaded, request, principal, now)
        }, io, POLICY_EXIT.usage)
        if (evaluation !== undefined) io.out(JSON.stringify(explainView(evaluation), null, 2))
      },
    )
}

function output(command: Command): Output {
  const config = command.configureOutput()
  const writeOut = config.writeOut ?? ((text: string) => process.stdout.write(text))
  const writeErr = config.writeErr ?? ((text: string) => process.stderr.write(text))
  return { out: (line) => writeOut(`${line}\n`), err: (line) => writeErr(`${line}\n`) }
}

async function loadForCli(file: string, io: Output): Promise<CompiledPolicy | undefined> {
  try {
    return await loadPolicyFile(file)
  } catch (error) {
    reportFailure(error, io, POLICY_EXIT.invalid)
    return undefined
  }
}

/** Runs `work` on what the flags gave, reporting a refusal (with `exit`) instead of throwing it. */
function attempt<T>(work: () => T, io: Output, exit: number): T | undefined {
  try {
    return work()
  } catch (error) {
    reportFailure(error, io, exit)
    return undefined
  }
}

/** Prints located problems one per line when there are any, else the message. */
function reportFailure(error: unknown, io: Output, exit: number): void {
  process.exitCode = exit
  if (!isCountersignError(error) && !isLocalError(error)) throw error
  const errors = error.details['errors']
  if (Array.isArray(errors) && errors.length > 0) {
    for (const diagnostic of errors as PolicyDiagnostic[]) io.err(formatDiagnostic(diagnostic))
  } else {
    io.err(`error: ${error.message}`)
  }
}

async function readInput(path: string, io: Output): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    const reason = error instanceof Error && 'code' in error ? String(error.code) : String(error)
    io.err(`error: cannot read ${path} (${reason}); check the path`)
    process.exitCode = POLICY_EXIT.usage
    return undefined
  }
}

/**
 * `--request '{"action": ...}'` or `--request @request.json`. Inline text must
 * be JSON; a file may be JSON or YAML.
 */
async function inlineOrFile(
  value: string,
  flag: string,
  io: Output,
): Promise<{ text: string; name: string } | undefined> {
  if (value.startsWith('@')) {
    const path = value.slice(1)
    const text = await readInput(path, io)
    return text === undefined ? undefined : { text, name: path }
  }
  try {
    JSON.parse(value)
  } catch (error) {
    io.err(
      `error: ${flag} is not valid JSON (${error instanceof Error ? error.message : String(error)}); pass a JSON object or @path/to/file.json`,
    )
    process.exitCode = POLICY_EXIT.usage
    return undefined
  }
  return { text: value, name: flag }
}

function parseNow(value: string | undefined): number | undefined {
  if (value === undefined) return Date.now()
  if (/^\d+$/.test(value)) return Number(value)
  const parsed = Date.parse(value)
  return Number.isNaN(parsed) ? undefined : parsed
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`
}
