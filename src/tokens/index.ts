export { KeyRing, generatePrivateKeyPem, type SigningAlgorithm, type SigningKey, type KeyFile } from './keys.ts';
export { AccessTokens, type AccessClaims, type VerifiedToken, type AccessTokenOptions } from './access.ts';
export { RevocationView, type RevocationCheck } from './revocation.ts';
export { SessionService, hashRefreshToken, type TokenResponse, type SessionOptions, type SessionHooks } from './sessions.ts';
export { AssertionMinter } from './assertion.ts';
