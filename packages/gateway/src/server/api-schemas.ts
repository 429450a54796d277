import { z } from 'zod'

/** How deep params and context may nest; real commands and queries need a handful of levels. */
export const MAX_JSON_DEPTH = 32

/** The nesting depth of a JSON value, counted without recursion so no input can exhaust the stack. */
function depthOf(value: unknown): number {
  let deepest = 0
  const stack: Array<[unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number]
    if (current === null || typeof current !== 'object') continue
    deepest = Math.max(deepest, depth)
    if (deepest > MAX_JSON_DEPTH) return deepest
    for (const child of Object.values(current)) stack.push([child, depth + 1])
  }
  return deepest
}

const jsonObject = z
  .record(z.string(), z.unknown())
  .refine((value) => depthOf(value) <= MAX_JSON_DEPTH, `must not nest deeper than ${MAX_JSON_DEPTH} levels`)
// PostgreSQL text cannot hold NUL, and canonical JSON (digests, audit) cannot hold a lone surrogate:
// no name, reason or id needs either, so both are refused at the door.
const wellFormed = (schema: z.ZodString) =>
  schema.refine((value) => value.isWellFormed() && !value.includes('\u0000'), 'must be well-formed Unicode text without NUL characters')
const text = (max: number) => wellFormed(z.string().min(1).max(max))
const optionalText = (max: number) => wellFormed(z.string().max(max)).optional()

/** `POST /v1/requests`. */
export const createRequestBody = z.strictObject({
  action: wellFormed(z.string().min(1).max(200).regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_*-]+)*$/, 'a dotted verb such as db.export')),
  resource: text(2000),
  environment: text(100),
  params: jsonObject.default({}),
  reason: optionalText(4000),
  context: jsonObject.optional(),
  bind: z
    .array(z.strictObject({ path: text(4096), sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'a SHA-256 hex digest') }))
    .max(100)
    .optional(),
  idempotency_key: text(200).optional(),
})

/** `POST /v1/requests/:id/votes`. */
export const voteBody = z.strictObject({
  decision: z.enum(['approve', 'deny']),
  /** The version the voter saw; a vote for any other version is refused with version_mismatch. */
  digest: z.string().regex(/^[0-9a-f]{64}$/, 'the lowercase SHA-256 hex digest of the version you are voting on (the request\'s `digest`)'),
  reason: optionalText(4000),
  params: jsonObject.optional(),
})

/** `POST /v1/requests/:id/cancel`. */
export const cancelBody = z.strictObject({ reason: optionalText(4000) })

/** `POST /v1/requests/:id/result`. */
export const resultBody = z.strictObject({
  outcome: z.enum(['succeeded', 'failed']),
  exit_code: z.number().int().min(-2147483648).max(2147483647).optional(),
  detail: optionalText(8000),
})

/** `POST /v1/grants/redeem`. */
export const redeemBody = z.strictObject({
  token: text(8000),
  digest: z.string().regex(/^[0-9a-f]{64}$/, 'the lowercase SHA-256 hex digest of the action'),
})

/** `POST /v1/keys`. */
export const createKeyBody = z.strictObject({
  kind: z.enum(['human', 'agent', 'service']),
  id: text(256),
  name: text(256).optional(),
  email: z.email().max(256).optional(),
  groups: z.array(text(256)).max(100).default([]),
  on_behalf_of: text(256).optional(),
})

export const requestIdParams = z.strictObject({ id: text(100) })

/** Routes that take no query string refuse one, rather than ignore what a caller may think it asked for. */
export const noQuery = z.strictObject({})

export const waitQuery = z.strictObject({
  timeout: z.coerce.number().int().min(0).max(60).default(30),
})

export const listQuery = z.strictObject({
  status: z.enum(['pending', 'approved', 'denied', 'expired', 'cancelled']).optional(),
  action: text(200).optional(),
  mine: z.enum(['true', 'false']).optional(),
  reviewable: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: text(500).optional(),
})
