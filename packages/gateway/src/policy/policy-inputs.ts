import { z } from 'zod'
import { CountersignError } from '../core/index.js'
import type { ActionRequestInput, Principal } from '../core/index.js'
import { formatDiagnostic, parseYamlSource } from './yaml-source.js'
import type { PolicyDiagnostic } from './yaml-source.js'
import { zodDiagnostics } from './zod-diagnostics.js'

/*
 * Requests and principals as policy tests and `policy explain` write them:
 * snake_case, like the policy file, and strict so a typo is reported.
 */
const nonEmpty = z.string().min(1)

export const requestInputSchema = z.strictObject({
  action: nonEmpty,
  resource: z.string(),
  environment: z.string(),
  params: z.record(z.string(), z.unknown()).default({}),
  reason: z.string().optional(),
  context: z.record(z.string(), z.unknown()).optional(),
})

export const principalInputSchema = z.strictObject({
  id: nonEmpty,
  kind: z.enum(['human', 'agent', 'service']),
  display_name: z.string().optional(),
  email: z.string().optional(),
  groups: z.array(nonEmpty).default([]),
  on_behalf_of: z.union([nonEmpty, z.strictObject({ id: nonEmpty, verified: z.boolean().default(false) })]).optional(),
  claims: z.record(z.string(), z.unknown()).optional(),
})

/** A point in time: milliseconds since the epoch or an ISO 8601 timestamp with offset. */
export const instantInputSchema = z.union([z.int().min(0), z.iso.datetime({ offset: true })])

export type RequestInput = z.infer<typeof requestInputSchema>
export type PrincipalInput = z.infer<typeof principalInputSchema>

export function toActionRequest(input: RequestInput): ActionRequestInput {
  return {
    action: input.action,
    resource: input.resource,
    environment: input.environment,
    params: input.params,
    ...(input.reason === undefined ? {} : { reason: input.reason }),
    ...(input.context === undefined ? {} : { context: input.context }),
  }
}

export function toPrincipal(input: PrincipalInput): Principal {
  const onBehalfOf =
    input.on_behalf_of === undefined
      ? undefined
      : typeof input.on_behalf_of === 'string'
        ? { id: input.on_behalf_of, verified: false }
        : input.on_behalf_of
  return {
    id: input.id,
    kind: input.kind,
    displayName: input.display_name ?? input.id,
    groups: input.groups,
    ...(input.email === undefined ? {} : { email: input.email }),
    ...(onBehalfOf === undefined ? {} : { onBehalfOf }),
    ...(input.claims === undefined ? {} : { claims: input.claims }),
  }
}

export function toInstant(input: z.infer<typeof instantInputSchema>): number {
  return typeof input === 'number' ? input : Date.parse(input)
}

/**
 * Parses YAML (or JSON, which is YAML) against a schema, reporting every
 * problem with its `line:col`.
 *
 * @throws CountersignError `invalid_request` with `details.errors`: PolicyDiagnostic[]
 */
export function parseYamlInput<T extends z.ZodType>(text: string, file: string, schema: T): z.infer<T> {
  const source = parseYamlSource(text, file)
  let diagnostics: PolicyDiagnostic[] = source.syntaxErrors
  if (diagnostics.length === 0) {
    const parsed = schema.safeParse(source.value)
    if (parsed.success) return parsed.data
    diagnostics = zodDiagnostics(parsed.error.issues, source, schema)
  }
  throw new CountersignError(
    'invalid_request',
    `${file} is invalid; fix these and try again:\n${diagnostics.map(formatDiagnostic).join('\n')}`,
    { file, errors: diagnostics },
  )
}

/**
 * Parses one action request written as JSON or YAML.
 *
 * @example
 * parseActionRequest('{"action":"db.export","resource":"customers","environment":"prod"}', '--request')
 */
export function parseActionRequest(text: string, file: string): ActionRequestInput {
  return toActionRequest(parseYamlInput(text, file, requestInputSchema))
}

/**
 * Parses one principal written as JSON or YAML (`{id, kind, groups, email?, on_behalf_of?}`).
 */
export function parsePrincipal(text: string, file: string): Principal {
  return toPrincipal(parseYamlInput(text, file, principalInputSchema))
}
