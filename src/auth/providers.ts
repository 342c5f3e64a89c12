// Builds the configured credential providers, in the configured order.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.ts';
import { AdminProvider } from './admin.ts';
import { LdapProvider } from './ldap.ts';
import type { CredentialProvider } from './types.ts';

type LdapConfig = NonNullable<Config['auth']['ldap']>;

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
    }
  }
  return providers;
}
