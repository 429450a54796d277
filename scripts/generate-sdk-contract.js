// Writes the SDK's wire contract (types and error codes) from the gateway's zod schemas.
// Run by `npm run build` after the gateway is compiled; the build then recompiles what changed.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { SDK_CONTRACT_FILE, sdkContractSource } from '../packages/gateway/dist/contract/sdk-contract-source.js'

const file = fileURLToPath(new URL(`../${SDK_CONTRACT_FILE}`, import.meta.url))
const source = sdkContractSource()
let current
try {
  current = readFileSync(file, 'utf8')
} catch {
  current = undefined
}
if (current !== source) {
  writeFileSync(file, source)
  console.log(`updated ${SDK_CONTRACT_FILE}`)
}
