// Builds the configured credential providers, in the configured order.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.ts';
import { AadProvider } from './aad.ts';
import { AdminProvider } from './admin.ts';
import { LdapProvider } from './ldap.ts';
import type { CredentialProvider } from './types.ts';

type LdapConfig = NonNullable<Config['auth']['ldap']>;
type AadConfig = NonNullable<Config['auth']['aad']>;

/** The service account password from the named environment variable or file; never logged. */
function ldapServicePassword(l: LdapConfig, env: NodeJS.ProcessEnv): string | undefined {
  if (l.queryUserPasswordEnv) {
    const v = env[l.queryUserPasswordEnv];
    if (!v) throw new Error(`auth.ldap.queryUserPasswordEnv: the environment variable ${l.queryUserPasswordEnv} is not set`);
    return v;
  }
  if (l.queryUserPasswordFile) {
    const v = readFileSync(l.queryUserPasswordFile, 'utf8').replace(/\r?\n$/, '');
    if (!v) throw new Error(`auth.ldap.queryUserPasswordFile: ${l.queryUserPasswordFile} is empty`);
    return v;
  }
  return undefined;
}

export function buildLdapProvider(l: LdapConfig, env: NodeJS.ProcessEnv = process.env): LdapProvider {
  return new LdapProvider({
    host: l.host,
    port: l.port,
    useLDAPS: l.useLDAPS,
    startTLS: l.startTLS,
    ca: l.caFile ? readFileSync(l.caFile) : undefined,
    tlsServerName: l.tlsServerName,
    queryUserDn: l.queryUserDn,
    queryUserPassword: ldapServicePassword(l, env),
    searchBase: l.searchBase,
    searchFilter: l.searchFilter,
    bindFilter: l.bindFilter,
    uniqueUserIdentifierAttributeName: l.uniqueUserIdentifierAttributeName,
    displayNameAttributeName: l.displayNameAttributeName,
    emailAttributeName: l.emailAttributeName,
    groups: l.groups,
    connectTimeoutMs: l.connectTimeoutMs,
    timeoutMs: l.timeoutMs,
  });
}

/** The web app's client secret from the named environment variable or file; never logged. */
function aadClientSecret(a: AadConfig, env: NodeJS.ProcessEnv): string | undefined {
  if (a.clientSecretEnv) {
    const v = env[a.clientSecretEnv];
    if (!v) throw new Error(`auth.aad.clientSecretEnv: the environment variable ${a.clientSecretEnv} is not set`);
    return v;
  }
  if (a.clientSecretFile) {
    const v = readFileSync(a.clientSecretFile, 'utf8').replace(/\r?\n$/, '');
    if (!v) throw new Error(`auth.aad.clientSecretFile: ${a.clientSecretFile} is empty`);
    return v;
  }
  return undefined;
}

export function buildAadProvider(a: AadConfig, env: NodeJS.ProcessEnv = process.env): AadProvider {
  return new AadProvider({
    authority: a.authority,
    tenantId: a.tenantId,
    audiences: a.audiences,
    clientId: a.clientId,
    clientSecret: aadClientSecret(a, env),
    graphBaseUrl: a.graphBaseUrl,
    acceptV1Issuer: a.acceptV1Issuer,
    acceptV2Issuer: a.acceptV2Issuer,
    v1IssuerBaseUrl: a.v1IssuerBaseUrl,
    passwordLogin: a.passwordLogin,
    passwordLoginScope: a.passwordLoginScope,
    clockToleranceSeconds: a.clockToleranceSeconds,
    jwksCacheMaxAgeSeconds: a.jwksCacheMaxAgeSeconds,
    jwksCooldownSeconds: a.jwksCooldownSeconds,
    groupsSecurityEnabledOnly: a.groupsSecurityEnabledOnly,
    maxTokenLifetimeSeconds: a.maxTokenLifetimeSeconds,
    timeoutMs: a.timeoutMs,
    ca: a.caFile ? readFileSync(a.caFile) : undefined,
  });
}

export async function buildProviders(auth: Config['auth'], env: NodeJS.ProcessEnv = process.env): Promise<CredentialProvider[]> {
  const providers: CredentialProvider[] = [];
  for (const name of auth.providers) {
    switch (name) {
      case 'admin': {
        if (!auth.admin.enabled) break;
        const a = auth.admin;
        const passwordHash = a.passwordHash ?? (a.passwordHashFile ? readFileSync(a.passwordHashFile, 'utf8').trim() : undefined);
        if (!passwordHash) throw new Error('auth.admin.enabled needs auth.admin.passwordHash or auth.admin.passwordHashFile');
        providers.push(new AdminProvider({ username: a.username, passwordHash }));
        break;
      }
      case 'ldap': {
        if (!auth.ldap) throw new Error('auth.providers lists ldap but auth.ldap is not configured');
        providers.push(buildLdapProvider(auth.ldap, env));
        break;
      }
      case 'aad': {
        if (!auth.aad) throw new Error('auth.providers lists aad but auth.aad is not configured');
        providers.push(buildAadProvider(auth.aad, env));
        break;
      }
    }
  }
  return providers;
}
