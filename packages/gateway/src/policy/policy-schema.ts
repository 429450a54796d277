import { z } from 'zod'

/*
 * The shape of a policy file. Objects are strict so a misspelt key
 * (`aprovers`) is an error instead of a silently ignored line. Values that
 * need more than a type check (durations, CEL, group names, quorum sizes) are
 * checked afterwards, where the message can say more.
 */
const nonEmpty = z.string().min(1)
const globs = z.union([nonEmpty, z.array(nonEmpty).min(1)])
const approvers = z.array(nonEmpty).min(1)
const onTimeout = z.enum(['deny', 'expire'])

const reviewSchema = z.strictObject({
  approvers,
  quorum: z.int().min(1).optional(),
  deny_quorum: z.int().min(1).optional(),
  timeout: z.string().optional(),
  on_timeout: onTimeout.optional(),
  require_reason: z.boolean().optional(),
  allow_edit: z.boolean().optional(),
  fresh_auth: z.string().optional(),
  escalate: z.strictObject({ after: z.string(), to: approvers }).optional(),
  notify: z.array(nonEmpty).optional(),
})

const ruleSchema = z.strictObject({
  name: nonEmpty,
  description: z.string().optional(),
  match: z
    .strictObject({
      action: globs.optional(),
      resource: globs.optional(),
      environment: globs.optional(),
    })
    .optional(),
  when: nonEmpty.optional(),
  effect: z.enum(['allow', 'deny', 'review']),
  review: reviewSchema.optional(),
  redact: z.array(nonEmpty).optional(),
})

const riskSchema = z.strictObject({
  when: nonEmpty,
  add: z.int().min(-100).max(100),
})

/** The strict schema of a policy file, version 1. */
export const policySchema = z.strictObject({
  version: z.literal(1),
  defaults: z
    .strictObject({
      effect: z.enum(['allow', 'deny']).optional(),
      review: z.strictObject({ timeout: z.string().optional(), on_timeout: onTimeout.optional() }).optional(),
    })
    .optional(),
  groups: z.record(nonEmpty, z.array(nonEmpty)).optional(),
  idp_groups: z.array(nonEmpty).optional(),
  risk: z.array(riskSchema).optional(),
  rules: z.array(ruleSchema).optional(),
})

export type PolicyDocument = z.infer<typeof policySchema>
export type RuleDocument = z.infer<typeof ruleSchema>
export type ReviewDocument = z.infer<typeof reviewSchema>
