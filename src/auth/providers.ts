// Builds the configured credential providers, in the configured order.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.ts';
import { AdminProvider } from './admin.ts';
import type { CredentialProvider } from './types.ts';

export async function buildProviders(auth: Config['auth']): Promise<CredentialProvider[]> {
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
    }
  }
  return providers;
}
