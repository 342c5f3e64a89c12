// What a production config may not contain: example certificates, generated keys, plain HTTP by accident.
import { accessSync, constants } from 'node:fs';
import { fingerprintsIn, isExampleCertificate, isExampleKey, type ExampleCertificates } from '../tls/index.ts';
import type { Config } from './schema.ts';

/** Every `...File` key must name a readable file, in any mode. */
export function fileProblems(value: unknown, path = ''): string[] {
  if (value === null || typeof value !== 'object') return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    const key = path ? `${path}.${k}` : k;
    if (k.endsWith('File') && typeof v === 'string') {
      try {
        accessSync(v, constants.R_OK);
      } catch {
        out.push(`${key}: cannot read ${v}`);
      }
    } else {
      out.push(...fileProblems(v, key));
    }
  }
  return out;
}

export function productionProblems(config: Config, exampleCertDir: string): string[] {
  const problems: string[] = fileProblems(config);
  if (config.server.workers !== 1) {
    // Each worker has its own memory: refresh tokens and revocations must live in a shared store.
    if (config.store.kind === 'memory') problems.push('server.workers: cluster mode needs store.kind redis (workers share refresh and revocation state)');
    if (config.tokens.signingKeys.length === 0) problems.push('server.workers: cluster mode needs tokens.signingKeys from files (every worker must sign with the same key)');
  }
  if (config.mode !== 'production') return problems;
  // Every certificate, CA bundle and private key named anywhere in the config: the example ones are public, so a
  // trusted example CA lets anybody impersonate a node, a directory or Redis, and an example key lets anybody sign.
  problems.push(...exampleMaterial(config, fingerprintsIn(exampleCertDir)));
  if (config.tokens.signingKeys.length === 0) {
    problems.push('tokens.signingKeys: production needs signing keys from files (a key generated at start differs per instance and dies with the process)');
  } else if (!config.tokens.signingKeys.some((k) => k.active)) {
    problems.push('tokens.signingKeys: no key is active');
  }
  if (!config.server.tls && !config.server.allowPlainHttp) {
    problems.push('server.tls: HTTPS needs certFile and keyFile (or set server.allowPlainHttp: true behind a TLS-terminating load balancer)');
  }
  if (config.auth.admin.enabled && !config.auth.admin.passwordHash && !config.auth.admin.passwordHashFile) {
    problems.push('auth.admin: enabled without passwordHash or passwordHashFile');
  }
  if (!config.auth.admin.enabled && config.auth.providers.every((p) => p === 'admin')) {
    problems.push('auth: no credential provider is enabled (enable auth.admin or configure another provider)');
  }
  const ldap = config.auth.ldap;
  if (config.auth.providers.includes('ldap') && ldap && !ldap.useLDAPS && !ldap.startTLS && !ldap.allowPlainLdap) {
    problems.push('auth.ldap: user passwords would reach the directory in clear text; set useLDAPS or startTLS (or allowPlainLdap: true)');
  }
  return problems;
}

function exampleMaterial(value: unknown, examples: ExampleCertificates, path = ''): string[] {
  if (value === null || typeof value !== 'object') return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    const key = path ? `${path}.${k}` : k;
    if (typeof v !== 'string' || !k.endsWith('File')) {
      out.push(...exampleMaterial(v, examples, key));
    } else if (/(cert|ca)File$/i.test(k) && isExampleCertificate(v, examples)) {
      out.push(`${key}: ${v} is or contains an example certificate from certs-example/; make your own (see certs-example/README.md)`);
    } else if (/keyFile$/i.test(k) && isExampleKey(v, examples)) {
      out.push(`${key}: ${v} is an example private key from certs-example/ (published with mlgate); make your own`);
    }
  }
  return out;
}
