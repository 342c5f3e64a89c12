export type { CredentialProvider, Identity } from './types.ts';
export { AdminProvider, ADMIN_PROVIDER, hashPassword } from './admin.ts';
export { CredentialChain } from './login.ts';
export { buildProviders } from './providers.ts';
export { LoginThrottle, type ThrottleSettings } from './throttle.ts';
