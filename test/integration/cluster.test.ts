// Cluster mode: the real `mlgate` process with server.workers 2 on a shared Redis store.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/index.ts';
import { startExampleNode, type ExampleNode } from '../../src/example-node/index.ts';
import { generatePrivateKeyPem } from '../../src/tokens/index.ts';
import { startRedis, type RedisServer } from './servers/redis.ts';
import { ADMIN_PASSWORD, CA, NODE_CLIENT_TLS, ROOT, cert, requestOnce } from './setup.ts';

let dir: string;
let node: ExampleNode;
let redis: RedisServer;
let gateway: ChildProcess;
let exited: Promise<number | null>;
let output = '';
let port: number;

const call = (method: string, path: string, headers: Record<string, string> = {}, body?: string) => requestOnce(port, method, path, headers, body);

// Workers need a port number up front. Below 32768: the kernel hands out ephemeral ports (client sockets and the
// listen(0) servers of other test files) from 32768-60999, and one of those took a randomly picked port once.
async function unusedPortBelowEphemeralRange(): Promise<number> {
  for (;;) {
    const candidate = 20000 + Math.floor(Math.random() * 12000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = net.createServer().once('error', () => resolve(false));
      probe.listen(candidate, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return candidate;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mlgate-cluster-'));
  redis = await startRedis();
  node = await startExampleNode({ cert: readFileSync(cert('node.crt')), key: readFileSync(cert('node.key')), ca: CA });
  writeFileSync(join(dir, 'key.pem'), await generatePrivateKeyPem('ES256'));
  port = await unusedPortBelowEphemeralRange();
  writeFileSync(
    join(dir, 'mlgate.json'),
    JSON.stringify({
      mode: 'dev',
      server: { host: '127.0.0.1', port, workers: 2, tls: { certFile: cert('edge.crt'), keyFile: cert('edge.key') } },
      auth: { providers: ['admin'], admin: { enabled: true, passwordHash: await hashPassword(ADMIN_PASSWORD) } },
      tokens: { signingKeys: [{ kid: 'cluster', privateKeyFile: join(dir, 'key.pem') }] },
      store: { kind: 'redis', redis: { mode: 'standalone', url: redis.url } },
      upstream: { url: node.url, ...NODE_CLIENT_TLS },
    }),
  );
  gateway = spawn(join(ROOT, 'node_modules/.bin/node'), ['--disable-warning=DEP0169', join(ROOT, 'src/main.ts'), '--config', join(dir, 'mlgate.json')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  gateway.stdout!.on('data', (d: Buffer) => (output += d));
  gateway.stderr!.on('data', (d: Buffer) => (output += d));
  exited = new Promise((r) => gateway.once('exit', (code) => r(code)));
  // Both workers listening: each logs "mlgate listening".
  for (let i = 0; i < 300 && (output.match(/mlgate listening/g) ?? []).length < 2; i++) await new Promise((r) => setTimeout(r, 100));
  if ((output.match(/mlgate listening/g) ?? []).length < 2) throw new Error(`cluster did not start:\n${output}`);
});

afterAll(async () => {
  if (gateway && gateway.exitCode === null) {
    gateway.kill('SIGKILL');
    await exited;
  }
  await node?.close();
  await redis?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('cluster mode (server.workers: 2)', () => {
  it('serves on every worker; a token issued by one worker verifies on the other; metrics count per worker', async () => {
    const login = JSON.parse((await call('POST', '/login', { 'content-type': 'application/json' }, JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }))).text);
    const auth = { authorization: `Bearer ${login.access_token}` };
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await call('GET', '/status', auth)).status);
    expect(statuses.every((s) => s === 200)).toBe(true);

    const metrics = (await call("GET", "/mlgate/metrics")).text;
    if (!metrics.includes("mlgate_http_requests_total")) console.log(output.split("\n").filter((l) => /error/i.test(l)).slice(-5).join("\n"));
    const perWorker = new Map<string, number>();
    for (const line of metrics.split('\n')) {
      const m = /^mlgate_http_requests_total\{(.*)\} (\d+)$/.exec(line);
      if (!m || !m[1]!.includes('route_class="status"') || !m[1]!.includes('status="200"')) continue;
      const worker = /worker="(\d+)"/.exec(m[1]!)?.[1];
      if (worker) perWorker.set(worker, (perWorker.get(worker) ?? 0) + Number(m[2]));
    }
    expect([...perWorker.keys()].sort()).toEqual(['1', '2']);
    expect([...perWorker.values()].reduce((a, b) => a + b, 0)).toBe(40);
    for (const n of perWorker.values()) expect(n).toBeGreaterThan(0);
  });

  it('refreshes on any worker (shared Redis store) and a consumed token is refused on every worker', async () => {
    const login = JSON.parse((await call('POST', '/login', { 'content-type': 'application/json' }, JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }))).text);
    let token = login.refresh_token as string;
    for (let i = 0; i < 6; i++) {
      const r = await call('POST', '/login/refreshToken', { 'content-type': 'application/json' }, JSON.stringify({ refreshToken: token }));
      expect(r.status).toBe(200);
      token = JSON.parse(r.text).refresh_token;
    }
    const reuse = await call('POST', '/login/refreshToken', { 'content-type': 'application/json' }, JSON.stringify({ refreshToken: login.refresh_token }));
    expect(reuse.status).toBe(401);
  });

  it('SIGTERM stops every worker and the primary exits 0', async () => {
    gateway.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
