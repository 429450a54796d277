import type { Command } from 'commander'
import { isCountersignError, isLocalError } from '../core/index.js'
import { type ConfigOverrides, loadGatewayConfig, startGateway } from '../server/index.js'

/** `countersign serve`: starts a gateway; with no configuration, an embedded SQLite one in ./.countersign. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('start the gateway (zero configuration: SQLite in ./.countersign on 127.0.0.1:8080)')
    .option('--config <file>', 'countersign.yaml (env COUNTERSIGN_CONFIG)')
    .option('--data-dir <dir>', 'data directory (env COUNTERSIGN_DATA_DIR, default ./.countersign)')
    .option('--database <url>', 'postgres:// URL instead of the embedded SQLite store (env COUNTERSIGN_DATABASE)')
    .option('--database-schema <name>', 'PostgreSQL schema for the tables (env COUNTERSIGN_DATABASE_SCHEMA)')
    .option('--host <host>', 'address to listen on (env COUNTERSIGN_HOST, default 127.0.0.1)')
    .option('--port <port>', 'port to listen on (env COUNTERSIGN_PORT, default 8080)')
    .option('--policy <file>', 'policy file (env COUNTERSIGN_POLICY, default <data-dir>/policy.yaml)')
    .action(async (options: ConfigOverrides) => {
      let gateway
      try {
        const config = loadGatewayConfig(options)
        gateway = await startGateway(config, {
          onPolicy(event) {
            if (event.ok) console.error(`policy reloaded (sha256 ${event.sha256.slice(0, 12)})`)
            else console.error(`policy reload failed, keeping the last good policy:\n${event.error.message}`)
          },
        })
      } catch (error) {
        if (isCountersignError(error) || isLocalError(error)) {
          const diagnostics = (error.details.errors as Array<{ file: string; line: number; col: number; message: string }> | undefined) ?? []
          console.error(diagnostics.length > 0 && error.code === 'policy_invalid'
            ? `countersign: invalid policy, not starting:\n${diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`).join('\n')}`
            : `countersign: not starting: ${error.message}`)
          process.exitCode = 1
          return
        }
        throw error
      }
      const running = gateway
      // Handlers go in before anything announces the gateway: a supervisor may signal as soon as it reads "listening".
      const stopped = new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          console.error(`${signal}: finishing in-flight requests and stopping`)
          void running.stop().then(resolve, (error: unknown) => {
            console.error(error)
            process.exitCode = 1
            resolve()
          })
        }
        process.once('SIGTERM', () => stop('SIGTERM'))
        process.once('SIGINT', () => stop('SIGINT'))
      })
      if (gateway.adminToken) {
        console.error('')
        console.error('Admin API key (shown once; store it now):')
        console.log(gateway.adminToken)
        console.error('')
        console.error(`  export COUNTERSIGN_URL=${gateway.url} COUNTERSIGN_TOKEN=<the key above>`)
        console.error('  npx countersign keys create --kind human --id dana@example.com --groups data-owners')
      }
      console.error(`countersign listening on ${gateway.url} (store ${gateway.store.describe}, policy ${gateway.policyFile})`)
      await stopped
    })
}
