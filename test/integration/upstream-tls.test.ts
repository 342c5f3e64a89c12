// TLS on both sides of the gateway: node certificates that must be refused (wrong CA, wrong name, expired),
// the edge certificate swapped on disk while connections are open, TLS 1.1 refused, client certificates at the edge.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CA, cert, expectErrorShape, loginAdmin, request } from './setup.ts';
import { closedAfterEach, startGateway, startNode, waitFor, type Gw } from './upstream-setup.ts';

const CA_CRT = cert('ca.crt');
const CA_KEY = cert('ca.key');
let dir: string;

function openssl(args: string[], cwd = dir): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A P-256 key and a certificate for `san`, signed by caCrt/caKey (or self-made CA), optionally with fixed dates. */
function leaf(name: string, opts: { cn: string; san: string; eku?: string; ca?: [string, string]; dates?: [string, string] }): { crt: string; key: string } {
  const [caCrt, caKey] = opts.ca ?? [CA_CRT, CA_KEY];
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${opts.cn}`, '-out', `${name}.csr`]);
  writeFileSync(
    join(dir, `${name}.ext`),
    `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${opts.eku ?? 'serverAuth'}\nsubjectAltName=${opts.san}\n`,
  );
  if (opts.dates) {
    // `openssl ca` is the one that takes fixed start and end dates (OpenSSL 3.0's x509 -req does not).
    mkdirSync(join(dir, `${name}-db`));
    writeFileSync(join(dir, `${name}-db`, 'index.txt'), '');
    writeFileSync(join(dir, `${name}-db`, 'serial'), '1000\n');
    writeFileSync(
      join(dir, `${name}-ca.cnf`),
      `[ca]\ndefault_ca=x\n[x]\ndatabase=${name}-db/index.txt\nnew_certs_dir=${name}-db\nserial=${name}-db/serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n`,
    );
    openssl(['ca', '-batch', '-config', `${name}-ca.cnf`, '-cert', caCrt, '-keyfile', caKey, '-in', `${name}.csr`, '-out', `${name}.crt`,
      '-startdate', opts.dates[0], '-enddate', opts.dates[1], '-extfile', `${name}.ext`, '-notext']);
  } else {
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', caCrt, '-CAkey', caKey, '-set_serial', `0x${Date.now().toString(16)}${name.length}`,
      '-days', '30', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
  }
  return { crt: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

let otherCa: [string, string];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mlgate-tls-'));
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'other-ca.key']);
  openssl(['req', '-new', '-x509', '-key', 'other-ca.key', '-sha256', '-days', '30', '-subj', '/CN=Some Other CA', '-out', 'other-ca.crt']);
  otherCa = [join(dir, 'other-ca.crt'), join(dir, 'other-ca.key')];
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const track = closedAfterEach();
const gw = async (upstream: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<Gw> => track(await startGateway(upstream, extra));

// Both engines: each sets up its own TLS to the nodes (one prebuilt context, CA and name checked).
describe.each(['hpm', 'undici'] as const)('node certificates the gateway refuses (engine %s): 502 with a clear body, the reason in the log', (engine) => {
  it.each([
    ['signed by another CA', () => leaf(`wrong-ca-${engine}`, { cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1', ca: otherCa }), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify/],
    ['for another name', () => leaf(`wrong-name-${engine}`, { cn: 'other.example', san: 'DNS:other.example' }), /ERR_TLS_CERT_ALTNAME_INVALID|does not match/],
    ['expired', () => leaf(`expired-${engine}`, { cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1', dates: ['20200101000000Z', '20200102000000Z'] }), /CERT_HAS_EXPIRED|expired/],
  ])('a node certificate %s', async (_what, make, reason) => {
    const files = make();
    const node = await startNode({ cert: readFileSync(files.crt), key: readFileSync(files.key) });
    track(node);
    const g = await gw({ url: node.url }, { proxy: { engine } });
    const { access_token } = await loginAdmin(g);
    const r = await request(g, 'GET', '/status', { token: access_token });
    expectErrorShape(r, 502, 'bad_gateway');
    expect(r.json().message).toMatch(/TLS connection to the operationalization node/);
    const logged = g.logs('node request failed').map((l) => String(l.reason));
    expect(logged.some((l) => l.startsWith('upstream TLS:') && reason.test(l)), logged.join('\n')).toBe(true);
    // Nothing reached the node's HTTP layer.
    expect(node.received).toHaveLength(0);
  });
});

/** One request over `agent`; resolves with the status and the peer certificate of the socket it used. */
function get(base: string, path: string, agent: https.Agent | false): Promise<{ status: number; fingerprint: string; localPort: number; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, base), { agent, ca: CA }, (res) => {
      const socket = res.socket as tls.TLSSocket;
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      const localPort = socket.localPort ?? 0;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint, localPort, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('edge TLS', () => {
  it('picks up a certificate swapped on disk for new connections while a kept-alive connection keeps working', async () => {
    const live = join(dir, 'live');
    mkdirSync(live);
    copyFileSync(cert('edge.crt'), join(live, 'edge.crt'));
    copyFileSync(cert('edge.key'), join(live, 'edge.key'));
    const g = await gw(
      { url: 'https://127.0.0.1:9' },
      { server: { tls: { certFile: join(live, 'edge.crt'), keyFile: join(live, 'edge.key') } } },
    );
    const kept = new https.Agent({ keepAlive: true, maxSockets: 1, ca: CA });
    const first = await get(g.url, '/mlgate/health', kept);
    expect(first.status).toBe(200);
    expect(first.fingerprint).toBe(g.server.tlsFingerprint());

    // The new pair is written next to the old and renamed over it, as certificate tools do.
    const fresh = leaf('edge-2', { cn: 'localhost (renewed)', san: 'DNS:localhost,IP:127.0.0.1' });
    copyFileSync(fresh.key, join(live, 'edge.key.new'));
    copyFileSync(fresh.crt, join(live, 'edge.crt.new'));
    execFileSync('mv', [join(live, 'edge.key.new'), join(live, 'edge.key')]);
    execFileSync('mv', [join(live, 'edge.crt.new'), join(live, 'edge.crt')]);
    await waitFor('the reload', () => g.logs('edge TLS certificate reloaded: new connections use it, open ones keep theirs').length > 0);

    const newConn = await get(g.url, '/mlgate/health', false);
    const oldConn = await get(g.url, '/mlgate/health', kept);
    console.log(`[edge reload] old connection ${first.fingerprint.slice(0, 23)}… (port ${first.localPort}), still ${oldConn.fingerprint.slice(0, 23)}… (port ${oldConn.localPort}, reused ${oldConn.reused}); new connection ${newConn.fingerprint.slice(0, 23)}…`);
    expect(newConn.status).toBe(200);
    expect(newConn.fingerprint).not.toBe(first.fingerprint);
    expect(newConn.fingerprint).toBe(g.server.tlsFingerprint());
    expect(oldConn.status).toBe(200);
    expect(oldConn.reused).toBe(true);
    expect(oldConn.localPort).toBe(first.localPort);
    expect(oldConn.fingerprint).toBe(first.fingerprint);

    // A broken file is logged and the certificate in use stays; fixing it reloads again.
    writeFileSync(join(live, 'edge.crt'), '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    await waitFor('the failed reload', () => g.logs('edge TLS reload failed: keeping the certificate in use').length > 0);
    expect((await get(g.url, '/mlgate/health', false)).fingerprint).toBe(newConn.fingerprint);
    expect(g.server.reloadTls()).toBe(false); // what SIGHUP calls: still broken, nothing changes
    copyFileSync(cert('edge.crt'), join(live, 'edge.crt'));
    copyFileSync(cert('edge.key'), join(live, 'edge.key'));
    await waitFor('the reload back', () => g.server.tlsFingerprint() === first.fingerprint);
    expect((await get(g.url, '/mlgate/health', false)).fingerprint).toBe(first.fingerprint);
    expect(g.server.reloadTls()).toBe(false); // unchanged files: nothing to do
    kept.destroy();
  });

  it('refuses TLS 1.1 (and below) in the handshake', async () => {
    const g = await gw({ url: 'https://127.0.0.1:9' });
    const outcome = await new Promise<string>((resolve) => {
      const s = tls.connect(
        { host: '127.0.0.1', port: g.port, ca: CA, servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' },
        () => resolve(`connected with ${s.getProtocol()}`),
      );
      s.on('error', (err: NodeJS.ErrnoException) => resolve(`${err.code}: ${err.message}`));
    });
    expect(outcome).toMatch(/ALERT_PROTOCOL_VERSION|protocol version/i);
    // The refusal came from the gateway (the client did offer TLS 1.1): it logged the handshake it refused.
    await waitFor('the refusal log', () => g.logs('edge TLS handshake refused').some((l) => /unsupported protocol/i.test(String(l.err))));
    // TLS 1.2 works on the same listener.
    expect((await get(g.url, '/mlgate/health', false)).status).toBe(200);
  });

  it('requireClientCert: no certificate, no handshake; a certificate from the client CA gets in', async () => {
    const g = await gw({ url: 'https://127.0.0.1:9' }, { server: { tls: { clientCaFile: cert('ca.crt'), requireClientCert: true } } });
    await expect(get(g.url, '/mlgate/health', false)).rejects.toThrow();
    const withCert = await new Promise<number>((resolve, reject) => {
      https
        .get(new URL('/mlgate/health', g.url), { ca: CA, cert: readFileSync(cert('gateway-client.crt')), key: readFileSync(cert('gateway-client.key')), agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', reject);
    });
    expect(withCert).toBe(200);
  });

  it('requestClientCert: clients without a certificate get in, one with a certificate from another CA does not', async () => {
    const g = await gw({ url: 'https://127.0.0.1:9' }, { server: { tls: { clientCaFile: cert('ca.crt'), requestClientCert: true } } });
    expect((await get(g.url, '/mlgate/health', false)).status).toBe(200);
    const stranger = leaf('stranger', { cn: 'stranger', san: 'DNS:stranger', eku: 'clientAuth', ca: otherCa });
    const outcome = await new Promise<string>((resolve) => {
      https
        .get(new URL('/mlgate/health', g.url), { ca: CA, cert: readFileSync(stranger.crt), key: readFileSync(stranger.key), agent: false }, (res) => {
          res.resume();
          resolve(`status ${res.statusCode}`);
        })
        .on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
    });
    expect(outcome).toMatch(/^error/);
    expect(g.logs('edge client certificate refused')).toHaveLength(1);
  });
});
