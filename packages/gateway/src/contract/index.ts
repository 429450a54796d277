export {
  errorBodySchema,
  grantViewSchema,
  redemptionSchema,
  requestPageSchema,
  requestViewSchema,
  voteViewSchema,
  wireRegistry,
  type ErrorBody,
  type GrantView,
  type RedemptionView,
  type RequestPage,
  type RequestView,
  type ReviewView,
  type VoteView,
} from './wire-schemas.js'
export { SDK_CONTRACT_FILE, sdkContractSource } from './sdk-contract-source.js'
