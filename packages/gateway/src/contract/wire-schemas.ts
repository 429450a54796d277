import { z } from 'zod'
import { WIRE_ERROR_CODES } from '../core/index.js'

/*
 * What the gateway answers, defined once. The gateway's views are typed by
 * these schemas, the OpenAPI document is generated from them, and the SDK's
 * wire types and error codes are generated from them at build time. Field
 * names are snake_case; times are RFC 3339 strings (UTC, milliseconds) in
 * fields named `*_at`.
 */

/** The names the components carry in OpenAPI and in the SDK's generated types. */
export const wireRegistry = z.registry<{ id: string }>()

const time = (description: string) => z.iso.datetime().meta({ description })
const nullableTime = (description: string) => z.iso.datetime().nullable().meta({ description })
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/)
const jsonObject = z.record(z.string(), z.unknown())

export const requestStatusSchema = z
  .enum(['pending', 'approved', 'denied', 'expired', 'cancelled'])
  .meta({ description: 'Where a request is in its lifecycle. Every status except `pending` is final.' }).register(wireRegistry, { id: 'RequestStatus' })
export const principalKindSchema = z.enum(['human', 'agent', 'service']).register(wireRegistry, { id: 'PrincipalKind' })
export const effectSchema = z
  .enum(['allow', 'deny', 'review'])
  .meta({ description: 'What the policy decided: run at once, refuse, or wait for people.' }).register(wireRegistry, { id: 'Effect' })
export const voteDecisionSchema = z.enum(['approve', 'deny']).register(wireRegistry, { id: 'VoteDecision' })
export const grantStatusSchema = z.enum(['issued', 'redeemed', 'expired']).register(wireRegistry, { id: 'GrantStatus' })
export const resultOutcomeSchema = z.enum(['succeeded', 'failed']).register(wireRegistry, { id: 'ResultOutcome' })

export const boundFileSchema = z
  .strictObject({
    path: z.string(),
    sha256: z.string().meta({ description: 'SHA-256 of the file, hex.' }),
  })
  .meta({ description: 'A file whose content the approval binds, e.g. a Terraform plan.' }).register(wireRegistry, { id: 'BoundFile' })

export const requesterViewSchema = z
  .strictObject({ id: z.string(), kind: principalKindSchema, display_name: z.string() })
  .register(wireRegistry, { id: 'RequesterView' })

export const onBehalfOfViewSchema = z
  .strictObject({
    id: z.string().meta({ description: 'The human the requester acts for (usually an email).' }),
    verified: z.boolean().meta({ description: 'True only when a token proved the link.' }),
  })
  .register(wireRegistry, { id: 'OnBehalfOfView' })

export const matchedRuleSchema = z.strictObject({ name: z.string(), effect: effectSchema }).register(wireRegistry, { id: 'MatchedRule' })

export const decisionViewSchema = z
  .strictObject({
    effect: effectSchema,
    matched_rules: z.array(matchedRuleSchema),
    risk: z.number().meta({ description: 'The additive risk score, 0 to 100.' }),
    explain: z.array(z.string()).meta({ description: 'Why the policy decided as it did, one line per step.' }),
    policy_sha256: sha256Hex.meta({ description: 'SHA-256 of the policy file that decided.' }),
  })
  .meta({ description: 'What the policy decided when the request was submitted.' }).register(wireRegistry, { id: 'DecisionView' })

export const reviewRequirementViewSchema = z
  .strictObject({
    rule: z.string().meta({ description: 'The rule that demanded this review.' }),
    approvers: z.array(z.string()).meta({ description: '`group:NAME` entries or principal ids.' }),
    quorum: z.number().int().min(1),
    approvals: z.array(z.string()).meta({ description: 'Ids of the people whose approval of the current version counts.' }),
    denials: z.array(z.string()).meta({ description: 'Ids of the people whose deny vote on the current version counts.' }),
    met: z.boolean(),
  })
  .register(wireRegistry, { id: 'ReviewRequirementView' })

export const reviewViewSchema = z
  .strictObject({
    requirements: z.array(reviewRequirementViewSchema).meta({ description: 'Every requirement must be met (AND).' }),
    deadline_at: nullableTime('When the request expires (or is denied) if still pending.'),
    escalate_at: nullableTime('When a still-pending request is escalated.'),
    escalated: z.boolean(),
    require_reason: z.boolean(),
    allow_edit: z.boolean(),
  })
  .register(wireRegistry, { id: 'ReviewView' })

export const voteViewSchema = z
  .strictObject({
    voter_id: z.string(),
    voter_name: z.string(),
    decision: voteDecisionSchema,
    reason: z.string().nullable(),
    version: z.number().int().min(1).meta({ description: 'The version of the params the vote was cast on; an edit starts a new version.' }),
    via: z.string().meta({ description: 'The channel the vote came through: api, cli, slack, teams, console.' }),
    voted_at: time('When the vote was cast.'),
  })
  .register(wireRegistry, { id: 'VoteView' })

export const grantViewSchema = z
  .strictObject({
    token: z.string().nullable().meta({ description: 'The single-use grant (an EdDSA JWT); only the requester sees it, and only while it is issued.' }),
    jti: z.string(),
    digest: sha256Hex.meta({ description: 'The digest of the approved version; redeeming with another digest fails.' }),
    status: grantStatusSchema,
    issued_at: time('When the grant was issued.'),
    expires_at: time('When the grant can no longer be redeemed.'),
    redeemed_at: nullableTime('When the grant was redeemed.'),
  })
  .meta({ description: 'The grant an approval yields: good for this one action, once.' }).register(wireRegistry, { id: 'GrantView' })

