// npm run bench:redis: what the Redis store costs and how fast revocation travels, with two real mlgate processes
// on one redis-server: refresh rate, Redis commands per proxied request (the hot path must make none), and the
// time from a revocation answered by instance A to instance B refusing the token (p50/p99 over TRIALS).
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import argon2 from 'argon2';
import { genCerts } from '../src/cli/gencerts.ts';
import { startExampleNode } from '../src/example-node/index.ts';
import { generatePrivateKeyPem } from '../src/tokens/index.ts';
import { call, cpuTicks, HZ, log, pinned, ServerSet, waitTcp } from './processes.ts';
import { REFRESH_CLIENT, refreshLoad } from './refresh-load.ts';

const ROOT = join(import.meta.dirname, '..');
const TMP = mkdtempSync(join(tmpdir(), 'mlgate-bench-redis-'));
const TRIALS = Number(process.env.TRIALS ?? 200);
const CHAINS = Number(process.env.CHAINS ?? 32);
const DUR = Number(process.env.DUR ?? 10);
// Memory and Redis refresh are measured in ROUNDS alternating rounds (median): this shared machine's speed drifts.
const ROUNDS = Number(process.env.ROUNDS ?? 3);
// REFRESH_ONLY=1: the refresh rounds only (e.g. with CPU_PROF), RESULTS-redis.md untouched.
const REFRESH_ONLY = process.env.REFRESH_ONLY === '1';
// Instance C: Redis, cluster mode with CLUSTER_WORKERS workers, its workers and its load client unpinned (both cores,
// shared with redis-server and each other, as on a real 2-core box); 0 leaves it out.
const CLUSTER_WORKERS = Number(process.env.CLUSTER_WORKERS ?? 2);
// PIN=1 (default): the load client and redis-server on CPU0, the gateway under test on CPU1, as in npm run bench.
const PIN = process.env.PIN !== '0';
const cpu = (n: number): number | undefined => (PIN ? n : undefined);
const PASSWORD = 'bench-redis-password';
const servers = new ServerSet(TMP);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

const agent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false });
// Kept alive: a revocation sample must not include a TLS handshake.
const callKeptAlive = (port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string) => call(port, method, path, { headers, body, agent });

const login = async (port: number) => {
  const r = await callKeptAlive(port, 'POST', '/login', { 'content-type': 'application/json' }, JSON.stringify({ username: 'admin', password: PASSWORD }));
  if (r.status !== 200) throw new Error(`login: ${r.status} ${r.text}`);
  return JSON.parse(r.text) as { access_token: string; refresh_token: string };
};

const redisCommands = (port: number): number =>
  Number(/total_commands_processed:(\d+)/.exec(execFileSync('redis-cli', ['-p', String(port), 'INFO', 'stats']).toString())?.[1]);

