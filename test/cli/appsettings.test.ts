// mlgate import-appsettings: an ML Server web node's appsettings.json becomes a valid mlgate config.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { expandRange, importAppsettings } from '../../src/cli/appsettings.ts';
import { configSchema } from '../../src/config/index.ts';

// As ML Server 9.x writes it: comments, string booleans, PascalCase keys.
const APPSETTINGS = `{
  // web node settings
  "Authentication": {
    "AzureActiveDirectory": { "Enabled": false, "Authority": "https://login.windows.net/contoso.com", "Audience": "x", "ClientId": "y", "Key": "SECRET-AAD-KEY" },
    "LDAP": {
      "Enabled": true,
      "Host": "dc1.contoso.com",
      "Port": "636",
      "UseLDAPS": "True",
      "SkipCertificateValidation": false,
      "QueryUserDn": "CN=deployradmin,CN=DeployR,DC=TEST,DC=COM",
      "QueryUserPasswordEncrypted": true,
      "QueryUserPassword": "ENCRYPTED-SECRET-VALUE",
      "SearchBase": "CN=DeployR,DC=TEST,DC=COM",
      "SearchFilter": "cn={0}",
      "UniqueUserIdentifierAttributeName": "userPrincipalName",
      "DisplayNameAttributeName": "name",
      "EmailAttributeName": "mail",
    },
    "JWTSigningCertificate": { "Enabled": true, "StoreName": "My", "StoreLocation": "CurrentUser", "SubjectName": "CN=jwt" }
  },
  "Authorization": { "Owner": ["Administrators"], "Contributor": ["RProgrammers", "Quality"], "CacheLifeTimeInMinutes": 60 },
  "Kestrel": { "Port": 12800, "HttpsCertificate": { "Enabled": true, "StoreName": "My", "StoreLocation": "LocalMachine", "SubjectName": "CN=mrs" } },
  "BackEndConfiguration": { "Uris": { "Values": ["https://10.0.0.5:12805"], "Ranges": [] } }
}`;

