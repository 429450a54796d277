import { z } from 'zod'
import { wireRegistry } from './wire-schemas.js'

/** Where the SDK keeps the generated contract, relative to the repository root. */
export const SDK_CONTRACT_FILE = 'packages/sdk/src/wire-contract.generated.ts'

/** The subset of JSON Schema that `z.toJSONSchema` writes for the wire schemas. */
interface JsonSchema {
  $ref?: string
  type?: string | string[]
  enum?: unknown[]
  anyOf?: JsonSchema[]
  items?: JsonSchema
  properties?: Record<string, JsonSchema>
  required?: string[]
  additionalProperties?: JsonSchema | boolean
  description?: string
}

const HEADER = `/*
 * Generated from the gateway's wire schemas (packages/gateway/src/contract) by
 * \`npm run build\`; do not edit. A test fails when this file is stale.
 */
`

/** `RequestStatus` becomes `REQUEST_STATUSES`: the runtime list of an enum's values. */
function listName(id: string): string {
  const screaming = id.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()
  return screaming.endsWith('S') ? `${screaming}ES` : `${screaming}S`
}

function doc(description: string | undefined, indent: string): string {
  return description === undefined ? '' : `${indent}/** ${description} */\n`
}

function typeOf(schema: JsonSchema, indent: string): string {
  if (schema.$ref !== undefined) return schema.$ref
  if (schema.enum !== undefined) return schema.enum.map((value) => JSON.stringify(value)).join(' | ')
  if (schema.anyOf !== undefined) return schema.anyOf.map((part) => typeOf(part, indent)).join(' | ')
  const types = Array.isArray(schema.type) ? schema.type : [schema.type]
  return types.map((type) => singleType(type, schema, indent)).join(' | ')
}

function singleType(type: string | undefined, schema: JsonSchema, indent: string): string {
  switch (type) {
    case 'string':
    case 'boolean':
    case 'null':
      return type
    case 'number':
    case 'integer':
      return 'number'
    case 'array': {
      const item = typeOf(schema.items ?? {}, indent)
      return /[ |]/.test(item) ? `Array<${item}>` : `${item}[]`
    }
    case 'object':
      return schema.properties === undefined ? 'Record<string, unknown>' : objectType(schema, indent)
    default:
      return 'unknown'
  }
}

function objectType(schema: JsonSchema, indent: string): string {
  const inner = `${indent}  `
  const required = new Set(schema.required ?? [])
  const fields = Object.entries(schema.properties ?? {}).map(
    ([name, field]) => `${doc(field.description, inner)}${inner}${name}${required.has(name) ? '' : '?'}: ${typeOf(field, inner)}\n`,
  )
  return `{\n${fields.join('')}${indent}}`
}

/**
 * The TypeScript the SDK compiles against: every wire component as a type
 * (snake_case, exactly as sent), and every enum, the wire error codes among
 * them, as a runtime list. The SDK stays free of dependencies: this is text,
 * written into its sources at build time.
 */
export function sdkContractSource(): string {
  const { schemas } = z.toJSONSchema(wireRegistry, { io: 'output', uri: (id) => id })
  const parts = [HEADER]
  for (const [id, schema] of Object.entries(schemas) as Array<[string, JsonSchema]>) {
    if (schema.enum !== undefined) {
      const values = schema.enum.map((value) => `  ${JSON.stringify(value)},\n`).join('')
      parts.push(`${doc(schema.description, '')}export const ${listName(id)} = [\n${values}] as const\n`)
      parts.push(`${doc(schema.description, '')}export type ${id} = (typeof ${listName(id)})[number]\n`)
    } else if (schema.properties !== undefined) {
      parts.push(`${doc(schema.description, '')}export interface ${id} ${objectType(schema, '')}\n`)
    } else {
      parts.push(`${doc(schema.description, '')}export type ${id} = ${typeOf(schema, '')}\n`)
    }
  }
  return parts.join('\n')
}
