/** Tags are free and exports wait for one of two owners, who may edit them; anything else is denied. */
export const OWNERS_REVIEW_EXPORTS = `version: 1
defaults: { effect: deny }
groups:
  owners: [dana@example.com, omar@example.com]
rules:
  - name: tags-are-free
    match: { action: "cloud.tags.*" }
    effect: allow
  - name: exports-need-an-owner
    match: { action: db.export }
    effect: review
    review: { approvers: ["group:owners"], allow_edit: true }
`
