// docker-compose.yml cannot run here (no container engine); this keeps its gateway config valid and consistent.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/index.ts';

const ROOT = join(import.meta.dirname, '..', '..');

describe('docker-compose', () => {
  it('has the four services and a gateway config that passes the schema', () => {
    const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'));
    expect(Object.keys(compose.services).sort()).toEqual(['example-node', 'gateway', 'openldap', 'redis']);
    const config = configSchema.safeParse(parseYaml(readFileSync(join(ROOT, 'config/compose/mlgate.yaml'), 'utf8')));
    expect(config.success, JSON.stringify(config.error?.issues)).toBe(true);
    expect(config.data!.store.kind).toBe('redis');
    expect(config.data!.auth.providers).toContain('ldap');
    // The names the gateway dials are the compose service names / aliases.
    expect(config.data!.upstream.url).toContain('node.mlgate.local');
    expect(compose.services['example-node'].networks.default.aliases).toContain('node.mlgate.local');
  });
});
