import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { once } from 'node:events'
import { join, resolve } from 'node:path'
import type { KeyObject } from 'node:crypto'
import type { Command } from 'commander'
import { z } from 'zod'
import {
  AUDIT_SIGNING_KEY_FILE,
  exportAuditLog,
  loadAuditSigner,
  parseAuditPublicKey,
  verifyAuditLog,
} from '../audit/index.js'
import { isCountersignError, isLocalError } from '../core/index.js'
import { SQLITE_FILE_NAME, openStore } from '../store/index.js'
import type { Store } from '../store/index.js'
import { EXIT } from './client-options.js'
import { LiveLine } from './live-line.js'

const DEFAULT_DATA_DIR = './.countersign'

const locationFlags = z.strictObject({
  dataDir: z.string().min(1).optional(),
  database: z.string().min(1).optional(),
  databaseSchema: z.string().min(1).optional(),
})

const verifyFlags = locationFlags.extend({ publicKey: z.string().min(1).optional() })

const exportFlags = locationFlags.extend({
  format: z.enum(['jsonl', 'csv'], { error: '--format must be jsonl or csv' }),
  since: z
    .union([z.iso.datetime({ offset: true }), z.iso.date()], { error: '--since must be an ISO 8601 date or time, e.g. 2026-01-31T00:00:00Z' })
    .transform((text) => Date.parse(text))
    .optional(),
})

interface Output {
  out(text: string): void | Promise<void>
  err(line: string): void
}

/** A problem reported as one line on stderr; by default a usage problem (exit 2), nothing verified. */
class AuditCommandError extends Error {
  readonly exit: number

  constructor(message: string, exit: number = EXIT.usage) {
    super(message)
    this.exit = exit
  }
}

/**
 * Adds `countersign audit verify|export`.
 *
 * `verify` exits 0 when the log is intact, 1 when it was tampered with
 * (naming the first bad seq), 2 for a usage or key problem and 6 when the
 * store cannot be reached, so a script can tell "tampered" from "could not check".
 */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('Verify and export the tamper-evident audit log')

  audit
    .command('verify')
    .description('Check every hash link and signed checkpoint of the audit log')
    .option('--data-dir <dir>', `data directory holding the SQLite store and signing key (env COUNTERSIGN_DATA_DIR, default ${DEFAULT_DATA_DIR})`)
    .option('--database <url>', 'verify a PostgreSQL store instead (env COUNTERSIGN_DATABASE)')
    .option('--database-schema <name>', 'PostgreSQL schema holding the tables (env COUNTERSIGN_DATABASE_SCHEMA)')
    .option('--public-key <file>', "checkpoint public key, PEM or JWK (default: derived from the data directory's signing key)")
    .action(async (flags: unknown, command: Command) => {
      const io = output(command)
      await run(io, async () => {
        const options = parse(verifyFlags, flags)
        const location = resolveLocation(options)
        const publicKey = await resolvePublicKey(options.publicKey, location.dataDir, io)
        const store = await openLocation(location)
        try {
          const progress = process.stderr.isTTY ? new LiveLine(process.stderr) : undefined
          const result = await verifyAuditLog(store, { publicKey }, ({ verified, total }) =>
            progress?.update(`verifying audit log: ${verified.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} entries`),
          )
          progress?.done()
          if (!result.ok) {
            await io.out(`audit log NOT intact: seq ${result.seq} ${result.problem}: ${result.message}\n`)
            return EXIT.failure
          }
          await io.out(
            `audit log intact: ${result.entries} ${result.entries === 1 ? 'entry' : 'entries'}, ` +
              `${result.checkpoints} ${result.checkpoints === 1 ? 'checkpoint' : 'checkpoints'}, head ${result.headHash.slice(0, 12)}\n`,
          )
          if (result.entries === 0) {
            io.err(`note: the audit log in ${store.describe} is empty; check that this is the gateway's store`)
          } else if (result.checkpoints === 0) {
            io.err('note: no signed checkpoint yet, so removal of the newest entries cannot be detected')
          }
          return EXIT.ok
        } finally {
          await store.close()
        }
      })
    })

  audit
    .command('export')
    .description('Write the audit log to stdout as JSON lines or CSV')
    .requiredOption('--format <format>', 'jsonl or csv')
    .option('--since <time>', 'only entries at or after this ISO 8601 time')
    .option('--data-dir <dir>', `data directory holding the SQLite store (env COUNTERSIGN_DATA_DIR, default ${DEFAULT_DATA_DIR})`)
    .option('--database <url>', 'export from a PostgreSQL store instead (env COUNTERSIGN_DATABASE)')
    .option('--database-schema <name>', 'PostgreSQL schema holding the tables (env COUNTERSIGN_DATABASE_SCHEMA)')
    .action(async (flags: unknown, command: Command) => {
      const io = output(command)
      await run(io, async () => {
        const options = parse(exportFlags, flags)
        const store = await openLocation(resolveLocation(options))
        // A reader that goes away (`| head`) makes stdout emit EPIPE; stop
        // exporting with one line instead of crashing on an unhandled error.
        let closed: Error | undefined
        const onClosed = (error: Error) => {
          closed = error
        }
        process.stdout.on('error', onClosed)
        try {
          await exportAuditLog(store, { format: options.format, ...(options.since === undefined ? {} : { since: options.since }) }, async (chunk) => {
            if (closed) throw new AuditCommandError(`Stopped the export: stdout was closed (${closed.message}).`, EXIT.failure)
            await io.out(chunk)
          })
          return EXIT.ok
        } finally {
          process.stdout.off('error', onClosed)
          await store.close()
        }
      })
    })
}

