import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml'
import type { Document, Node, Scalar } from 'yaml'

/** One problem in a policy (or policy test) file, pointing at the offending text. */
export interface PolicyDiagnostic {
  file: string
  /** 1-based line. */
  line: number
  /** 1-based column. */
  col: number
  message: string
}

/** Renders a diagnostic the way compilers do, so editors can jump to it. */
export function formatDiagnostic(diagnostic: PolicyDiagnostic): string {
  return `${diagnostic.file}:${diagnostic.line}:${diagnostic.col}: ${diagnostic.message}`
}

export type YamlPath = readonly (string | number)[]

/** A parsed YAML file that can point diagnostics at any path inside it. */
export interface YamlSource {
  readonly file: string
  readonly text: string
  /** The plain JavaScript value of the document; `null` for an empty file. */
  readonly value: unknown
  /** YAML syntax errors (duplicate keys, bad indentation, ...). */
  readonly syntaxErrors: PolicyDiagnostic[]
  /**
   * A diagnostic at the node for `path`, or at the closest ancestor that exists
   * (a missing key points at the map that lacks it). `part: 'key'` points at the
   * key of the last segment instead of its value.
   */
  at(path: YamlPath, message: string, part?: 'key' | 'value'): PolicyDiagnostic
  /** A diagnostic at character `index` of the string scalar at `path`. */
  atCharacter(path: YamlPath, index: number, message: string): PolicyDiagnostic
}

/** Renders a path as `rules[2].review.quorum` for messages. */
export function pathLabel(path: YamlPath): string {
  let label = ''
  for (const segment of path) {
    label += typeof segment === 'number' ? `[${segment}]` : label === '' ? segment : `.${segment}`
  }
  return label === '' ? 'the document' : label
}

/** Parses YAML text, keeping node ranges so later checks can report `line:col`. */
export function parseYamlSource(text: string, file: string): YamlSource {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const diagnosticAt = (offset: number, message: string): PolicyDiagnostic => {
    const { line, col } = lineCounter.linePos(Math.max(0, Math.min(offset, text.length)))
    return { file, line, col, message }
  }
  const syntaxErrors = doc.errors.map((error) =>
    diagnosticAt(error.pos[0], `YAML syntax error: ${firstLine(error.message)}`),
  )
  const value: unknown = syntaxErrors.length === 0 ? doc.toJS({ maxAliasCount: 100 }) : null

  return {
    file,
    text,
    value,
    syntaxErrors,
    at(path, message, part = 'value') {
      return diagnosticAt(offsetOf(doc, path, part), message)
    },
    atCharacter(path, index, message) {
      const node = nodeAt(doc, path)
      if (node === undefined || !isScalar(node) || node.range == null) {
        return diagnosticAt(offsetOf(doc, path, 'value'), message)
      }
      return diagnosticAt(scalarOffset(text, node, index), message)
    },
  }
}

function firstLine(message: string): string {
  const line = message.split('\n')[0] ?? message
  return line.replace(/ at line \d+, column \d+:?$/, '')
}

function nodeAt(doc: Document, path: YamlPath): Node | undefined {
  let node: unknown = doc.contents
  for (const segment of path) {
    const child = childOf(node, segment)
    if (child === undefined) return undefined
    node = child.value
  }
  return isNode(node) ? node : undefined
}

function offsetOf(doc: Document, path: YamlPath, part: 'key' | 'value'): number {
  let node: unknown = doc.contents
  let offset = rangeStart(node) ?? 0
  for (const [i, segment] of path.entries()) {
    const child = childOf(node, segment)
    if (child === undefined) return offset
    const last = i === path.length - 1
    const keyOffset = rangeStart(child.key)
    const valueOffset = rangeStart(child.value)
    if (last && part === 'key' && keyOffset !== undefined) return keyOffset
    // `key:` with nothing after it has no value range worth pointing at.
    offset = valueOffset ?? keyOffset ?? offset
    node = child.value
  }
  return offset
}

function childOf(node: unknown, segment: string | number): { key: unknown; value: unknown } | undefined {
  if (isMap(node)) {
    for (const item of node.items) {
      if (!isPair(item)) continue
      const key = isScalar(item.key) ? item.key.value : item.key
      if (String(key) === String(segment)) return { key: item.key, value: item.value }
    }
    return undefined
  }
  if (isSeq(node) && typeof segment === 'number') {
    const item = node.items[segment]
    return item === undefined ? undefined : { key: undefined, value: item }
  }
  return undefined
}

function isNode(value: unknown): value is Node {
  return isScalar(value) || isMap(value) || isSeq(value)
}

function rangeStart(node: unknown): number | undefined {
  if (!isNode(node)) return undefined
  return node.range?.[0]
}

/**
 * Maps an index inside a scalar's value back to the file. Quoting and escapes
 * make the value and the source text differ, so each scalar style is walked on
 * its own terms; when the mapping is not exact the start of the scalar is used.
 */
function scalarOffset(text: string, node: Scalar, index: number): number {
  const [start, end] = node.range ?? [0, 0]
  const raw = text.slice(start, end)
  const value = String(node.value)
  const clamped = Math.max(0, Math.min(index, value.length))
  if (node.type === 'PLAIN' && raw === value) return start + clamped
  if (node.type === 'QUOTE_SINGLE' && !raw.includes('\n')) {
    let at = 1
    for (let i = 0; i < clamped; i++) at += raw[at] === "'" && raw[at + 1] === "'" ? 2 : 1
    return start + at
  }
  if (node.type === 'QUOTE_DOUBLE' && !raw.includes('\n')) {
    let at = 1
    for (let i = 0; i < clamped; i++) at += raw[at] === '\\' ? escapeLength(raw[at + 1]) : 1
    return start + at
  }
  return start + lineWiseOffset(raw, value, clamped)
}

function escapeLength(next: string | undefined): number {
  if (next === 'x') return 4
  if (next === 'u') return 6
  if (next === 'U') return 10
  return 2
}

/** Block scalars keep their lines; find each value line in the source in order. */
function lineWiseOffset(raw: string, value: string, index: number): number {
  const lines = value.split('\n')
  let cursor = 0
  let consumed = 0
  for (const line of lines) {
    const found = line === '' ? cursor : raw.indexOf(line, cursor)
    if (found < 0) return 0
    if (index <= consumed + line.length) return found + (index - consumed)
    cursor = found + line.length
    consumed += line.length + 1
  }
  return 0
}
