export type { CredentialProvider, Identity } from './types.ts';
export { AdminProvider, ADMIN_PROVIDER, hashPassword } from './admin.ts';
export { CredentialChain } from './login.ts';
export { buildAadProvider, buildLdapProvider, buildProviders } from './providers.ts';
export { AadBearerTokens, AadProvider, AAD_PROVIDER, type AadBearer, type AadOptions } from './aad.ts';
export { LdapProvider, LDAP_PROVIDER, type LdapOptions } from './ldap.ts';
export { LoginThrottle, type ThrottleSettings } from './throttle.ts';