interface Location {
  dataDir: string
  database: string | undefined
  schema: string | undefined
}

function resolveLocation(options: z.infer<typeof locationFlags>): Location {
  return {
    dataDir: resolve(options.dataDir ?? process.env.COUNTERSIGN_DATA_DIR ?? DEFAULT_DATA_DIR),
    database: options.database ?? (options.dataDir === undefined ? process.env.COUNTERSIGN_DATABASE : undefined),
    schema: options.databaseSchema ?? process.env.COUNTERSIGN_DATABASE_SCHEMA,
  }
}

async function openLocation(location: Location): Promise<Store> {
  if (location.database !== undefined) {
    return openStore({ databaseUrl: location.database, ...(location.schema === undefined ? {} : { schema: location.schema }) })
  }
  // Opening a store creates it; a typo in --data-dir must not verify a brand-new empty log.
  const file = join(location.dataDir, SQLITE_FILE_NAME)
  if (!existsSync(file)) {
    throw new AuditCommandError(`No audit log at ${file}: pass --data-dir with the gateway's data directory, or --database.`)
  }
  return openStore({ dataDir: location.dataDir })
}

async function resolvePublicKey(file: string | undefined, dataDir: string, io: Output): Promise<KeyObject> {
  if (file !== undefined) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (error) {
      throw new AuditCommandError(`Cannot read the public key ${file}: ${(error as Error).message}.`)
    }
    return parseAuditPublicKey(text, file)
  }
  const keyFile = join(dataDir, AUDIT_SIGNING_KEY_FILE)
  if (!existsSync(keyFile)) {
    throw new AuditCommandError(
      `No signing key at ${keyFile}: pass --public-key with the gateway's published audit public key (PEM or JWK).`,
    )
  }
  io.err(`note: using the public half of ${keyFile}; an independent check should pass --public-key with the published key`)
  return loadAuditSigner({ privateKeyPem: await readFile(keyFile, 'utf8') }).publicKey
}

function parse<T extends z.ZodType>(schema: T, flags: unknown): z.infer<T> {
  const parsed = schema.safeParse(flags)
  if (!parsed.success) throw new AuditCommandError(parsed.error.issues.map((issue) => issue.message).join('; '))
  return parsed.data
}

async function run(io: Output, body: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await body()
  } catch (error) {
    if (error instanceof AuditCommandError) {
      io.err(`countersign: ${error.message}`)
      process.exitCode = error.exit
    } else if (isCountersignError(error) || isLocalError(error)) {
      io.err(`countersign: ${error.message}`)
      process.exitCode = error.code === 'store_unavailable' ? EXIT.unavailable : error.code === 'config_invalid' ? EXIT.usage : EXIT.failure
    } else {
      throw error
    }
  }
}

function output(command: Command): Output {
  const config = command.configureOutput()
  const writeOut = config.writeOut ?? ((text: string) => process.stdout.write(text))
  const writeErr = config.writeErr ?? ((text: string) => process.stderr.write(text))
  return {
    async out(text) {
      // Commander's default writer returns stdout.write's result; false means the
      // pipe is full, so a large export waits instead of buffering the whole log.
      if ((writeOut(text) as unknown) === false) await once(process.stdout, 'drain')
    },
    err: (line) => writeErr(`${line}\n`),
  }
}
