// npm run bench:redis: what the Redis store costs and how fast revocation travels, with two real mlgate processes
// on one redis-server: refresh rate, Redis commands per proxied request (the hot path must make none), and the
// time from a revocation answered by instance A to instance B refusing the token (p50/p99 over TRIALS).
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import argon2 from 'argon2';
import { genCerts } from '../src/cli/gencerts.ts';
import { startExampleNode } from '../src/example-node/index.ts';
import { generatePrivateKeyPem } from '../src/tokens/index.ts';
import { refreshLoad } from './refresh-load.ts';

const ROOT = join(import.meta.dirname, '..');
const TMP = mkdtempSync(join(tmpdir(), 'mlgate-bench-redis-'));
const TRIALS = Number(process.env.TRIALS ?? 200);
const CHAINS = Number(process.env.CHAINS ?? 32);
const DUR = Number(process.env.DUR ?? 10);
// PIN=1 (default): the load client and redis-server on CPU0, the gateway under test on CPU1, as in npm run bench.
const PIN = process.env.PIN !== '0';
const pinned = (cpu: number, cmd: string, args: string[]): [string, string[]] => (PIN ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args]);
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

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function main(): Promise<void> {
  execFileSync('sh', ['-c', '(command -v redis-server && command -v wrk) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server wrk)'], { stdio: 'ignore' });
  const certs = join(TMP, 'tls');
  genCerts({ dir: certs, edgeHosts: ['localhost', '127.0.0.1'], nodeHosts: ['localhost', '127.0.0.1'], days: 2 });
  const c = (n: string) => join(certs, n);
  const redisPort = await freePort();
  children.push(spawn(...pinned(0, 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', TMP]), { stdio: 'ignore' }));
  await waitTcp(redisPort);
  const node = await startExampleNode({ cert: readFileSync(c('node.crt')), key: readFileSync(c('node.key')), ca: readFileSync(c('ca.crt')) });
  writeFileSync(join(TMP, 'key.pem'), await generatePrivateKeyPem('ES256'));
  // A cheap argon2 hash: this measures the store, not the password check (argon2 reads its cost from the hash).
  const passwordHash = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
  // A and B share the Redis store; M is the same gateway on the memory store (the same-run reference for refresh).
  const ports = [await freePort(), await freePort(), await freePort()];
  const gatewayPids: number[] = [];
  const spawnGateway = (...a: Parameters<typeof spawn>): number => {
    const child = spawn(...a);
    children.push(child);
    return child.pid!;
  };
  for (const [i, port] of ports.entries()) {
    const file = join(TMP, `mlgate-${i}.json`);
    const store = i < 2 ? { kind: 'redis', redis: { mode: 'standalone', url: `redis://127.0.0.1:${redisPort}` } } : { kind: 'memory' };
    writeFileSync(file, JSON.stringify({
      mode: 'production',
      server: { host: '127.0.0.1', port, tls: { certFile: c('edge.crt'), keyFile: c('edge.key') } },
      auth: { providers: ['admin'], admin: { enabled: true, passwordHash }, throttle: { enabled: false } },
      tokens: { signingKeys: [{ kid: 'bench', privateKeyFile: join(TMP, 'key.pem') }] },
      store,
      upstream: { url: node.url, servername: 'localhost', caFile: c('ca.crt'), clientCertFile: c('gateway-client.crt'), clientKeyFile: c('gateway-client.key') },
      log: { level: 'warn' },
    }));
    const prof = process.env.CPU_PROF && i !== 1 ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CPU_PROF}`, `--cpu-prof-name=mlgate-refresh-${i === 0 ? 'redis' : 'memory'}-${Date.now()}.cpuprofile`] : [];
    const args = [...prof, '--max-semi-space-size=16', '--disable-warning=DEP0169', join(ROOT, 'src/main.ts'), '--config', file];
    const [cmd, argv] = i === 1 ? [join(ROOT, 'node_modules/.bin/node'), args] : pinned(1, join(ROOT, 'node_modules/.bin/node'), args);
    gatewayPids.push(spawnGateway(cmd, argv, { stdio: 'ignore' }));
  }
  for (const p of ports) await waitTcp(p);
  const [A, B, M] = ports as [number, number, number];

  // The load client on CPU0 with the refresh chains, the gateway alone on CPU1: memory store first, then Redis.
  const refreshRun = async (port: number, pid: number) => {
    const tokens = await Promise.all(Array.from({ length: CHAINS }, () => login(port).then((t) => t.refresh_token)));
    await refreshLoad({ port, refreshTokens: await Promise.all(Array.from({ length: CHAINS }, () => login(port).then((t) => t.refresh_token))), seconds: 2, dir: TMP, pinCpu: PIN ? 0 : undefined });
    const cpu0 = cpuSeconds(pid);
    const r = await refreshLoad({ port, refreshTokens: tokens, seconds: DUR, dir: TMP, pinCpu: PIN ? 0 : undefined });
    return { ...r, cpuUsPerRefresh: ((cpuSeconds(pid) - cpu0) / (r.ok + r.failures)) * 1e6 };
  };
  log(`refresh rate on the memory store (${CHAINS} chains, ${DUR} s)`);
  const memoryRefresh = await refreshRun(M, gatewayPids[2]!);
  log(`  ${memoryRefresh.rps.toFixed(0)}/s p50 ${memoryRefresh.p50.toFixed(1)} ms p99 ${memoryRefresh.p99.toFixed(1)} ms cpu ${memoryRefresh.cpuUsPerRefresh.toFixed(0)} us/refresh failures ${memoryRefresh.failures} ${JSON.stringify(memoryRefresh.statuses)}`);
  // The floor under any refresh: the smallest answer mlgate gives (GET /mlgate/health), same connections and pinning.
  log(`floor: GET /mlgate/health on M (wrk, ${CHAINS} connections, ${DUR} s)`);
  const wrkArgs = ['-t1', `-c${CHAINS}`, `-d${DUR}s`, `https://127.0.0.1:${M}/mlgate/health`];
  const [wcmd, wargv] = pinned(0, 'wrk', wrkArgs);
  execFileSync(wcmd, wargv.map((a) => (a === `-d${DUR}s` ? '-d2s' : a)));
  const h0 = cpuSeconds(gatewayPids[2]!);
  const healthOut = await new Promise<string>((resolve, reject) => execFile(wcmd, wargv, { encoding: 'utf8' }, (err, out) => (err ? reject(err) : resolve(out))));
  const healthRps = Number(/Requests\/sec:\s+([\d.]+)/.exec(healthOut)?.[1]);
  const healthCpuUs = ((cpuSeconds(gatewayPids[2]!) - h0) / (healthRps * DUR)) * 1e6;
  log(`  ${healthRps.toFixed(0)}/s, cpu ${healthCpuUs.toFixed(0)} us/request`);
  log(`refresh rate on Redis (${CHAINS} chains, ${DUR} s, instance A)`);
  const redisRefresh = await refreshRun(A, gatewayPids[0]!);
  log(`  ${redisRefresh.rps.toFixed(0)}/s p50 ${redisRefresh.p50.toFixed(1)} ms p99 ${redisRefresh.p99.toFixed(1)} ms cpu ${redisRefresh.cpuUsPerRefresh.toFixed(0)} us/refresh failures ${redisRefresh.failures} ${JSON.stringify(redisRefresh.statuses)}`);

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
    const first = await call(B, 'GET', '/status', h);
    if (first.status !== 200) throw new Error(`B refused a fresh token: ${first.status} ${first.text}`);
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
    `Command: \`npm run bench:redis\` (DUR=${DUR} CHAINS=${CHAINS} PIN=${PIN ? 1 : 0}): two mlgate processes A and B on one redis-server, a third (M) on the memory store, production config, the example node upstream. Refresh load: one chain per keep-alive connection (bench/refresh-load.ts, an undici client)${PIN ? ', the client and redis-server on CPU0, the gateway under test on CPU1' : ', unpinned'}.`,
    '',
    `- POST /login/refreshToken on Redis (A): ${redisRefresh.rps.toFixed(0)}/s, p50 ${redisRefresh.p50.toFixed(2)} ms, p99 ${redisRefresh.p99.toFixed(2)} ms, gateway CPU ${redisRefresh.cpuUsPerRefresh.toFixed(0)} us/refresh, ${redisRefresh.failures} failures (target >= 3,000/s)`,
    `- POST /login/refreshToken on the memory store (M), same run: ${memoryRefresh.rps.toFixed(0)}/s, p50 ${memoryRefresh.p50.toFixed(2)} ms, p99 ${memoryRefresh.p99.toFixed(2)} ms, gateway CPU ${memoryRefresh.cpuUsPerRefresh.toFixed(0)} us/refresh, ${memoryRefresh.failures} failures; Redis/memory = ${(redisRefresh.rps / memoryRefresh.rps).toFixed(2)}`,
    `- the floor, GET /mlgate/health on M (wrk, ${CHAINS} connections): ${healthRps.toFixed(0)}/s, gateway CPU ${healthCpuUs.toFixed(0)} us/request. A refresh is that plus an ES256 signature (\`npm run bench\` measures it, AccessTokens.issue), the refresh token's hash and random bytes, the store, and a larger JSON answer.`,
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
  for (const ch of children) if (ch.exitCode === null) ch.kill('SIGTERM');
  rmSync(TMP, { recursive: true, force: true });
}
// Also on an exit nobody planned (a closed stdout pipe, Ctrl-C): no gateway or redis-server is left running.
process.on('exit', () => {
  for (const ch of children) if (ch.exitCode === null) ch.kill('SIGTERM');
});
process.on('SIGINT', () => process.exit(130));
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