describe('import-appsettings', () => {
  it('carries over LDAP, roles, port and the compute node, and the result passes the config schema', () => {
    const { config, warnings } = importAppsettings(APPSETTINGS);
    const parsed = configSchema.safeParse(config);
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    const c = parsed.data!;
    expect(c.auth.providers).toEqual(['ldap', 'admin']);
    expect(c.auth.ldap).toMatchObject({
      host: 'dc1.contoso.com',
      port: 636,
      useLDAPS: true,
      queryUserDn: 'CN=deployradmin,CN=DeployR,DC=TEST,DC=COM',
      searchBase: 'CN=DeployR,DC=TEST,DC=COM',
      searchFilter: 'cn={0}',
      uniqueUserIdentifierAttributeName: 'userPrincipalName',
      displayNameAttributeName: 'name',
      emailAttributeName: 'mail',
      queryUserPasswordEnv: 'MLGATE_LDAP_QUERY_PASSWORD',
    });
    expect(c.auth.roles).toEqual({ Owner: ['Administrators'], Contributor: ['RProgrammers', 'Quality'] });
    expect(c.server.port).toBe(12800);
    expect(c.upstream).toMatchObject({ url: 'https://10.0.0.5:12805' });
    expect(warnings.join('\n')).toMatch(/QueryUserPassword is not copied/);
    expect(warnings.join('\n')).toMatch(/CacheLifeTimeInMinutes/);
    expect(warnings.join('\n')).toMatch(/JWTSigningCertificate/);
  });

  it('never copies a secret', () => {
    const { config, warnings } = importAppsettings(APPSETTINGS);
    const all = JSON.stringify(config) + warnings.join('\n');
    expect(all).not.toContain('ENCRYPTED-SECRET-VALUE');
    expect(all).not.toContain('SECRET-AAD-KEY');
  });

  it('turns http compute nodes into https with a warning, and expands ranges', () => {
    expect(expandRange('http://10.1.1.1-3:12805')).toEqual(['http://10.1.1.1:12805', 'http://10.1.1.2:12805', 'http://10.1.1.3:12805']);
    const { config, warnings } = importAppsettings('{"BackEndConfiguration":{"Uris":{"Values":["http://localhost:12805"]}}}');
    expect((config.upstream as { url: string }).url).toBe('https://localhost:12805');
    expect(warnings.some((w) => w.includes('mutual TLS only'))).toBe(true);
  });

  it('refuses a file that is not JSON with a clear message', () => {
    expect(() => importAppsettings('{"Authentication": ')).toThrow(/not valid JSON/);
  });

  it('works as a CLI: YAML on stdout, TODO comments for what needs a human', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mlgate-appsettings-'));
    try {
      const file = join(dir, 'appsettings.json');
      writeFileSync(file, APPSETTINGS);
      const out = execFileSync(join(import.meta.dirname, '../../node_modules/.bin/node'), [join(import.meta.dirname, '../../src/cli/index.ts'), 'import-appsettings', file], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      expect(out).toMatch(/^# mlgate config imported from/);
      expect(out).toContain('# TODO: LDAP.QueryUserPassword is not copied');
      expect(configSchema.safeParse(parseYaml(out)).success).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("import-appsettings on Microsoft's own samples", () => {
  // The two samples, verbatim from configure-authentication.md and configure-roles.md (../shared/reference).
  const samples = join(import.meta.dirname, 'fixtures/ml-server-appsettings-samples.md');
  const fence = (file: string, startsWith: string): string => {
    const text = readFileSync(samples, 'utf8');
    const blocks = [...text.matchAll(/```[^\n]*\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
    const block = blocks.find((b) => b.startsWith(startsWith));
    if (!block) throw new Error(`no sample starting with ${startsWith} in ${file}`);
    return block;
  };

  it(
    'turns the LDAP sample of configure-authentication.md and the roles sample of configure-roles.md into a config check-config accepts',
    () => {
      // The samples are fragments (and miss commas, as printed): put them where appsettings.json has them.
      const appsettings = `{ "Authentication": { ${fence('configure-authentication.md', '"LDAP": {')} }, ${fence('configure-roles.md', '"Authorization": {')} }`;
      const dir = mkdtempSync(join(tmpdir(), 'mlgate-import-'));
      try {
        const file = join(dir, 'appsettings.json');
        writeFileSync(file, appsettings);
        const node = join(import.meta.dirname, '../../node_modules/.bin/node');
        const cli = join(import.meta.dirname, '../../src/cli/index.ts');
        const run = (args: string[], input?: string) => execFileSync(node, [cli, ...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
        const yaml = run(['import-appsettings', file, '--dir', dir]);
        const config = parseYaml(yaml);
        expect(config.auth.ldap).toMatchObject({ useLDAPS: true, searchFilter: 'cn={0}', queryUserDn: 'CN=deployradmin,CN=DeployR,DC=TEST,DC=COM' });
        expect(config.auth.roles).toEqual({ Owner: ['Administrators'], Contributor: ['RProgrammers', 'Quality'], Reader: ['App developers'] });
        expect(yaml).toContain('# TODO: appsettings is not valid JSON');
        // Make the files it names, the way the README says, then check-config accepts it.
        run(['gen-certs', join(dir, 'tls')]);
        mkdirSync(join(dir, 'keys'));
        writeFileSync(join(dir, 'keys/key-1.pem'), run(['gen-key', 'ES256']));
        mkdirSync(join(dir, 'secrets'));
        writeFileSync(join(dir, 'secrets/admin-hash'), run(['hash-password'], 'a-new-admin-password'));
        writeFileSync(join(dir, 'mlgate.yaml'), yaml);
        expect(run(['check-config', join(dir, 'mlgate.yaml')])).toContain('ok (mode production)');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
