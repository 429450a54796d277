export { loadSigningKey, signingKeyFromPem, signingKeyId } from './load-signing-key.js'
export type { SigningKey } from './load-signing-key.js'
