import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { examplePolicyPath } from '../server/index.js'

const CONFIG_TEMPLATE = `# Countersign gateway configuration. Paths are relative to this file.
# Every setting can also be given as a flag of \`countersign serve\` or a COUNTERSIGN_* variable.

# Where to listen. Keep 127.0.0.1 unless a proxy with TLS sits in front.
host: 127.0.0.1
port: 8080

# Behind a reverse proxy, name it so client addresses come from X-Forwarded-For.
# trust_proxy: [10.0.0.5]

# The URL people and clients use to reach this gateway (links, grant issuer).
# public_url: https://countersign.example.com

# Embedded SQLite store (one file) and signing keys live here.
data_dir: ./.countersign

# PostgreSQL instead of SQLite, for several replicas sharing one store.
# database: postgres://countersign@db.example.com:5432/countersign

policy: ./policy.yaml

grants:
  ttl: 5m               # how long an approved action's grant can be redeemed
  audience: countersign

audit:
  checkpoint_every: 1000     # sign a checkpoint after this many entries
  checkpoint_interval: 60s   # or after this long, when anything was appended

# auth:
#   oidc:
#     - issuer: https://login.example.com
#       audience: countersign
#       groups_claim: groups
#   github_actions:
#     audience: countersign
#     allowed_repositories: [acme/infra]
#     people: { octocat: mona@example.com }   # who started a run cannot approve it
`

/** `countersign init`: writes a commented countersign.yaml and a starting policy.yaml. */
export function registerInitCommand(program: Command): void {
  program
    .command('init')
    .description('write a commented countersign.yaml and policy.yaml')
    .option('--dir <dir>', 'where to write them', '.')
    .option('--force', 'overwrite existing files')
    .action((options: { dir: string; force?: boolean }) => {
      const dir = resolve(options.dir)
      const configFile = join(dir, 'countersign.yaml')
      const policyFile = join(dir, 'policy.yaml')
      const existing = [configFile, policyFile].filter((file) => existsSync(file))
      if (existing.length > 0 && !options.force) {
        console.error(`countersign init: ${existing.join(' and ')} already exist; pass --force to overwrite.`)
        process.exitCode = 1
        return
      }
      const example = examplePolicyPath()
      if (example === undefined) {
        console.error('countersign init: the example policy is missing from this installation.')
        process.exitCode = 1
        return
      }
      mkdirSync(dir, { recursive: true })
      writeFileSync(configFile, CONFIG_TEMPLATE)
      copyFileSync(example, policyFile)
      console.log(`wrote ${configFile}`)
      console.log(`wrote ${policyFile}`)
      console.log(`next: npx countersign policy check ${policyFile} && npx countersign serve --config ${configFile}`)
    })
}
