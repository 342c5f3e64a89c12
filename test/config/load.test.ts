import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it, expect } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import type { LoadOptions } from '../../src/config/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'mlgate-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string, ext = 'yaml'): string {
  const p = join(dir, `c${n++}.${ext}`);
  writeFileSync(p, text);
  return p;
}

const UPSTREAM_YAML = `
upstream:
  url: https://node.example.com:12800
  caFile: /etc/mlgate/ca.crt
  clientCertFile: /etc/mlgate/client.crt
  clientKeyFile: /etc/mlgate/client.key
`;

function configError(opts: LoadOptions): ConfigError {
  try {
    loadConfig(opts);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('loadConfig accepted the configuration');
}

/** True when some problem names this key (and, optionally, says something matching `what`). */
const names = (problems: string[], key: string, what?: RegExp): boolean =>
  problems.some((p) => p.includes(key) && (what === undefined || what.test(p)));

describe('loadConfig: defaults', () => {
  it('a file with only the upstream gives ML Server\'s lifetimes and strict refresh', () => {
    const c = loadConfig({ file: file(UPSTREAM_YAML) });
    expect(c.tokens.accessTokenTtlSeconds).toBe(3600);
    expect(c.tokens.refreshIdleTtlSeconds).toBe(14 * 24 * 3600);
    expect(c.tokens.refreshMaxLifetimeSeconds).toBe(90 * 24 * 3600);
    expect(c.tokens.reuseGraceSeconds).toBe(0);
    expect(c.tokens.algorithm).toBe('ES256');
    expect(c.tokens.signingKeys).toEqual([]);
    expect(c.revocation.maxStalenessSeconds).toBe(30);
    expect(c.mode).toBe('production');
    expect(c.server.port).toBe(8443);
    expect(c.server.allowPlainHttp).toBe(false);
    expect(c.upstream).toMatchObject({ url: 'https://node.example.com:12800', identity: 'assertion' });
  });

  it('the upstream is required: no file and no env is a ConfigError naming it', () => {
    const err = configError({ env: {} });
    expect(names(err.problems, 'upstream')).toBe(true);
  });
});

describe('loadConfig: every problem at once', () => {
  it('lists wrong types, unknown keys and unknown MLGATE_ variables together', () => {
    const f = file(`
server:
  port: "eighty"
  allowPlainHttp: maybe
  colour: blue
tokens:
  accessTokenTtlSeconds: -5
  algorithm: HS256
auth:
  admin:
    enabled: true
    nickname: root
bogusTopLevel: 1
upstream:
  url: http://node.example.com:12800
  caFile: /etc/mlgate/ca.crt
  clientCertFile: /etc/mlgate/client.crt
  clientKeyFile: /etc/mlgate/client.key
`);
    const err = configError({
      file: f,
      env: { MLGATE_NOPE: '1', MLGATE_SERVER__NOPE: '2', MLGATE_REVOCATION__MAX_STALENESS_SECONDS: '"soon"', PATH: '/usr/bin' },
    });
    const p = err.problems;
    expect(names(p, 'server.port')).toBe(true);
    expect(names(p, 'server.allowPlainHttp')).toBe(true);
    expect(names(p, 'colour')).toBe(true);
    expect(names(p, 'tokens.accessTokenTtlSeconds')).toBe(true);
    expect(names(p, 'tokens.algorithm')).toBe(true);
    expect(names(p, 'nickname')).toBe(true);
    expect(names(p, 'bogusTopLevel')).toBe(true);
    expect(names(p, 'upstream.url')).toBe(true);
    expect(names(p, 'MLGATE_NOPE')).toBe(true);
    expect(names(p, 'MLGATE_SERVER__NOPE')).toBe(true);
    expect(names(p, 'revocation.maxStalenessSeconds')).toBe(true);
    expect(p.some((x) => x.includes('PATH'))).toBe(false);
    expect(p.length).toBeGreaterThanOrEqual(11);
    // the message shows them all too
    for (const problem of p) expect(err.message).toContain(problem);
  });

  it('a path below a leaf key in the environment is a problem, not a crash', () => {
    const err = configError({ file: file(UPSTREAM_YAML), env: { MLGATE_SERVER__PORT__X: '1' } });
    expect(names(err.problems, 'MLGATE_SERVER__PORT__X')).toBe(true);
  });
});

describe('loadConfig: YAML files', () => {
  it('reads nested YAML, and JSON files too', () => {
    const c = loadConfig({
      file: file(`${UPSTREAM_YAML}
server:
  port: 9443
  tls:
    certFile: /etc/mlgate/edge.crt
    keyFile: /etc/mlgate/edge.key
tokens:
  reuseGraceSeconds: 5
  signingKeys:
    - kid: k1
      privateKeyFile: /etc/mlgate/k1.pem
`),
    });
    expect(c.server.port).toBe(9443);
    expect(c.server.tls).toEqual({
      certFile: '/etc/mlgate/edge.crt',
      keyFile: '/etc/mlgate/edge.key',
      minVersion: 'TLSv1.2',
      requestClientCert: false,
      requireClientCert: false,
    });
    expect(c.tokens.reuseGraceSeconds).toBe(5);
    expect(c.tokens.signingKeys).toEqual([{ kid: 'k1', privateKeyFile: '/etc/mlgate/k1.pem', active: true }]);

    const json = loadConfig({
      file: file(
        JSON.stringify({ server: { port: 7443 }, upstream: { url: 'https://n:1', caFile: 'a', clientCertFile: 'b', clientKeyFile: 'c' } }),
        'json',
      ),
    });
    expect(json.server.port).toBe(7443);
  });

  it('malformed YAML is a ConfigError naming the file, not a crash', () => {
    const f = file('server:\n  port: [8443\n  host: "unterminated\n');
    const err = configError({ file: f });
    expect(names(err.problems, f)).toBe(true);
  });

  it('a YAML file whose top level is not a mapping is a ConfigError', () => {
    const f = file('- server\n- port\n');
    const err = configError({ file: f });
    expect(names(err.problems, f, /mapping/)).toBe(true);
    const scalar = file('just a string\n');
    expect(names(configError({ file: scalar }).problems, scalar)).toBe(true);
  });

  it('a missing file is a ConfigError naming it', () => {
    const f = join(dir, 'does-not-exist.yaml');
    const err = configError({ file: f });
    expect(names(err.problems, f)).toBe(true);
  });

  it('a YAML problem and schema problems are reported together', () => {
    const f = file('server: [unclosed\n');
    const err = configError({ file: f, env: { MLGATE_SERVER__PORT: '"x"' } });
    expect(names(err.problems, f)).toBe(true);
    expect(names(err.problems, 'server.port')).toBe(true);
  });
});

describe('loadConfig: environment overrides', () => {
  const base = `${UPSTREAM_YAML}
server:
  port: 8000
  host: 127.0.0.1
tokens:
  accessTokenTtlSeconds: 1800
`;

  it('MLGATE_SERVER__PORT=9000 overrides the file, as a number', () => {
    const c = loadConfig({ file: file(base), env: { MLGATE_SERVER__PORT: '9000' } });
    expect(c.server.port).toBe(9000);
    expect(c.server.host).toBe('127.0.0.1'); // siblings from the file stay
  });

  it('the alias MLGATE_PORT does the same', () => {
    const c = loadConfig({ file: file(base), env: { MLGATE_PORT: '9001' } });
    expect(c.server.port).toBe(9001);
  });

  it('MLGATE_TOKENS__ACCESS_TOKEN_TTL_SECONDS reaches the camelCase key', () => {
    const c = loadConfig({ file: file(base), env: { MLGATE_TOKENS__ACCESS_TOKEN_TTL_SECONDS: '600' } });
    expect(c.tokens.accessTokenTtlSeconds).toBe(600);
    expect(c.tokens.refreshIdleTtlSeconds).toBe(14 * 24 * 3600);
  });

  it('works without a file, for every required key', () => {
    const c = loadConfig({
      env: {
        MLGATE_UPSTREAM__URL: 'https://node.internal:12800',
        MLGATE_UPSTREAM__CA_FILE: '/run/secrets/ca.crt',
        MLGATE_UPSTREAM__CLIENT_CERT_FILE: '/run/secrets/client.crt',
        MLGATE_UPSTREAM__CLIENT_KEY_FILE: '/run/secrets/client.key',
        MLGATE_SERVER__ALLOW_PLAIN_HTTP: 'true',
        MLGATE_LOG_LEVEL: 'warn',
        MLGATE_MODE: 'dev',
      },
    });
    expect(c.upstream.url).toBe('https://node.internal:12800');
    expect(c.upstream.clientKeyFile).toBe('/run/secrets/client.key');
    expect(c.server.allowPlainHttp).toBe(true);
    expect(c.log.level).toBe('warn');
    expect(c.mode).toBe('dev');
  });

  it('an invalid override value is listed under its config key', () => {
    const err = configError({ file: file(base), env: { MLGATE_SERVER__PORT: '70000', MLGATE_PORT: '-1' } });
    expect(names(err.problems, 'server.port')).toBe(true);
  });

  it('MLGATE_CONFIG and MLGATE_ADMIN_PASSWORD are not config keys and are not reported', () => {
    const c = loadConfig({ file: file(base), env: { MLGATE_CONFIG: '/etc/mlgate.yaml', MLGATE_ADMIN_PASSWORD: 's3cret' } });
    expect(c.server.port).toBe(8000);
  });

  it("the CLI's MLGATE_TOKEN and MLGATE_URL, and variables the config names as secret sources (…Env), are not config keys", () => {
    const withSecretEnv = file(`${base}\nauth:\n  aad:\n    tenantId: 11111111-2222-3333-4444-555555555555\n    audiences: [api://mlserver]\n    clientId: 00000000-0000-0000-0000-000000000001\n    clientSecretEnv: MLGATE_AAD_SECRET\n`);
    const c = loadConfig({ file: withSecretEnv, env: { MLGATE_AAD_SECRET: 'x', MLGATE_TOKEN: 't', MLGATE_URL: 'https://gw:8443' } });
    expect(c.server.port).toBe(8000);
    // Any other MLGATE_ name that is no config key is still reported.
    expect(names(configError({ file: withSecretEnv, env: { MLGATE_AAD_SECRT: 'x' } }).problems, 'MLGATE_AAD_SECRT')).toBe(true);
  });

  it('what the start would refuse is a config problem too, listed together: a CIDR prefix too long for its family, a bad route rule', () => {
    const err = configError({
      file: file(`${base}\nmetrics:\n  allowFrom: ['10.0.0.0/99', '10.0.0.0/8', 'fd00::/129', 'fd00::/8']\npolicy:\n  extraRoutes:\n    - { id: 'bad id', methods: [GET], pattern: /x, roles: [] }\n`),
    });
    expect(err.problems.filter((p) => p.startsWith('metrics.allowFrom.')).map((p) => p.split(':')[0])).toEqual(['metrics.allowFrom.0', 'metrics.allowFrom.2']);
    expect(names(err.problems, 'policy.extraRoutes', /bad id/)).toBe(true);
  });

  it('an unknown key under server.tls is refused like any other (a typo must not turn a security setting off)', () => {
    const err = configError({ file: file(`${base}\n`), env: { MLGATE_SERVER__TLS: '{"certFile":"a.crt","keyFile":"a.key","requireClientCerts":true}' } });
    expect(names(err.problems, 'server.tls', /requireClientCerts/)).toBe(true);
  });
});
