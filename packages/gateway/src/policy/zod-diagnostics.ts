import { z } from 'zod'
import { pathLabel } from './yaml-source.js'
import type { PolicyDiagnostic, YamlPath, YamlSource } from './yaml-source.js'

type Issue = z.core.$ZodIssue

/**
 * Turns zod issues into located diagnostics with messages written for the
 * person editing the file: which key is unknown and which are allowed, which
 * key is missing, what type was expected and what was found.
 */
export function zodDiagnostics(issues: readonly Issue[], source: YamlSource, schema: z.ZodType): PolicyDiagnostic[] {
  return issues.flatMap((issue) => issueDiagnostics(issue, [], source, schema))
}

function issueDiagnostics(issue: Issue, prefix: YamlPath, source: YamlSource, schema: z.ZodType): PolicyDiagnostic[] {
  const path: YamlPath = [...prefix, ...issue.path.map(toSegment)]
  const label = pathLabel(path)
  const value = valueAt(source.value, path)

  const missing = issue.code === 'invalid_type' || issue.code === 'invalid_value' || issue.code === 'invalid_union'
  if (missing && value === undefined && path.length > 0) {
    const parent = path.slice(0, -1)
    const where = parent.length === 0 ? 'the top level' : pathLabel(parent)
    return [source.at(parent, `${where} is missing the required key "${String(path.at(-1))}"`)]
  }

  switch (issue.code) {
    case 'unrecognized_keys': {
      const allowed = allowedKeysAt(schema, path)
      const where = path.length === 0 ? 'at the top level' : `in ${label}`
      return issue.keys.map((key) =>
        source.at(
          [...path, key],
          `unknown key "${key}" ${where}; allowed keys: ${allowed.join(', ')}`,
          'key',
        ),
      )
    }
    case 'invalid_type':
      return [source.at(path, `${label} must be ${expectedText(issue.expected)}, not ${describeValue(value)}`)]
    case 'invalid_value': {
      const options = issue.values.map((option) => JSON.stringify(option))
      const wanted = options.length === 1 ? options[0] : `one of ${options.join(', ')}`
      return [source.at(path, `${label} must be ${wanted}, not ${describeValue(value)}`)]
    }
    case 'too_small': {
      const minimum = Number(issue.minimum)
      if (issue.origin === 'string') return [source.at(path, `${label} must not be empty`)]
      if (issue.origin === 'array') {
        return [source.at(path, `${label} must list at least ${minimum} ${minimum === 1 ? 'entry' : 'entries'}`)]
      }
      return [source.at(path, `${label} must be at least ${minimum}, not ${describeValue(value)}`)]
    }
    case 'too_big':
      return [source.at(path, `${label} must be at most ${Number(issue.maximum)}, not ${describeValue(value)}`)]
    case 'invalid_union': {
      // A branch whose type fit the value holds the real problem (e.g. one bad list entry).
      const fitting = issue.errors.find((branch) => !branch.some((inner) => isRootTypeMismatch(inner)))
      if (fitting !== undefined) return fitting.flatMap((inner) => issueDiagnostics(inner, path, source, schema))
      const expected = issue.errors.flatMap((branch) =>
        branch.filter(isRootTypeMismatch).map((inner) => expectedText((inner as { expected: string }).expected)),
      )
      return [source.at(path, `${label} must be ${[...new Set(expected)].join(' or ')}, not ${describeValue(value)}`)]
    }
    default:
      return [source.at(path, `${label}: ${issue.message}`)]
  }
}

function isRootTypeMismatch(issue: Issue): boolean {
  return issue.code === 'invalid_type' && issue.path.length === 0
}

function toSegment(segment: PropertyKey): string | number {
  return typeof segment === 'number' ? segment : String(segment)
}

function valueAt(root: unknown, path: YamlPath): unknown {
  let node: unknown = root
  for (const segment of path) {
    if (Array.isArray(node) && typeof segment === 'number') node = node[segment]
    else if (node !== null && typeof node === 'object' && Object.hasOwn(node, segment)) {
      node = (node as Record<string, unknown>)[segment]
    } else return undefined
  }
  return node
}

function expectedText(expected: string): string {
  switch (expected) {
    case 'number':
    case 'int':
      return 'a whole number'
    case 'string':
      return 'a string'
    case 'boolean':
      return 'true or false'
    case 'array':
      return 'a list'
    case 'object':
    case 'record':
      return 'a mapping'
    default:
      return `a ${expected}`
  }
}

/** Says what a value is, briefly, for "must be X, not Y" messages. */
export function describeValue(value: unknown): string {
  if (value === undefined || value === null) return 'empty'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`
  return String(value)
}

/** The keys a strict object at `path` accepts, found by walking the schema. */
function allowedKeysAt(schema: z.ZodType, path: YamlPath): string[] {
  let node: z.ZodType | undefined = unwrap(schema)
  for (const segment of path) {
    if (node instanceof z.ZodObject) node = unwrap((node.shape as Record<string, z.ZodType>)[String(segment)])
    else if (node instanceof z.ZodArray) node = unwrap(node.element as z.ZodType)
    else if (node instanceof z.ZodRecord) node = unwrap(node.valueType as z.ZodType)
    else return []
  }
  return node instanceof z.ZodObject ? Object.keys(node.shape) : []
}

function unwrap(schema: z.ZodType | undefined): z.ZodType | undefined {
  let node = schema
  while (node instanceof z.ZodOptional || node instanceof z.ZodNullable || node instanceof z.ZodDefault) {
    node = node.unwrap() as z.ZodType
  }
  // Of a union, only a mapping option can have keys worth listing.
  if (node instanceof z.ZodUnion) return (node.options as z.ZodType[]).find((option) => option instanceof z.ZodObject)
  return node
}
