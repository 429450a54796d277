import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { z } from 'zod'
import { LocalError, parseDuration } from '../core/index.js'
import { formatDiagnostic, parseYamlSource, type PolicyDiagnostic, zodDiagnostics } from '../policy/index.js'

const duration = z.string().refine((text) => {
  try {
    parseDuration(text)
    return true
  } catch {
    return false
  }
}, 'a duration such as 30s, 5m or 1h')

const oidcSchema = z.strictObject({
  issuer: z.url(),
  audience: z.string().min(1),
  jwks_url: z.url().optional(),
  groups_claim: z.string().min(1).optional(),
  email_claim: z.string().min(1).optional(),
})

const githubActionsSchema = z.strictObject({
  audience: z.string().min(1),
  allowed_repositories: z.array(z.string().min(1)).min(1).optional(),
  people: z.record(z.string().min(1), z.string().min(1)).optional(),
})

const postgresUrl = z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL')
const schemaName = z.string().regex(/^[a-z_][a-z0-9_]*$/, 'a lowercase schema name')
const trustProxy = z.union([z.boolean(), z.array(z.string().min(1)).min(1)])
const bodyLimit = z.number().int().min(1024).max(64 * 1024 * 1024)

/** The `countersign.yaml` file. Paths in it are relative to the file. */
const configFileSchema = z.strictObject({
  host: z.string().min(1).optional(),
  port: z.number().int().min(0).max(65535).optional(),
  data_dir: z.string().min(1).optional(),
  database: postgresUrl.optional(),
  database_schema: schemaName.optional(),
  policy: z.string().min(1).optional(),
  public_url: z.url().optional(),
  log: z.boolean().optional(),
  trust_proxy: trustProxy.optional(),
  body_limit: bodyLimit.optional(),
  grants: z.strictObject({ ttl: duration.optional(), audience: z.string().min(1).optional() }).optional(),
  audit: z.strictObject({
    checkpoint_every: z.number().int().min(1).optional(),
    checkpoint_interval: duration.optional(),
  }).optional(),
  auth: z.strictObject({
    oidc: z.array(oidcSchema).optional(),
    github_actions: githubActionsSchema.optional(),
  }).optional(),
})

/** A configuration handed to `startGateway`, e.g. by code that embeds the gateway rather than by the loader. */
const gatewayConfigSchema = z.object({
  host: z.string().min(1),
  port: z.number().int().min(0).max(65535),
  dataDir: z.string().min(1),
  databaseUrl: postgresUrl.optional(),
  databaseSchema: schemaName.optional(),
  policyFile: z.string().min(1).optional(),
  publicUrl: z.url(),
  log: z.boolean(),
  trustProxy,
  bodyLimit,
  grantTtlMs: z.number().int().min(1000, 'at least 1000 ms'),
  grantAudience: z.string().min(1),
  checkpointEvery: z.number().int().min(1),
  checkpointIntervalMs: z.number().int().min(0),
  oidc: z.array(oidcSchema),
  githubActions: githubActionsSchema.optional(),
})

/**
 * Refuses a configuration the gateway cannot run with, naming every bad field.
 *
 * @throws LocalError `config_invalid`
 */
export function checkGatewayConfig(config: GatewayConfig): void {
  const parsed = gatewayConfigSchema.safeParse(config)
  if (parsed.success) return
  const issues = parsed.error.issues.map((issue) => ({ path: issue.path.map(String).join('.') || '(root)', message: issue.message }))
  throw new LocalError(
    'config_invalid',
    `Invalid gateway configuration: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}.`,
    { issues },
  )
}

type ConfigFile = z.infer<typeof configFileSchema>

/** Everything the gateway needs to start, after file, environment and flags are merged. */
export interface GatewayConfig {
  host: string
  port: number
  dataDir: string
  databaseUrl?: string
  /** The PostgreSQL schema to keep the tables in (created if missing); default the search path's first. */
  databaseSchema?: string
  /** Absent: the data directory's `policy.yaml`, copied from the example on first start. */
  policyFile?: string
  publicUrl: string
  log: boolean
  /** Proxies whose X-Forwarded-For names the client (true: any); the client address limits failed sign-ins. */
  trustProxy: boolean | string[]
  bodyLimit: number
  grantTtlMs: number
  grantAudience: string
  checkpointEvery: number
  checkpointIntervalMs: number
  oidc: NonNullable<NonNullable<ConfigFile['auth']>['oidc']>
  githubActions?: NonNullable<ConfigFile['auth']>['github_actions']
}

