import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { configSchema, productionProblems } from '../../src/config/index.ts';
import type { Config, ConfigInput } from '../../src/config/index.ts';
import { generatePrivateKeyPem } from '../../src/tokens/index.ts';
import { makeOwnPki } from './pki.ts';

const EXAMPLES = fileURLToPath(new URL('../../certs-example', import.meta.url));
const FAKE_HASH = '$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';

let dir: string;
let pki: string;
let keyFile: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mlgate-prod-'));
  pki = join(dir, 'pki');
  mkdirSync(pki);
  makeOwnPki(pki);
  keyFile = join(dir, 'signing-k1.pem');
  writeFileSync(keyFile, await generatePrivateKeyPem('ES256'), { mode: 0o600 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A production config built on our own certificates; `over` replaces whole sections. */
function config(over: (input: ConfigInput) => void = () => {}): Config {
  const input: ConfigInput = {
    mode: 'production',
    server: { tls: { certFile: join(pki, 'edge.crt'), keyFile: join(pki, 'edge.key') } },
    auth: { admin: { enabled: true, passwordHash: FAKE_HASH } },
    tokens: { signingKeys: [{ kid: 'k1', privateKeyFile: keyFile }] },
    upstream: {
      url: 'https://node.example.com:12800',
      caFile: join(pki, 'ca.crt'),
      clientCertFile: join(pki, 'gateway-client.crt'),
      clientKeyFile: join(pki, 'gateway-client.key'),
    },
  };
  over(input);
  return configSchema.parse(input);
}

function copied(name: string): string {
  const to = join(dir, `renamed-${name}-${Math.random().toString(36).slice(2)}.pem`);
  copyFileSync(join(EXAMPLES, name), to);
  return to;
}

describe('productionProblems', () => {
  it('refuses a new certificate signed with the public example CA key', () => {
    const d = join(dir, 'signed-by-example');
    mkdirSync(d, { recursive: true });
    const run = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(d, 'leaf.key')]);
    run(['req', '-new', '-key', join(d, 'leaf.key'), '-subj', '/O=Example Corp/CN=gateway.example.com', '-out', join(d, 'leaf.csr')]);
    run(['x509', '-req', '-in', join(d, 'leaf.csr'), '-CA', join(EXAMPLES, 'ca.crt'), '-CAkey', join(EXAMPLES, 'ca.key'),
      '-set_serial', '0x1234', '-days', '30', '-sha256', '-out', join(d, 'leaf.crt')]);
    const problems = productionProblems(
      config((c) => {
        c.server = { tls: { certFile: join(d, 'leaf.crt'), keyFile: join(d, 'leaf.key') } };
      }),
      EXAMPLES,
    );
    expect(problems.some((p) => p.startsWith('server.tls.certFile:'))).toBe(true);
  });

  it('refuses a fresh set made by make-certs.sh (marked NOT FOR PRODUCTION)', () => {
    const d = join(dir, 'make-certs');
    execFileSync('bash', [join(EXAMPLES, 'make-certs.sh'), d], { stdio: 'ignore' });
    const problems = productionProblems(
      config((c) => {
        c.server = { tls: { certFile: join(d, 'edge.crt'), keyFile: join(d, 'edge.key') } };
      }),
      EXAMPLES,
    );
    expect(problems.some((p) => p.startsWith('server.tls.certFile:'))).toBe(true);
  });

  it('accepts a config with freshly made certificates of our own and a signing key file', () => {
    expect(productionProblems(config(), EXAMPLES)).toEqual([]);
  });

  it('refuses certs-example/edge.crt as the edge certificate, at its own path', () => {
    const problems = productionProblems(
      config((c) => {
        c.server = { tls: { certFile: join(EXAMPLES, 'edge.crt'), keyFile: join(EXAMPLES, 'edge.key') } };
      }),
      EXAMPLES,
    );
    expect(problems.filter((p) => p.startsWith('server.tls.certFile'))).toHaveLength(1);
  });

  it('refuses certs-example/edge.crt even when copied to another path and name', () => {
    const certFile = copied('edge.crt');
    const problems = productionProblems(
      config((c) => {
        c.server = { tls: { certFile, keyFile: join(pki, 'edge.key') } };
      }),
      EXAMPLES,
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^server\.tls\.certFile: /);
    expect(problems[0]).toContain(certFile);
  });

  it('refuses a copy with Windows line endings (same certificate, different bytes)', () => {
    const certFile = join(dir, 'edge-crlf.crt');
    writeFileSync(certFile, readFileSync(join(EXAMPLES, 'edge.crt'), 'utf8').replace(/\n/g, '\r\n'));
    const problems = productionProblems(
      config((c) => {
        c.server = { tls: { certFile, keyFile: join(pki, 'edge.key') } };
      }),
      EXAMPLES,
    );
    expect(problems.some((p) => p.startsWith('server.tls.certFile'))).toBe(true);
  });

  it('refuses copied example CA and client certificates for the upstream', () => {
    const problems = productionProblems(
      config((c) => {
        c.upstream = {
          url: 'https://node.example.com:12800',
          caFile: copied('ca.crt'),
          clientCertFile: copied('gateway-client.crt'),
          clientKeyFile: join(pki, 'gateway-client.key'),
        };
      }),
      EXAMPLES,
    );
    expect(problems.some((p) => p.startsWith('upstream.caFile'))).toBe(true);
    expect(problems.some((p) => p.startsWith('upstream.clientCertFile'))).toBe(true);
    expect(problems).toHaveLength(2);
  });

  it('refuses the example CA as the edge client-certificate CA', () => {
    const problems = productionProblems(
      config((c) => {
        (c.server as { tls: Record<string, unknown> }).tls.clientCaFile = copied('ca.crt');
        (c.server as { tls: Record<string, unknown> }).tls.requireClientCert = true;
      }),
      EXAMPLES,
    );
    expect(problems).toEqual([expect.stringMatching(/^server\.tls\.clientCaFile: .* example certificate/)]);
  });

  it('refuses example material anywhere: a signing key that is an example private key, an example CA inside a bundle, an example CA for Redis', () => {
    const bundle = join(dir, 'bundle-with-example.pem');
    writeFileSync(bundle, readFileSync(join(pki, 'ca.crt'), 'utf8') + readFileSync(join(EXAMPLES, 'ca.crt'), 'utf8'));
    const problems = productionProblems(
      config((c) => {
        c.tokens = { signingKeys: [{ kid: 'k1', privateKeyFile: keyFile }, { kid: 'forged', privateKeyFile: copied('ca.key'), active: false }] };
        c.upstream = { url: 'https://node.example.com:12800', caFile: bundle, clientCertFile: join(pki, 'gateway-client.crt'), clientKeyFile: join(pki, 'gateway-client.key') };
        c.store = { kind: 'redis', redis: { mode: 'standalone', url: 'rediss://redis.example.com:6380', tls: { caFile: copied('ca.crt') } } };
      }),
      EXAMPLES,
    );
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['store.redis.tls.caFile', 'tokens.signingKeys.1.privateKeyFile', 'upstream.caFile']);
    expect(problems.find((p) => p.startsWith('tokens.'))).toMatch(/example private key/);
  });

  it('refuses empty signingKeys (a key generated at start)', () => {
    const problems = productionProblems(
      config((c) => {
        c.tokens = { signingKeys: [] };
      }),
      EXAMPLES,
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^tokens\.signingKeys/);
  });

  it('refuses signing keys of which none is active', () => {
    const problems = productionProblems(
      config((c) => {
        c.tokens = { signingKeys: [{ kid: 'k1', privateKeyFile: keyFile, active: false }] };
      }),
      EXAMPLES,
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^tokens\.signingKeys/);
  });

  it('refuses plain HTTP unless allowPlainHttp is set', () => {
    const plain = config((c) => {
      c.server = {};
    });
    expect(productionProblems(plain, EXAMPLES).some((p) => p.startsWith('server.tls'))).toBe(true);
    const behindLb = config((c) => {
      c.server = { allowPlainHttp: true };
    });
    expect(productionProblems(behindLb, EXAMPLES)).toEqual([]);
  });

  it('refuses an enabled admin without a password hash, and no provider at all', () => {
    const noHash = config((c) => {
      c.auth = { admin: { enabled: true } };
    });
    expect(productionProblems(noHash, EXAMPLES).some((p) => p.startsWith('auth.admin'))).toBe(true);
    const none = config((c) => {
      c.auth = { admin: { enabled: false } };
    });
    expect(productionProblems(none, EXAMPLES).some((p) => p.startsWith('auth'))).toBe(true);
  });

  it('lists every production problem at once', () => {
    const problems = productionProblems(
      config((c) => {
        c.server = { tls: { certFile: copied('edge.crt'), keyFile: join(pki, 'edge.key') } };
        c.tokens = { signingKeys: [] };
        c.upstream = {
          url: 'https://node.example.com:12800',
          caFile: copied('ca.crt'),
          clientCertFile: join(pki, 'gateway-client.crt'),
          clientKeyFile: join(pki, 'gateway-client.key'),
        };
      }),
      EXAMPLES,
    );
    expect(problems).toHaveLength(3);
  });

  it('dev mode allows the example certificates and a generated key', () => {
    const dev = config((c) => {
      c.mode = 'dev';
      c.server = { tls: { certFile: join(EXAMPLES, 'edge.crt'), keyFile: join(EXAMPLES, 'edge.key') } };
      c.tokens = { signingKeys: [] };
    });
    expect(productionProblems(dev, EXAMPLES)).toEqual([]);
  });
});
