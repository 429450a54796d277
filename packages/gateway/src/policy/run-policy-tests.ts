import { isDeepStrictEqual } from 'node:util'
import { z } from 'zod'
import type { CompiledPolicy } from './compile-policy.js'
import { evaluate } from './evaluate.js'
import type { Evaluation } from './evaluate.js'
import {
  instantInputSchema,
  parseYamlInput,
  principalInputSchema,
  requestInputSchema,
  toActionRequest,
  toInstant,
  toPrincipal,
} from './policy-inputs.js'

const testCaseSchema = z.strictObject({
  name: z.string().min(1),
  request: requestInputSchema,
  principal: principalInputSchema,
  now: instantInputSchema.optional(),
  expect: z.strictObject({
    effect: z.enum(['allow', 'deny', 'review']),
    quorum: z.int().min(1).optional(),
    approvers: z.array(z.string().min(1)).optional(),
    risk_at_least: z.int().min(0).max(100).optional(),
    matched: z.array(z.string().min(1)).optional(),
    redacted: z.record(z.string().min(1), z.unknown()).optional(),
  }),
})

const testFileSchema = z.array(testCaseSchema).min(1)

type TestCase = z.infer<typeof testCaseSchema>

export interface PolicyTestResult {
  name: string
  passed: boolean
  /** One sentence per unmet expectation. */
  failures: string[]
  evaluation: Evaluation
}

/**
 * Runs a YAML list of policy test cases against a policy. Each case gives a
 * request, a principal, an optional `now` (default: `defaultNow`) and what to
 * expect: `effect`, and optionally `quorum` (the largest quorum among the
 * review requirements), `approvers` (every approver entry, as a set),
 * `risk_at_least`, `matched` (the matching rule names, as a set) and
 * `redacted` (`path: value` pairs checked in the redacted params/context).
 *
 * @throws CountersignError `invalid_request` when the test file is invalid, with `details.errors`
 * @example
 * const results = runPolicyTests(policy, await readFile('policy.test.yaml', 'utf8'), 'policy.test.yaml', Date.now())
 * const failed = results.filter((result) => !result.passed)
 */
export function runPolicyTests(
  policy: CompiledPolicy,
  text: string,
  file: string,
  defaultNow: number,
): PolicyTestResult[] {
  return parseYamlInput(text, file, testFileSchema).map((testCase) => runCase(policy, testCase, defaultNow))
}

function runCase(policy: CompiledPolicy, testCase: TestCase, defaultNow: number): PolicyTestResult {
  const now = testCase.now === undefined ? defaultNow : toInstant(testCase.now)
  const evaluation = evaluate(policy, toActionRequest(testCase.request), toPrincipal(testCase.principal), now)
  const expect = testCase.expect
  const failures: string[] = []

  if (evaluation.effect !== expect.effect) {
    const why = evaluation.explain.find((line) => line.startsWith('decision:')) ?? ''
    failures.push(`expected effect ${expect.effect}, got ${evaluation.effect} (${why})`)
  }
  const requirements = evaluation.review?.requirements ?? []
  if (expect.quorum !== undefined) {
    const quorum = requirements.length === 0 ? undefined : Math.max(...requirements.map((r) => r.quorum))
    if (quorum !== expect.quorum) {
      failures.push(
        quorum === undefined
          ? `expected quorum ${expect.quorum}, but no review applies`
          : `expected quorum ${expect.quorum}, got ${quorum}`,
      )
    }
  }
  if (expect.approvers !== undefined) {
    const approvers = [...new Set(requirements.flatMap((requirement) => requirement.approvers))]
    if (!sameSet(approvers, expect.approvers)) {
      failures.push(`expected approvers [${expect.approvers.join(', ')}], got [${approvers.join(', ')}]`)
    }
  }
  if (expect.risk_at_least !== undefined && evaluation.risk < expect.risk_at_least) {
    failures.push(`expected risk of at least ${expect.risk_at_least}, got ${evaluation.risk}`)
  }
  if (expect.matched !== undefined) {
    const matched = evaluation.matchedRules.map((rule) => rule.name)
    if (!sameSet(matched, expect.matched)) {
      failures.push(`expected matched rules [${expect.matched.join(', ')}], got [${matched.join(', ')}]`)
    }
  }
  for (const [path, expected] of Object.entries(expect.redacted ?? {})) {
    const actual = valueAtPath(evaluation.redacted, path)
    if (!isDeepStrictEqual(actual, expected)) {
      failures.push(`expected redacted ${path} to be ${JSON.stringify(expected)}, got ${JSON.stringify(actual) ?? 'nothing'}`)
    }
  }
  return { name: testCase.name, passed: failures.length === 0, failures, evaluation }
}

function sameSet(actual: readonly string[], expected: readonly string[]): boolean {
  const a = new Set(actual)
  const b = new Set(expected)
  return a.size === b.size && [...a].every((item) => b.has(item))
}

function valueAtPath(root: unknown, path: string): unknown {
  let node: unknown = root
  for (const segment of path.split('.')) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, segment)) return undefined
    node = (node as Record<string, unknown>)[segment]
  }
  return node
}