/** Flags given on the command line; they win over the environment, which wins over the file. */
export interface ConfigOverrides {
  config?: string
  dataDir?: string
  database?: string
  databaseSchema?: string
  host?: string
  port?: string
  policy?: string
}

const ENV: Record<keyof Omit<ConfigOverrides, 'config'> | 'config', string> = {
  config: 'COUNTERSIGN_CONFIG',
  dataDir: 'COUNTERSIGN_DATA_DIR',
  database: 'COUNTERSIGN_DATABASE',
  databaseSchema: 'COUNTERSIGN_DATABASE_SCHEMA',
  host: 'COUNTERSIGN_HOST',
  port: 'COUNTERSIGN_PORT',
  policy: 'COUNTERSIGN_POLICY',
}

/**
 * Resolves the gateway's configuration. An invalid file, or an invalid flag
 * or variable, refuses with `config_invalid` and every problem as
 * `file:line:col: message`.
 */
export function loadGatewayConfig(overrides: ConfigOverrides, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const pick = (key: keyof ConfigOverrides): string | undefined => overrides[key] ?? env[ENV[key]] ?? undefined
  const configPath = pick('config')
  const file = configPath === undefined ? {} : readConfigFile(configPath)
  const base = configPath === undefined ? process.cwd() : dirname(resolve(configPath))
  const fromFile = (path: string | undefined): string | undefined => (path === undefined ? undefined : resolve(base, path))

  const portText = pick('port')
  let port = file.port ?? 8080
  if (portText !== undefined) {
    port = Number(portText)
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new LocalError('config_invalid', `Invalid port "${portText}": give a whole number from 0 to 65535.`)
    }
  }
  const database = pick('database') ?? file.database
  if (database !== undefined && !/^postgres(ql)?:\/\//.test(database)) {
    throw new LocalError('config_invalid', `Invalid database URL: only postgres:// URLs are supported; leave it unset for the embedded SQLite store.`)
  }
  const host = pick('host') ?? file.host ?? '127.0.0.1'
  const policyFile = overrides.policy ?? env.COUNTERSIGN_POLICY ?? fromFile(file.policy)
  const config: GatewayConfig = {
    host,
    port,
    dataDir: resolve(overrides.dataDir ?? env.COUNTERSIGN_DATA_DIR ?? fromFile(file.data_dir) ?? '.countersign'),
    publicUrl: file.public_url ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    log: file.log ?? false,
    trustProxy: file.trust_proxy ?? false,
    bodyLimit: file.body_limit ?? 1024 * 1024,
    grantTtlMs: parseDuration(file.grants?.ttl ?? '5m'),
    grantAudience: file.grants?.audience ?? 'countersign',
    checkpointEvery: file.audit?.checkpoint_every ?? 1000,
    checkpointIntervalMs: parseDuration(file.audit?.checkpoint_interval ?? '60s'),
    oidc: file.auth?.oidc ?? [],
  }
  if (database !== undefined) config.databaseUrl = database
  const schema = pick('databaseSchema') ?? file.database_schema
  if (schema !== undefined) config.databaseSchema = schema
  if (policyFile !== undefined) config.policyFile = resolve(policyFile)
  if (file.auth?.github_actions !== undefined) config.githubActions = file.auth.github_actions
  return config
}

function readConfigFile(path: string): ConfigFile {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error)
    throw new LocalError('config_invalid', `Cannot read config file ${path} (${reason}); check the path.`)
  }
  const source = parseYamlSource(text, path)
  let diagnostics: PolicyDiagnostic[] = source.syntaxErrors
  if (diagnostics.length === 0) {
    const parsed = configFileSchema.safeParse(source.value ?? {})
    if (parsed.success) return parsed.data
    diagnostics = zodDiagnostics(parsed.error.issues, source, configFileSchema)
  }
  throw new LocalError(
    'config_invalid',
    `Invalid config file ${path}:\n${diagnostics.map(formatDiagnostic).join('\n')}`,
    { errors: diagnostics },
  )
}
