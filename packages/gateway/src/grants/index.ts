export { GRANT_SIGNING_KEY_FILE, type GrantClaims, GrantSigner } from './grant-signer.js'