export const resultViewSchema = z
  .strictObject({ outcome: resultOutcomeSchema, exit_code: z.number().int().nullable(), detail: z.string().nullable() })
  .meta({ description: 'How the approved action went, as its requester reported it.' }).register(wireRegistry, { id: 'ResultView' })

export const requestViewSchema = z
  .strictObject({
    id: z.string(),
    status: requestStatusSchema,
    action: z.string().meta({ description: 'A dotted verb such as `db.export`.' }),
    resource: z.string(),
    environment: z.string(),
    version: z.number().int().min(1).meta({ description: 'Starts at 1; every reviewer edit of the params adds one.' }),
    digest: sha256Hex.meta({ description: 'SHA-256 of the canonical `{action, resource, environment, params}` of this version (and the bound files).' }),
    params: jsonObject.meta({ description: 'The real params of the current version for the requester, redacted params for everyone else.' }),
    bind: z.array(boundFileSchema),
    reason: z.string().nullable(),
    context: jsonObject,
    requester: requesterViewSchema,
    on_behalf_of: onBehalfOfViewSchema.nullable(),
    decision: decisionViewSchema,
    review: reviewViewSchema.nullable().meta({ description: 'Null when no review applies.' }),
    votes: z.array(voteViewSchema),
    grant: grantViewSchema.nullable(),
    result: resultViewSchema.nullable(),
    created_at: time('When the request was submitted.'),
    updated_at: time('When the request last changed.'),
    decided_at: nullableTime('When the request left `pending`.'),
  })
  .meta({ description: 'A request as the gateway reports it; every endpoint that returns a request returns this.' }).register(wireRegistry, { id: 'RequestView' })

export const requestPageSchema = z
  .strictObject({
    items: z.array(requestViewSchema).meta({ description: 'Newest first.' }),
    next_cursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page.' }),
  })
  .register(wireRegistry, { id: 'RequestPage' })

export const redemptionSchema = z
  .strictObject({
    request_id: z.string(),
    jti: z.string(),
    digest: sha256Hex,
    action: z.string(),
    resource: z.string(),
    environment: z.string(),
    params: jsonObject.meta({ description: 'The exact params to run.' }),
    redeemed_at: time('When the grant was redeemed.'),
  })
  .meta({ description: 'The answer of a redemption: the exact action the grant allows, once.' }).register(wireRegistry, { id: 'RedemptionView' })

export const apiKeyViewSchema = z
  .strictObject({
    id: z.string(),
    prefix: z.string().meta({ description: 'The first characters of the token, to recognise it by.' }),
    kind: principalKindSchema,
    principal_id: z.string(),
    display_name: z.string(),
    email: z.string().nullable(),
    groups: z.array(z.string()),
    on_behalf_of: z.string().nullable(),
    created_at: time('When the key was created.'),
    created_by: z.string().meta({ description: 'The principal that created the key.' }),
    revoked_at: nullableTime('When the key was revoked.'),
  })
  .meta({ description: 'An API key as the admin API shows it; never its token, except once at creation.' })
  .register(wireRegistry, { id: 'ApiKeyView' })

export const createdApiKeySchema = apiKeyViewSchema
  .extend({ token: z.string().meta({ description: 'The key itself (`cs_…`); shown only in this answer.' }) })
  .register(wireRegistry, { id: 'CreatedApiKey' })

export const apiKeyListSchema = z.strictObject({ items: z.array(apiKeyViewSchema) }).register(wireRegistry, { id: 'ApiKeyList' })

export const auditCheckpointSchema = z
  .strictObject({
    size: z.number().int().min(1),
    head_hash: sha256Hex,
    ts: z.number().int().meta({ description: 'Signed as milliseconds since the Unix epoch, like the `ts` of audit entries.' }),
    signature: z.string(),
    key_id: z.string(),
  })
  .meta({ description: 'A signed statement that the audit log had `size` entries ending in `head_hash` at `ts`.' })
  .register(wireRegistry, { id: 'AuditCheckpoint' })

export const auditPublicKeySchema = z
  .strictObject({
    key_id: z.string(),
    pem: z.string().meta({ description: 'The Ed25519 public key, SPKI PEM.' }),
    jwk: z.strictObject({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string(), kid: z.string(), alg: z.literal('EdDSA'), use: z.literal('sig') }),
  })
  .meta({ description: 'The key audit checkpoints are signed with; keep a copy outside the operator\'s reach.' })
  .register(wireRegistry, { id: 'AuditPublicKey' })

export const wireErrorCodeSchema = z.enum(WIRE_ERROR_CODES).register(wireRegistry, { id: 'WireErrorCode' })

export const errorBodySchema = z
  .strictObject({
    error: z.strictObject({
      code: wireErrorCodeSchema,
      message: z.string().meta({ description: 'What was wrong and what to do, for people; may change.' }),
      details: jsonObject.meta({ description: 'Structured facts about the refusal: snake_case keys, times as RFC 3339 strings.' }),
    }),
  })
  .meta({ description: 'Every refusal: a stable `code` to switch on, a message for people, details.' }).register(wireRegistry, { id: 'ErrorBody' })

export type RequestView = z.output<typeof requestViewSchema>
export type ReviewView = z.output<typeof reviewViewSchema>
export type VoteView = z.output<typeof voteViewSchema>
export type GrantView = z.output<typeof grantViewSchema>
export type RequestPage = z.output<typeof requestPageSchema>
export type RedemptionView = z.output<typeof redemptionSchema>
export type ErrorBody = z.output<typeof errorBodySchema>
export type ApiKeyView = z.output<typeof apiKeyViewSchema>
export type AuditCheckpointView = z.output<typeof auditCheckpointSchema>
