// mlgate gen-certs: a private CA whose certificates production mode accepts and a real mTLS handshake trusts.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { genCerts } from '../../src/cli/gencerts.ts';
import { isExampleCertificate, fingerprintsIn } from '../../src/tls/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'mlgate-gencerts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gen-certs', () => {
  const made = genCerts({ dir, edgeHosts: ['gw.example.com', '127.0.0.1'], nodeHosts: ['localhost'], days: 30 });
  const f = (n: string) => readFileSync(join(dir, n));

  it('makes a CA and three leaves it signed, with the asked names, keys readable by the owner only', () => {
    expect(made.map((p) => p.slice(dir.length + 1))).toEqual(['ca.crt', 'edge.crt', 'node.crt', 'gateway-client.crt']);
    const ca = new X509Certificate(f('ca.crt'));
    for (const n of ['edge.crt', 'node.crt', 'gateway-client.crt']) expect(new X509Certificate(f(n)).verify(ca.publicKey)).toBe(true);
    expect(new X509Certificate(f('edge.crt')).subjectAltName).toBe('DNS:gw.example.com, IP Address:127.0.0.1');
    expect(statSync(join(dir, 'edge.key')).mode & 0o077).toBe(0);
  });

  it('is not mistaken for the example certificates', () => {
    const examples = fingerprintsIn(join(import.meta.dirname, '../../certs-example'));
    for (const n of ['ca.crt', 'edge.crt', 'node.crt', 'gateway-client.crt']) expect(isExampleCertificate(join(dir, n), examples)).toBe(false);
  });

  it('refuses to overwrite an existing CA without force', () => {
    expect(() => genCerts({ dir, edgeHosts: ['x'], nodeHosts: ['y'], days: 1 })).toThrow(/already holds a CA/);
  });

  it('works for a real mutual-TLS handshake', async () => {
    const server = https.createServer({ cert: f('node.crt'), key: f('node.key'), ca: f('ca.crt'), requestCert: true, rejectUnauthorized: true }, (_q, r) => r.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, servername: 'localhost', ca: f('ca.crt'), cert: f('gateway-client.crt'), key: f('gateway-client.key'), agent: false }, (res) => {
            let t = '';
            res.on('data', (d: Buffer) => (t += d));
            res.on('end', () => resolve(t));
          })
          .on('error', reject);
      });
      expect(body).toBe('ok');
    } finally {
      server.close();
    }
  });
});
