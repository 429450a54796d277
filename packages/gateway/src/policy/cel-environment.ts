import { Environment } from '@marcbachmann/cel-js'
import type { ActionRequestInput, Principal } from '../core/index.js'

/*
 * Risk conditions see everything rules see except `risk`, which they produce;
 * declaring it only for rules turns `risk` inside a risk condition into a
 * compile error instead of a silent zero.
 */
const riskEnvironment = new Environment({ unlistedVariablesAreDyn: false })
  .registerVariable('request', 'map')
  .registerVariable('requester', 'map')
  .registerVariable('on_behalf_of', 'dyn')
  .registerVariable('now', 'google.protobuf.Timestamp')
const ruleEnvironment = riskEnvironment.clone().registerVariable('risk', 'int')

/** A compiled `when`: call it with a context from {@link celContext}. */
export type Condition = (context: CelContext) => unknown

export type CelContext = Record<string, unknown>

export type ConditionScope = 'risk' | 'rule'

export type CompileConditionResult =
  | { ok: true; condition: Condition }
  | { ok: false; message: string; index: number }

/**
 * Parses and type-checks one CEL condition. A condition must produce a bool
 * (or `dyn`, whose value is checked when it runs).
 */
export function compileCondition(source: string, scope: ConditionScope): CompileConditionResult {
  const environment = scope === 'rule' ? ruleEnvironment : riskEnvironment
  let program: ReturnType<Environment['parse']>
  try {
    program = environment.parse(source)
  } catch (error) {
    return { ok: false, ...celProblem(error) }
  }
  const checked = program.check()
  if (!checked.valid) return { ok: false, ...celProblem(checked.error) }
  const type = String(checked.type)
  if (type !== 'bool' && type !== 'dyn') {
    return { ok: false, message: `condition must evaluate to a bool, but this one gives ${type}`, index: 0 }
  }
  return { ok: true, condition: (context) => program(context) }
}

function celProblem(error: unknown): { message: string; index: number } {
  if (error instanceof Error) {
    const detail = error as Error & { summary?: unknown; range?: { start?: unknown } }
    const message = typeof detail.summary === 'string' ? detail.summary : error.message
    const index = typeof detail.range?.start === 'number' ? detail.range.start : 0
    return { message, index }
  }
  return { message: String(error), index: 0 }
}

/** The CEL error text without the library's source excerpt. */
export function celErrorMessage(error: unknown): string {
  return celProblem(error).message
}

/**
 * Builds the variables every condition sees; rules also get `risk`, added by
 * the caller once it is scored. Integral numbers become CEL ints (BigInt) so
 * `request.params.rows > 1000` compares ints with ints.
 */
export function celContext(request: ActionRequestInput, principal: Principal, now: number): CelContext {
  return {
    request: toCelValue({
      action: request.action,
      resource: request.resource,
      environment: request.environment,
      params: request.params,
      reason: request.reason ?? '',
      context: request.context ?? {},
    }),
    requester: toCelValue({
      id: principal.id,
      kind: principal.kind,
      display_name: principal.displayName,
      email: principal.email ?? '',
      groups: principal.groups,
      claims: principal.claims ?? {},
    }),
    on_behalf_of: principal.onBehalfOf
      ? toCelValue({ id: principal.onBehalfOf.id, verified: principal.onBehalfOf.verified })
      : null,
    now: new Date(now),
  }
}

/** Converts parsed JSON into values CEL understands; `undefined` entries are dropped. */
export function toCelValue(value: unknown): unknown {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : value
  if (Array.isArray(value)) return value.map(toCelValue)
  if (value instanceof Date) return value
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, entry]) => entry !== undefined)
        .map(([key, entry]) => [key, toCelValue(entry)]),
    )
  }
  return value
}
