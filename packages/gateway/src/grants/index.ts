export { type GrantClaims, GrantSigner } from './grant-signer.js'
