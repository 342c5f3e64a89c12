// npm run bench:redis: what the Redis store costs and how fast revocation travels, with two real mlgate processes
// on one redis-server: refresh rate, Redis commands per proxied request (the hot path must make none), and the
// time from a revocation answered by instance A to instance B refusing the token (p50/p99 over TRIALS).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import argon2 from 'argon2';
import { genCerts } from '../src/cli/gencerts.ts';
import { startExampleNode } from '../src/example-node/index.ts';
import { generatePrivateKeyPem } from '../src/tokens/index.ts';

const ROOT = join(import.meta.dirname, '..');
const TMP = mkdtempSync(join(tmpdir(), 'mlgate-bench-redis-'));
const TRIALS = Number(process.env.TRIALS ?? 200);
const PASSWORD = 'bench-redis-password';
const children: ChildProcess[] = [];
const log = (m: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitTcp(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((r) => net.connect(port, '127.0.0.1').once('connect', function (this: net.Socket) { this.destroy(); r(true); }).once('error', () => r(false)));
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} did not open`);
}

const agent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false });
function call(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const r = https.request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

const login = async (port: number) => {
  const r = await call(port, 'POST', '/login', { 'content-type': 'application/json' }, JSON.stringify({ username: 'admin', password: PASSWORD }));
  if (r.status !== 200) throw new Error(`login: ${r.status} ${r.text}`);
  return JSON.parse(r.text) as { access_token: string; refresh_token: string };
};

const redisCommands = (port: number): number =>
  Number(/total_commands_processed:(\d+)/.exec(execFileSync('redis-cli', ['-p', String(port), 'INFO', 'stats']).toString())?.[1]);

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function main(): Promise<void> {
  execFileSync('sh', ['-c', 'command -v redis-server || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server)'], { stdio: 'ignore' });
  const certs = join(TMP, 'tls');
  genCerts({ dir: certs, edgeHosts: ['localhost', '127.0.0.1'], nodeHosts: ['localhost', '127.0.0.1'], days: 2 });
  const c = (n: string) => join(certs, n);
  const redisPort = await freePort();
  children.push(spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', TMP], { stdio: 'ignore' }));
  await waitTcp(redisPort);
  const node = await startExampleNode({ cert: readFileSync(c('node.crt')), key: readFileSync(c('node.key')), ca: readFileSync(c('ca.crt')) });
  writeFileSync(join(TMP, 'key.pem'), await generatePrivateKeyPem('ES256'));
  // A cheap argon2 hash: this measures the store, not the password check (argon2 reads its cost from the hash).
  const passwordHash = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
  const ports = [await freePort(), await freePort()];
  for (const [i, port] of ports.entries()) {
    const file = join(TMP, `mlgate-${i}.json`);
    writeFileSync(file, JSON.stringify({
      mode: 'production',
      server: { host: '127.0.0.1', port, tls: { certFile: c('edge.crt'), keyFile: c('edge.key') } },
      auth: { providers: ['admin'], admin: { enabled: true, passwordHash }, throttle: { enabled: false } },
      tokens: { signingKeys: [{ kid: 'bench', privateKeyFile: join(TMP, 'key.pem') }] },
      store: { kind: 'redis', redis: { mode: 'standalone', url: `redis://127.0.0.1:${redisPort}` } },
      upstream: { url: node.url, servername: 'localhost', caFile: c('ca.crt'), clientCertFile: c('gateway-client.crt'), clientKeyFile: c('gateway-client.key') },
      log: { level: 'warn' },
    }));
    children.push(spawn(join(ROOT, 'node_modules/.bin/node'), ['--disable-warning=DEP0169', join(ROOT, 'src/main.ts'), '--config', file], { stdio: 'ignore' }));
  }
  for (const p of ports) await waitTcp(p);
  const [A, B] = ports as [number, number];

  log('refresh rate on Redis (16 chains, 5 s, instance A)');
  const chains = await Promise.all(Array.from({ length: 16 }, () => login(A).then((t) => t.refresh_token)));
  let refreshed = 0;
  let failed = 0;
  const until = performance.now() + 5000;
  const t0 = performance.now();
  await Promise.all(chains.map(async (start) => {
    let token = start;
    while (performance.now() < until) {
      const r = await call(A, 'POST', '/login/refreshToken', { 'content-type': 'application/json' }, JSON.stringify({ refreshToken: token }));
      if (r.status !== 200) { failed++; return; }
      refreshed++;
      token = JSON.parse(r.text).refresh_token;
    }
  }));
  const refreshRate = refreshed / ((performance.now() - t0) / 1000);

  log('Redis commands per proxied request (2,000 GET /status through A, background subtracted)');
  const { access_token } = await login(A);
  const auth = { authorization: `Bearer ${access_token}` };
  await call(A, 'GET', '/status', auth);
  const idle0 = redisCommands(redisPort);
  const idleStart = performance.now();
  await new Promise((r) => setTimeout(r, 2000));
  const idlePerMs = (redisCommands(redisPort) - idle0) / (performance.now() - idleStart);
  const n = 2000;
  const c0 = redisCommands(redisPort);
  const s0 = performance.now();
  let ok = 0;
  for (let i = 0; i < n / 16; i++) {
    const replies = await Promise.all(Array.from({ length: 16 }, () => call(A, 'GET', '/status', auth)));
    ok += replies.filter((r) => r.status === 200).length;
  }
  const during = redisCommands(redisPort) - c0;
  const background = idlePerMs * (performance.now() - s0);
  const perRequest = Math.max(0, during - background) / n;

  log(`revocation propagation A -> B (${TRIALS} trials)`);
  const lat: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    const t = await login(A);
    const h = { authorization: `Bearer ${t.access_token}` };
    if ((await call(B, 'GET', '/status', h)).status !== 200) throw new Error('B refused a fresh token');
    const del = await call(A, 'DELETE', `/login/refreshToken?refreshToken=${t.refresh_token}`);
    if (del.status !== 200) throw new Error(`revoke: ${del.status}`);
    const revokedAt = performance.now();
    for (;;) {
      const r = await call(B, 'GET', '/status', h);
      if (r.status === 401) break;
      if (performance.now() - revokedAt > 5000) throw new Error('B still accepts a revoked token after 5 s');
    }
    lat.push(performance.now() - revokedAt);
  }
  lat.sort((a, b) => a - b);

  const lines = [
    `# mlgate Redis benchmark — ${new Date().toISOString()}`,
    '',
    'Command: `npm run bench:redis` (two mlgate processes, production config, one redis-server, the example node upstream; all on this 2-core machine, unpinned).',
    '',
    `- POST /login/refreshToken on Redis: ${refreshRate.toFixed(0)}/s (16 chains, 5 s, ${failed} failures; target >= 3,000/s)`,
    `- Redis commands per proxied request: ${perRequest.toFixed(3)} (${ok}/${n} GET /status answered 200; ${during} commands during the run, ${background.toFixed(0)} of them the revocation feed's own background traffic; target 0)`,
    `- revocation answered on A -> refused on B, ${TRIALS} trials: p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms, max ${lat[lat.length - 1]!.toFixed(1)} ms (target p99 <= 100 ms; each sample includes one proxied request to B)`,
    '',
  ];
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  writeFileSync(join(ROOT, 'bench/RESULTS-redis.md'), `${text}\n`);
  await node.close();
}

function cleanup(): void {
  agent.destroy();
  for (const ch of children) ch.kill('SIGTERM');
  rmSync(TMP, { recursive: true, force: true });
}
main().then(
  () => {
    cleanup();
    process.exit(0);
  },
  (err: unknown) => {
    log(`bench:redis failed: ${err instanceof Error ? err.stack : String(err)}`);
    cleanup();
    process.exit(1);
  },
);