const cpuSeconds = (pid: number): number => cpuTicks(pid) / HZ;

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function main(): Promise<void> {
  execFileSync('sh', ['-c', '(command -v redis-server && command -v wrk) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server wrk)'], { stdio: 'ignore' });
  const certs = join(TMP, 'tls');
  genCerts({ dir: certs, edgeHosts: ['localhost', '127.0.0.1'], nodeHosts: ['localhost', '127.0.0.1'], days: 2 });
  const c = (n: string) => join(certs, n);
  const redisPort = await freePort();
  servers.start('redis', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', TMP], { cpu: cpu(0) });
  await waitTcp(redisPort);
  const node = await startExampleNode({ cert: readFileSync(c('node.crt')), key: readFileSync(c('node.key')), ca: readFileSync(c('ca.crt')) });
  writeFileSync(join(TMP, 'key.pem'), await generatePrivateKeyPem('ES256'));
  // A cheap argon2 hash: this measures the store, not the password check (argon2 reads its cost from the hash).
  const passwordHash = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
  // A and B share the Redis store; M is the same gateway on the memory store (the same-run reference for refresh);
  // C is A's configuration in cluster mode.
  const ports = [await freePort(), await freePort(), await freePort(), ...(CLUSTER_WORKERS > 0 ? [await freePort()] : [])];
  const gatewayPids: number[] = [];
  const gateways: ChildProcess[] = [];
  for (const [i, port] of ports.entries()) {
    const file = join(TMP, `mlgate-${i}.json`);
    const store = i !== 2 ? { kind: 'redis', redis: { mode: 'standalone', url: `redis://127.0.0.1:${redisPort}` } } : { kind: 'memory' };
    writeFileSync(file, JSON.stringify({
      mode: 'production',
      server: { host: '127.0.0.1', port, ...(i === 3 ? { workers: CLUSTER_WORKERS } : {}), tls: { certFile: c('edge.crt'), keyFile: c('edge.key') } },
      auth: { providers: ['admin'], admin: { enabled: true, passwordHash }, throttle: { enabled: false } },
      tokens: { signingKeys: [{ kid: 'bench', privateKeyFile: join(TMP, 'key.pem') }] },
      store,
      upstream: { url: node.url, servername: 'localhost', caFile: c('ca.crt'), clientCertFile: c('gateway-client.crt'), clientKeyFile: c('gateway-client.key') },
      log: { level: 'warn' },
    }));
    const prof = process.env.CPU_PROF && (i === 0 || i === 2) ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CPU_PROF}`, `--cpu-prof-name=mlgate-refresh-${i === 0 ? 'redis' : 'memory'}-${Date.now()}.cpuprofile`] : [];
    const args = [...prof, '--max-semi-space-size=16', '--disable-warning=DEP0169', join(ROOT, 'src/main.ts'), '--config', file];
    gateways.push(servers.start(`mlgate-${i}`, join(ROOT, 'node_modules/.bin/node'), args, { cpu: i === 1 || i === 3 ? undefined : cpu(1) }));
    gatewayPids.push(gateways.at(-1)!.pid!);
  }
  for (const p of ports) await waitTcp(p);
  const [A, B, M, C] = ports as [number, number, number, number | undefined];

  // The load client on CPU0 with the refresh chains, the gateway alone on CPU1: memory store first, then Redis.
  const refreshRun = async (port: number, pid: number, pinClient = PIN) => {
    const tokens = await Promise.all(Array.from({ length: CHAINS }, () => login(port).then((t) => t.refresh_token)));
    const pinCpu = pinClient ? 0 : undefined;
    await refreshLoad({ port, refreshTokens: await Promise.all(Array.from({ length: CHAINS }, () => login(port).then((t) => t.refresh_token))), seconds: 2, dir: TMP, pinCpu });
    const cpu0 = cpuSeconds(pid);
    const r = await refreshLoad({ port, refreshTokens: tokens, seconds: DUR, dir: TMP, pinCpu });
    return { ...r, cpuUsPerRefresh: ((cpuSeconds(pid) - cpu0) / (r.ok + r.failures)) * 1e6 };
  };
  const median = <T,>(runs: T[], by: (r: T) => number): T => [...runs].sort((a, b) => by(a) - by(b))[Math.floor(runs.length / 2)]!;
  const show = (r: Awaited<ReturnType<typeof refreshRun>>) =>
    `${r.rps.toFixed(0)}/s p50 ${r.p50.toFixed(1)} ms p99 ${r.p99.toFixed(1)} ms cpu ${r.cpuUsPerRefresh.toFixed(0)} us/refresh (client ${r.client} ${r.clientCpuUs.toFixed(0)} us) failures ${r.failures} ${JSON.stringify(r.statuses)}`;
  const memoryRuns: Awaited<ReturnType<typeof refreshRun>>[] = [];
  const redisRuns: Awaited<ReturnType<typeof refreshRun>>[] = [];
  const clusterRuns: Awaited<ReturnType<typeof refreshRun>>[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    log(`round ${round}/${ROUNDS}: refresh on the memory store (M, ${CHAINS} chains, ${DUR} s)`);
    memoryRuns.push(await refreshRun(M, gatewayPids[2]!));
    log(`  ${show(memoryRuns.at(-1)!)}`);
    log(`round ${round}/${ROUNDS}: refresh on Redis (A, ${CHAINS} chains, ${DUR} s)`);
    redisRuns.push(await refreshRun(A, gatewayPids[0]!));
    log(`  ${show(redisRuns.at(-1)!)}`);
    if (C === undefined) continue;
    log(`round ${round}/${ROUNDS}: refresh on Redis in cluster mode (C, ${CLUSTER_WORKERS} workers, unpinned, ${CHAINS} chains, ${DUR} s)`);
    clusterRuns.push(await refreshRun(C, gatewayPids[3]!, false));
    log(`  ${show(clusterRuns.at(-1)!)}`);
  }
  const clusterRefresh = clusterRuns.length > 0 ? median(clusterRuns, (r) => r.rps) : undefined;
  // Its workers' own Redis traffic (revocation feed, pings) would only add noise to the counts below.
  if (C !== undefined) await servers.stop(gateways[3]!);
  const memoryRefresh = median(memoryRuns, (r) => r.rps);
  const redisRefresh = median(redisRuns, (r) => r.rps);
  const rounds = (runs: { rps: number }[]) => runs.map((r) => r.rps.toFixed(0)).join(', ');
  if (REFRESH_ONLY) {
    log(`median: memory ${show(memoryRefresh)}; redis ${show(redisRefresh)}${clusterRefresh ? `; redis, cluster x${CLUSTER_WORKERS} ${show(clusterRefresh)}` : ''}`);
    await node.close();
    return;
  }
  // What a refresh costs without its signature and store write: the smallest answer mlgate gives (GET /mlgate/health),
  // and a refused refresh (the same POST and body read, an unknown token: hash, one store lookup, a 401 answer).
  const floorRun = async (what: string, url: string, script?: string): Promise<{ rps: number; cpuUs: number }> => {
    log(`floor: ${what} on M (wrk, ${CHAINS} connections, ${DUR} s)`);
    const [wcmd, wargv] = pinned(cpu(0), 'wrk', ['-t1', `-c${CHAINS}`, `-d${DUR}s`, ...(script ? ['-s', script] : []), url]);
    execFileSync(wcmd, wargv.map((a) => (a === `-d${DUR}s` ? '-d2s' : a)));
    const c0 = cpuSeconds(gatewayPids[2]!);
    const out = await new Promise<string>((resolve, reject) => execFile(wcmd, wargv, { encoding: 'utf8' }, (err, o) => (err ? reject(err) : resolve(o))));
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
    const cpuUs = ((cpuSeconds(gatewayPids[2]!) - c0) / (rps * DUR)) * 1e6;
    log(`  ${rps.toFixed(0)}/s, cpu ${cpuUs.toFixed(0)} us/request`);
    return { rps, cpuUs };
  };
  const health = await floorRun('GET /mlgate/health', `https://127.0.0.1:${M}/mlgate/health`);
  const refusedScript = join(TMP, 'refused-refresh.lua');
  writeFileSync(refusedScript, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = '{"refreshToken":"${'A'.repeat(43)}"}'\n`);
  const refused = await floorRun('POST /login/refreshToken, unknown token (401)', `https://127.0.0.1:${M}/login/refreshToken`, refusedScript);

  log('Redis commands per proxied request (2,000 GET /status through A, background subtracted)');
  const { access_token } = await login(A);
  const auth = { authorization: `Bearer ${access_token}` };
  await callKeptAlive(A, 'GET', '/status', auth);
  const idle0 = redisCommands(redisPort);
  const idleStart = performance.now();
  await new Promise((r) => setTimeout(r, 2000));
  const idlePerMs = (redisCommands(redisPort) - idle0) / (performance.now() - idleStart);
  const n = 2000;
  const c0 = redisCommands(redisPort);
  const s0 = performance.now();
  let ok = 0;
  for (let i = 0; i < n / 16; i++) {
    const replies = await Promise.all(Array.from({ length: 16 }, () => callKeptAlive(A, 'GET', '/status', auth)));
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
    const first = await callKeptAlive(B, 'GET', '/status', h);
    if (first.status !== 200) throw new Error(`B refused a fresh token: ${first.status} ${first.text}`);
    const del = await callKeptAlive(A, 'DELETE', `/login/refreshToken?refreshToken=${t.refresh_token}`);
    if (del.status !== 200) throw new Error(`revoke: ${del.status}`);
    const revokedAt = performance.now();
    for (;;) {
      const r = await callKeptAlive(B, 'GET', '/status', h);
      if (r.status === 401) break;
      if (performance.now() - revokedAt > 5000) throw new Error('B still accepts a revoked token after 5 s');
    }
    lat.push(performance.now() - revokedAt);
  }
  lat.sort((a, b) => a - b);

  const lines = [
    `# mlgate Redis benchmark — ${new Date().toISOString()}`,
    '',
    `Command: \`npm run bench:redis\` (DUR=${DUR} CHAINS=${CHAINS} ROUNDS=${ROUNDS} CLUSTER_WORKERS=${CLUSTER_WORKERS} PIN=${PIN ? 1 : 0}): two mlgate processes A and B on one redis-server, a third (M) on the memory store${CLUSTER_WORKERS > 0 ? `, a fourth (C) on the same redis-server in cluster mode` : ''}, production config, the example node upstream. Refresh load: one chain per keep-alive connection (bench/refresh-load.ts, ${REFRESH_CLIENT === 'wrk' ? 'wrk with one thread per chain' : 'an undici client'})${PIN ? ', the client and redis-server on CPU0, the gateway under test on CPU1' : ', unpinned'}.`,
    '',
    `- POST /login/refreshToken on Redis (A): ${redisRefresh.rps.toFixed(0)}/s, p50 ${redisRefresh.p50.toFixed(2)} ms, p99 ${redisRefresh.p99.toFixed(2)} ms, gateway CPU ${redisRefresh.cpuUsPerRefresh.toFixed(0)} us/refresh, load client ${redisRefresh.clientCpuUs.toFixed(0)} us, ${redisRefresh.failures} failures; median of ${ROUNDS} rounds (${rounds(redisRuns)}/s) (target >= 3,000/s)`,
    ...(clusterRefresh
      ? [`- the same on Redis in cluster mode (C, ${CLUSTER_WORKERS} workers; workers and load client unpinned, sharing the machine's 2 cores with each other and redis-server): ${clusterRefresh.rps.toFixed(0)}/s, p50 ${clusterRefresh.p50.toFixed(2)} ms, p99 ${clusterRefresh.p99.toFixed(2)} ms, gateway CPU ${clusterRefresh.cpuUsPerRefresh.toFixed(0)} us/refresh, load client ${clusterRefresh.clientCpuUs.toFixed(0)} us, ${clusterRefresh.failures} failures; median of ${ROUNDS} rounds (${rounds(clusterRuns)}/s) (target >= 3,000/s)`]
      : []),
    `- POST /login/refreshToken on the memory store (M), same run: ${memoryRefresh.rps.toFixed(0)}/s, p50 ${memoryRefresh.p50.toFixed(2)} ms, p99 ${memoryRefresh.p99.toFixed(2)} ms, gateway CPU ${memoryRefresh.cpuUsPerRefresh.toFixed(0)} us/refresh, load client ${memoryRefresh.clientCpuUs.toFixed(0)} us, ${memoryRefresh.failures} failures; median of ${ROUNDS} rounds alternating with Redis (${rounds(memoryRuns)}/s); Redis/memory = ${(redisRefresh.rps / memoryRefresh.rps).toFixed(2)}`,
    `- the floors on M (wrk, ${CHAINS} connections): GET /mlgate/health ${health.rps.toFixed(0)}/s at ${health.cpuUs.toFixed(0)} us of gateway CPU per request; a refused refresh (same POST and body, unknown token, 401) ${refused.rps.toFixed(0)}/s at ${refused.cpuUs.toFixed(0)} us. A refresh is the refused one plus an ES256 signature (\`npm run bench\` measures it layer by layer), the new token's random bytes and hash, the store write and a larger JSON answer.`,
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
  servers.killAll();
  rmSync(TMP, { recursive: true, force: true });
}
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
