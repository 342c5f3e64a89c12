// npm run bench: mlgate (both forwarding engines) against nginx-proxy, caddy-proxy, the hono-hpm stack floor and a
// direct upstream, measured in ONE run on this machine. Every ratio below compares numbers taken minutes apart on
// the same box (shared, noisy: treat <20% as noise).
//
// Env: DUR=10 (s per run) WARM=2 RUNS=3 (rounds: every proxy target once per round, the order reversed every other
// round, medians); ANCHOR_DUR=5 ANCHOR_RUNS=3 for direct (its own phase: the upstream alone on CPU1); CONNS=64;
// PIN=1 (wrk+upstream on CPU0, server under test on CPU1); PACE_MS=50 (paced GET); QUICK=1 (DUR=3 RUNS=1, direct
// too); ONLY=a,b (targets: direct, nginx, caddy,
// floor, mlgate-hpm, mlgate-undici, cluster; a profiling run, no RESULTS.md); CPU_PROF=dir (V8 profile of each
// mlgate and floor run, summarize with ../shared/bench/stack-floor/tools/prof-top.mjs).
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword } from '../src/auth/index.ts';
import { generatePrivateKeyPem } from '../src/tokens/index.ts';
import { makeBenchPki } from './pki.ts';
import { call, cpuTicks, HZ, log, parseWrk, pinned, rssMiB, ServerSet, waitTcp, waitUp } from './processes.ts';
import { refreshLoad } from './refresh-load.ts';
import { es256SignLayers, verifyCost } from './verify-cost.ts';

const QUICK = process.env.QUICK === '1';
const DUR = Number(process.env.DUR ?? (QUICK ? 3 : 10));
const WARM = Number(process.env.WARM ?? 2);
const RUNS = Number(process.env.RUNS ?? (QUICK ? 1 : 3));
const ANCHOR = { dur: Number(process.env.ANCHOR_DUR ?? Math.min(DUR, 5)), runs: Number(process.env.ANCHOR_RUNS ?? RUNS) };
const CONNS = Number(process.env.CONNS ?? 64);
const PIN = process.env.PIN !== '0';
const ROOT = join(import.meta.dirname, '..');
const TMP = mkdtempSync(join(tmpdir(), 'mlgate-bench-'));
const PORT = { upstreamMtls: 29443, upstreamTls: 29444, nginxProxy: 29445, mlgate: 29446, caddy: 29447, floor: 29448, redis: 29449, mlgateUndici: 29450, mlgateCluster2: 29451 };
const ENGINES = ['hpm', 'undici'] as const;
const BODY = '{"status":"ok","service":"svc","version":"v1","data":{"id":12345,"name":"bench","tags":["a","b","c"]},"pad":"0123456789"}';
const ADMIN_PASSWORD = 'bench-admin-password';
const servers = new ServerSet(TMP);
const cpu = (prefixCpu: number | undefined, cmd: string, args: string[]): [string, string[]] => pinned(PIN ? prefixCpu : undefined, cmd, args);
const start = (name: string, cmd: string, args: string[], pinTo?: number, env: NodeJS.ProcessEnv = process.env): ChildProcess =>
  servers.start(name, cmd, args, { cpu: PIN ? pinTo : undefined, env });
const stop = (child: ChildProcess): Promise<void> => servers.stop(child);
const req = (port: number, method: string, path: string, body?: string, headers: Record<string, string> = {}) => call(port, method, path, { body, headers });

function need(bin: string, pkg: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
  } catch {
    if (process.getuid?.() !== 0) throw new Error(`missing ${bin}: apt-get install -y ${pkg}`);
    log(`installing ${pkg}`);
    execFileSync('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg}`], { stdio: 'ignore' });
  }
}

/** Where the RSS is, from the gateway's own metrics (prom-client default metrics). */
async function memoryReport(port: number): Promise<string> {
  const text = (await call(port, 'GET', '/mlgate/metrics')).text;
  const mib = (name: string, labels = ''): string => {
    const m = new RegExp(`^mlgate_${name}${labels.replace(/[{}"]/g, '\\$&')} ([\\d.e+]+)$`, 'm').exec(text);
    return m ? (Number(m[1]) / 1048576).toFixed(0) : '?';
  };
  return `rss ${mib('process_resident_memory_bytes')} MiB, heap total ${mib('nodejs_heap_size_total_bytes')} used ${mib('nodejs_heap_size_used_bytes')}, new space ${mib('nodejs_heap_space_size_total_bytes', '{space="new"}')}, external ${mib('nodejs_external_memory_bytes')} MiB`;
}

interface Run { rps: number; p50: number; p99: number; non2xx: number; errors: string; cpuUsPerReq: number; rss: number }

function wrk(port: number, path: string, seconds: number, opts: { token?: string; script?: string; conns?: number; pin?: boolean } = {}): Omit<Run, 'cpuUsPerReq' | 'rss'> {
  const args = ['-t1', `-c${opts.conns ?? CONNS}`, `-d${seconds}s`, '--latency'];
  if (opts.token) args.push('-H', `Authorization: Bearer ${opts.token}`);
  if (opts.script) args.push('-s', opts.script);
  args.push(`https://127.0.0.1:${port}${path}`);
  const [c, a] = cpu(opts.pin === false ? undefined : 0, 'wrk', args);
  return parseWrk(execFileSync(c, a, { encoding: 'utf8', maxBuffer: 1 << 24 }));
}

/** One wrk run against a server under test, with its CPU per request (from /proc) and RSS after. */
function runOnce(label: string, pid: number, port: number, path: string, opts: { token?: string; script?: string; dur?: number; pin?: boolean } = {}): Run {
  const c0 = cpuTicks(pid);
  const t0 = performance.now();
  const r = wrk(port, path, opts.dur ?? DUR, opts);
  const secs = (performance.now() - t0) / 1000;
  const cpuSecs = (cpuTicks(pid) - c0) / HZ;
  const run = { ...r, cpuUsPerReq: (cpuSecs / (r.rps * secs)) * 1e6, rss: rssMiB(pid) };
  log(`  ${label}: ${r.rps.toFixed(0)} req/s p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms cpu ${run.cpuUsPerReq.toFixed(1)} us/req rss ${run.rss.toFixed(0)} MiB non2xx ${r.non2xx} ${r.errors}`);
  return run;
}

/** The run with the median req/s. */
function median(runs: Run[]): Run {
  const sorted = [...runs].sort((a, b) => a.rps - b.rps);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function measure(label: string, pid: number, port: number, path: string, opts: { token?: string; script?: string; dur?: number; runs?: number; pin?: boolean } = {}): Run {
  wrk(port, path, WARM, opts);
  return median(Array.from({ length: opts.runs ?? RUNS }, (_, i) => runOnce(`${label} run ${i + 1}`, pid, port, path, opts)));
}

function nginxConf(dir: string, body: string): string {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `user root; daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_timeout 65s; keepalive_requests 1000000; ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:SSL:1m; client_max_body_size 10m;
  client_body_temp_path ${dir}/tmp/body; proxy_temp_path ${dir}/tmp/proxy; fastcgi_temp_path ${dir}/tmp/f; uwsgi_temp_path ${dir}/tmp/u; scgi_temp_path ${dir}/tmp/s;
  ${body}
}
`,
  );
  return conf;
}

async function main(): Promise<void> {
  need('nginx', 'nginx-light');
  need('wrk', 'wrk');
  need('caddy', 'caddy');
  const certs = join(TMP, 'certs');
  mkdirSync(certs, { recursive: true });
  makeBenchPki(certs);
  const c = (n: string) => join(certs, n);

  const upstreamConf = nginxConf(
    join(TMP, 'ngx-upstream'),
    `default_type application/json; ssl_certificate ${c('node.crt')}; ssl_certificate_key ${c('node.key')};
  server { listen 127.0.0.1:${PORT.upstreamMtls} ssl; ssl_client_certificate ${c('ca.crt')}; ssl_verify_client on;
    location / { return 200 '${BODY}'; } }
  server { listen 127.0.0.1:${PORT.upstreamTls} ssl; location / { return 200 '${BODY}'; } }`,
  );
  const proxyConf = nginxConf(
    join(TMP, 'ngx-proxy'),
    `upstream pool { server 127.0.0.1:${PORT.upstreamMtls}; keepalive 64; keepalive_requests 1000000; keepalive_timeout 60s; }
  server { listen 127.0.0.1:${PORT.nginxProxy} ssl; ssl_certificate ${c('edge.crt')}; ssl_certificate_key ${c('edge.key')};
    location / { proxy_pass https://pool; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_ssl_certificate ${c('gateway-client.crt')}; proxy_ssl_certificate_key ${c('gateway-client.key')};
      proxy_ssl_trusted_certificate ${c('ca.crt')}; proxy_ssl_verify on; proxy_ssl_server_name on; proxy_ssl_name localhost;
      proxy_ssl_session_reuse on; } }`,
  );

  // caddy-proxy: Debian's caddy (Go) as the same TLS -> mTLS keep-alive reverse proxy, no auth
  // (../shared/bench/anchors-stack.sh; the class of oauth2-proxy and Traefik).
  const caddyDir = join(TMP, 'caddy');
  mkdirSync(caddyDir, { recursive: true });
  const caddyEnv = { ...process.env, XDG_DATA_HOME: caddyDir, XDG_CONFIG_HOME: caddyDir, HOME: caddyDir };
  writeFileSync(
    join(caddyDir, 'Caddyfile'),
    `{
	admin off
	auto_https off
	default_sni localhost
}
https://127.0.0.1:${PORT.caddy} {
	tls ${c('edge.crt')} ${c('edge.key')}
	reverse_proxy https://127.0.0.1:${PORT.upstreamMtls} {
		transport http {
			tls_client_auth ${c('gateway-client.crt')} ${c('gateway-client.key')}
			tls_trusted_ca_certs ${c('ca.crt')}
			tls_server_name localhost
			keepalive 60s
			keepalive_idle_conns 128
			keepalive_idle_conns_per_host 128
			versions 1.1
		}
	}
}
`,
  );
  writeFileSync(
    join(caddyDir, 'caddy.json'),
    execFileSync('caddy', ['adapt', '--config', join(caddyDir, 'Caddyfile'), '--adapter', 'caddyfile'], { env: caddyEnv, stdio: ['ignore', 'pipe', 'ignore'] }),
  );

  writeFileSync(join(TMP, 'signing.pem'), await generatePrivateKeyPem('ES256'));
  const passwordHash = await hashPassword(ADMIN_PASSWORD);
  /** workers: cluster mode on the Redis store (absent: one process, memory store). */
  const mlgateConf = (engine: (typeof ENGINES)[number], workers?: number, port = PORT.mlgate): string => {
    const file = join(TMP, `mlgate-${engine}${workers ? `-w${workers}` : ''}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        mode: 'production',
        server: { host: '127.0.0.1', port, workers: workers ?? 1, tls: { certFile: c('edge.crt'), keyFile: c('edge.key') } },
        ...(workers ? { store: { kind: 'redis', redis: { url: `redis://127.0.0.1:${PORT.redis}` } } } : {}),
        auth: { providers: ['admin'], admin: { enabled: true, passwordHash } },
        tokens: { signingKeys: [{ kid: 'bench', privateKeyFile: join(TMP, 'signing.pem') }] },
        upstream: {
          url: `https://127.0.0.1:${PORT.upstreamMtls}`,
          servername: 'localhost',
          caFile: c('ca.crt'),
          clientCertFile: c('gateway-client.crt'),
          clientKeyFile: c('gateway-client.key'),
        },
        proxy: { engine },
        log: { level: 'warn' },
      }),
    );
    return file;
  };
  // Paced load: each connection waits PACE_MS between requests, so nginx and mlgate get about the same offered rate
  // (64 connections / 50 ms = ~1,200 req/s, well under either's capacity) and p99 shows the latency each adds, not
  // the queue at saturation (there, p50 is just connections / req/s).
  const PACE_MS = Number(process.env.PACE_MS ?? 50);
  const pacedScript = join(TMP, 'paced.lua');
  // Random gaps (uniform, mean PACE_MS): fixed ones let the connections fall into step after any pause, and the
  // server then sees bursts of every connection at once.
  writeFileSync(pacedScript, `math.randomseed(os.time())\ndelay = function() return math.random(0, ${2 * PACE_MS}) end\n`);
  const pacedRows: Array<{ label: string; run: Run }> = [];
  const memory = new Map<string, string>();
  // Paced p99 moves a lot from run to run (one stall of the box is 1% of a run): RUNS rounds, the median p99.
  const pacedSamples = new Map<string, Run[]>();
  const paced = (label: string, pid: number, port: number, token: string): void => {
    const c0 = cpuTicks(pid);
    const t0 = performance.now();
    const r = wrk(port, GET_PATH, DUR, { token, script: pacedScript });
    const secs = (performance.now() - t0) / 1000;
    const run = { ...r, cpuUsPerReq: ((cpuTicks(pid) - c0) / HZ / (r.rps * secs)) * 1e6, rss: rssMiB(pid) };
    log(`  ${label} paced GET: ${r.rps.toFixed(0)} req/s p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms non2xx ${r.non2xx} ${r.errors}`);
    pacedSamples.set(label, [...(pacedSamples.get(label) ?? []), run]);
  };
  const pacedMedians = (): void => {
    for (const [label, runs] of pacedSamples) {
      const byP99 = [...runs].sort((a, b) => a.p99 - b.p99);
      pacedRows.push({ label, run: byP99[Math.floor((byP99.length - 1) / 2)]! });
    }
  };
  const postScript = join(TMP, 'post1k.lua');
  writeFileSync(postScript, `wrk.method = "POST"\nwrk.body = string.rep("x", 1024)\nwrk.headers["Content-Type"] = "application/octet-stream"\n`);
  const loginScript = join(TMP, 'login.lua');
  writeFileSync(loginScript, `wrk.method = "POST"\nwrk.body = '{"username":"admin","password":"${ADMIN_PASSWORD}"}'\nwrk.headers["Content-Type"] = "application/json"\n`);

  const GET_PATH = '/api/svc/v1/swagger.json';
  const POST_PATH = '/api/svc/v1';
  const rows: Array<{ label: string; what: string; run: Run }> = [];
  // The anchors get a bearer header of a token's size too (they forward it unread), so every request is alike.
  const DUMMY_TOKEN = 'x'.repeat(368);
  const both = (label: string, pid: number, port: number, opts: { token?: string; dur?: number; runs?: number }): void => {
    rows.push({ label, what: 'GET', run: measure(`${label} GET`, pid, port, GET_PATH, opts) });
    rows.push({ label, what: 'POST 1KB', run: measure(`${label} POST`, pid, port, POST_PATH, { ...opts, script: postScript }) });
  };
  const sanity = async (label: string, port: number, headers: Record<string, string> = {}): Promise<void> => {
    const check = await req(port, 'GET', GET_PATH, undefined, headers);
    if (check.status !== 200 || check.text !== BODY) throw new Error(`${label} sanity failed: ${check.status} ${check.text}`);
  };

  // ONLY=a,b: just those targets (profiling runs); no login rates, no RESULTS.md.
  const only = process.env.ONLY?.split(',').map((t) => t.trim());
  const want = (target: string): boolean => !only || only.includes(target);
  // direct: the upstream itself is the server under test
  let up: ChildProcess;
  if (want('direct')) {
    up = start('upstream-direct', 'nginx', ['-c', upstreamConf], 1);
    await waitUp(PORT.upstreamTls);
    log('direct');
    both('direct', up.pid!, PORT.upstreamTls, { token: DUMMY_TOKEN, ...ANCHOR });
    await stop(up);
  }

  up = start('upstream', 'nginx', ['-c', upstreamConf], 0);
  await waitUp(PORT.upstreamTls);
  const node = join(ROOT, 'node_modules/.bin/node');
  // The same Node flags as npm start (semi-space, PITFALLS 39).
  // NODE_EXTRA: more flags for the Node servers under test (experiments: --trace-gc, other heap sizes).
  const NODE_FLAGS = ['--max-semi-space-size=16', '--disable-warning=DEP0169', ...(process.env.NODE_EXTRA?.split(' ').filter(Boolean) ?? [])];

  // Every proxy under test runs at once, each on its own port, all pinned to CPU1 (idle while another is measured),
  // and the rounds alternate between them (the order reversed every other round): a slow minute of this shared box
  // then lands on every target instead of on one, and the ratios compare like with like.
  interface Target { label: string; pid: number; port: number; token: string }
  const targets: Target[] = [];
  if (want('nginx')) {
    const proxy = start('nginx-proxy', 'nginx', ['-c', proxyConf], 1);
    await waitUp(PORT.nginxProxy);
    await sanity('nginx-proxy', PORT.nginxProxy);
    targets.push({ label: 'nginx-proxy', pid: proxy.pid!, port: PORT.nginxProxy, token: DUMMY_TOKEN });
  }
  if (want('caddy')) {
    const caddy = start('caddy-proxy', 'caddy', ['run', '--config', join(caddyDir, 'caddy.json')], 1, caddyEnv);
    await waitUp(PORT.caddy);
    await sanity('caddy-proxy', PORT.caddy);
    targets.push({ label: 'caddy-proxy', pid: caddy.pid!, port: PORT.caddy, token: DUMMY_TOKEN });
  }
  if (want('floor')) {
    const prof = process.env.CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CPU_PROF}`, `--cpu-prof-name=hono-hpm-floor-${Date.now()}.cpuprofile`] : [];
    const floor = start('hono-hpm-floor', node, [...prof, ...NODE_FLAGS, join(ROOT, 'bench/hono-hpm-floor.ts')], 1, {
      ...process.env,
      PORT: String(PORT.floor),
      UPSTREAM: `https://127.0.0.1:${PORT.upstreamMtls}`,
      CERT_DIR: certs,
      SERVERNAME: 'localhost',
    });
    await waitUp(PORT.floor);
    await sanity('hono-hpm-floor', PORT.floor);
    targets.push({ label: 'hono-hpm-floor', pid: floor.pid!, port: PORT.floor, token: DUMMY_TOKEN });
  }
  for (const engine of ENGINES) {
    const label = `mlgate-${engine}`;
    if (!want(label)) continue;
    const port = engine === 'hpm' ? PORT.mlgate : PORT.mlgateUndici;
    const prof = process.env.CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CPU_PROF}`, `--cpu-prof-name=${label}-${Date.now()}.cpuprofile`] : [];
    const gw = start(label, node, [...prof, ...NODE_FLAGS, join(ROOT, 'src/main.ts'), '--config', mlgateConf(engine, undefined, port)], 1);
    await waitUp(port, '/mlgate/health');
    const login = await req(port, 'POST', '/login', JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }), { 'content-type': 'application/json' });
    if (login.status !== 200) throw new Error(`${label} login failed: ${login.status} ${login.text}`);
    const token = JSON.parse(login.text).access_token as string;
    await sanity(label, port, { authorization: `Bearer ${token}` });
    const unauth = await req(port, 'GET', GET_PATH);
    if (unauth.status !== 401) throw new Error(`${label} without token answered ${unauth.status}`);
    targets.push({ label, pid: gw.pid!, port, token });
  }
  log(`targets: ${targets.map((t) => t.label).join(', ')} (mlgate: authenticated, authorized, assertion minted)`);
  const requests = [
    { what: 'GET', path: GET_PATH, script: undefined },
    { what: 'POST 1KB', path: POST_PATH, script: postScript },
  ] as const;
  for (const t of targets) for (const r of requests) wrk(t.port, r.path, WARM, { token: t.token, script: r.script });
  const samples = new Map<string, Run[]>();
  for (let round = 0; round < RUNS; round++) {
    for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
      for (const r of requests) {
        const key = `${t.label}|${r.what}`;
        samples.set(key, [...(samples.get(key) ?? []), runOnce(`${t.label} ${r.what} round ${round + 1}`, t.pid, t.port, r.path, { token: t.token, script: r.script })]);
      }
    }
  }
  for (const t of targets) for (const r of requests) rows.push({ label: t.label, what: r.what, run: median(samples.get(`${t.label}|${r.what}`)!) });
  for (let round = 0; round < RUNS; round++) for (const t of round % 2 === 0 ? targets : [...targets].reverse()) paced(t.label, t.pid, t.port, t.token);
  pacedMedians();
  for (const t of targets.filter((x) => x.label.startsWith('mlgate-'))) {
    memory.set(t.label, await memoryReport(t.port));
    log(`  ${t.label} memory: ${memory.get(t.label)}`);
  }

  let loginRun: ReturnType<typeof wrk> | undefined;
  let refresh: Awaited<ReturnType<typeof refreshLoad>> | undefined;
  const hpm = targets.find((t) => t.label === 'mlgate-hpm');
  if (!only && hpm) {
    log('POST /login (admin, argon2id)');
    loginRun = wrk(hpm.port, '/login', Math.min(DUR, 5), { script: loginScript, conns: 8 });
    log('POST /login/refreshToken (memory store)');
    const chains: string[] = [];
    for (let i = 0; i < 16; i++) {
      const l = await req(hpm.port, 'POST', '/login', JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }), { 'content-type': 'application/json' });
      chains.push(JSON.parse(l.text).refresh_token as string);
    }
    refresh = await refreshLoad({ port: hpm.port, refreshTokens: chains, seconds: Math.min(DUR, 5), dir: TMP, pinCpu: PIN ? 0 : undefined });
  }
  for (const ch of servers.running()) if (ch !== up) await stop(ch);

  // Cluster mode (server.workers): 1 and 2 workers of the default engine, both on the Redis store (cluster mode needs
  // it), workers and wrk not pinned: the workers need both cores, which they share with wrk and the upstream.
  const clusterRuns = new Map<number, Run>();
  if (want('cluster')) {
    need('redis-server', 'redis-server');
    const redis = start('redis', 'redis-server', ['--port', String(PORT.redis), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', TMP]);
    await waitTcp(PORT.redis);
    // Both at once on their own ports, measured in alternating rounds like the proxies above.
    const clusters: Array<{ workers: number; label: string; pid: number; port: number; token: string; child: ChildProcess }> = [];
    for (const workers of [1, 2]) {
      const label = `mlgate-hpm x${workers} (Redis, unpinned)`;
      const port = workers === 1 ? PORT.mlgate : PORT.mlgateCluster2;
      const gw = start(`mlgate-cluster-${workers}`, node, [...NODE_FLAGS, join(ROOT, 'src/main.ts'), '--config', mlgateConf('hpm', workers, port)]);
      await waitUp(port, '/mlgate/health');
      const login = await req(port, 'POST', '/login', JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }), { 'content-type': 'application/json' });
      if (login.status !== 200) throw new Error(`${label} login failed: ${login.status} ${login.text}`);
      const token = JSON.parse(login.text).access_token as string;
      await sanity(label, port, { authorization: `Bearer ${token}` });
      wrk(port, GET_PATH, WARM, { token, pin: false });
      clusters.push({ workers, label, pid: gw.pid!, port, token, child: gw });
    }
    const clusterSamples = new Map<number, Run[]>();
    for (let round = 0; round < RUNS; round++) {
      for (const cl of round % 2 === 0 ? clusters : [...clusters].reverse()) {
        clusterSamples.set(cl.workers, [...(clusterSamples.get(cl.workers) ?? []), runOnce(`${cl.label} GET round ${round + 1}`, cl.pid, cl.port, GET_PATH, { token: cl.token, pin: false })]);
      }
    }
    for (const cl of clusters) {
      const run = median(clusterSamples.get(cl.workers)!);
      clusterRuns.set(cl.workers, run);
      rows.push({ label: cl.label, what: 'GET', run });
      await stop(cl.child);
    }
    await stop(redis);
  }
  await stop(up);

  if (only) {
    for (const r of rows) process.stdout.write(`${r.label} ${r.what}: ${r.run.rps.toFixed(0)} req/s, p99 ${r.run.p99.toFixed(2)} ms, ${r.run.cpuUsPerReq.toFixed(1)} us/req, RSS ${r.run.rss.toFixed(0)} MiB\n`);
    for (const r of pacedRows) process.stdout.write(`${r.label} paced GET: ${r.run.rps.toFixed(0)} req/s, p50 ${r.run.p50.toFixed(2)} ms, p99 ${r.run.p99.toFixed(2)} ms, ${r.run.cpuUsPerReq.toFixed(1)} us/req\n`);
    return;
  }

  log('token verification cost');
  const verify = await verifyCost();
  const signLayers = await es256SignLayers();

  const find = (label: string, what: string) => rows.find((r) => r.label === label && r.what === what)!.run;
  const ratio = (a: string, b: string, what = 'GET'): string => (find(a, what).rps / find(b, what).rps).toFixed(2);
  const p99 = (a: string, what: string): string => (find(a, what).p99 / find('nginx-proxy', what).p99).toFixed(2);
  const lines: string[] = [];
  lines.push(`# mlgate benchmark — ${new Date().toISOString()}`);
  lines.push('');
  lines.push(
    `Command: \`npm run bench\` (DUR=${DUR}s RUNS=${RUNS} rounds over nginx-proxy, caddy-proxy, the floor and both mlgate engines, all running at once on their own ports and measured in turn, the order reversed every other round; ANCHOR_DUR=${ANCHOR.dur}s ANCHOR_RUNS=${ANCHOR.runs} for direct; WARM=${WARM}s CONNS=${CONNS} PIN=${PIN ? 1 : 0}). ${PIN ? 'wrk and the upstream on CPU0, the servers under test on CPU1.' : 'No CPU pinning.'}`,
  );
  lines.push(
    `Machine: ${execFileSync('sh', ['-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]).toString().trim()} x ${execFileSync('nproc').toString().trim()}; ${execFileSync('sh', ['-c', 'nginx -v 2>&1']).toString().trim()}; caddy ${execFileSync('caddy', ['version']).toString().trim().split(' ')[0]}; node ${execFileSync(node, ['--version']).toString().trim()}.`,
  );
  lines.push(
    'Each row: the round with the median req/s. mlgate rows: authenticated (ES256 bearer, verified-token cache), authorized (route table + role), assertion header, mTLS upstream; mlgate-hpm is the default engine (proxy.engine: hpm), mlgate-undici the other. nginx-proxy, caddy-proxy and hono-hpm-floor (@hono/node-server + http-proxy-middleware, bench/hono-hpm-floor.ts) forward with no auth at all; direct is the upstream alone.',
  );
  lines.push('');
  lines.push('| target | request | req/s | p50 ms | p99 ms | CPU us/req | RSS MiB | non-2xx |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    lines.push(`| ${r.label} | ${r.what} | ${r.run.rps.toFixed(0)} | ${r.run.p50.toFixed(2)} | ${r.run.p99.toFixed(2)} | ${r.run.cpuUsPerReq.toFixed(1)} | ${r.run.rss.toFixed(0)} | ${r.run.non2xx} |`);
  }
  lines.push('');
  lines.push('Ratios of req/s, GET, measured in this run (POST 1KB in brackets):');
  lines.push('');
  lines.push(`- mlgate-undici/caddy = ${ratio('mlgate-undici', 'caddy-proxy')} (target >= 1.0) [POST ${ratio('mlgate-undici', 'caddy-proxy', 'POST 1KB')}]`);
  lines.push(`- mlgate-hpm/hono-hpm-floor = ${ratio('mlgate-hpm', 'hono-hpm-floor')} (target >= 0.9) [POST ${ratio('mlgate-hpm', 'hono-hpm-floor', 'POST 1KB')}]`);
  lines.push(`- mlgate/nginx = ${ratio('mlgate-hpm', 'nginx-proxy')} (default engine hpm; target >= 0.60) [POST ${ratio('mlgate-hpm', 'nginx-proxy', 'POST 1KB')}]`);
  lines.push(`- mlgate-undici/nginx = ${ratio('mlgate-undici', 'nginx-proxy')} [POST ${ratio('mlgate-undici', 'nginx-proxy', 'POST 1KB')}]; mlgate-undici/mlgate-hpm = ${ratio('mlgate-undici', 'mlgate-hpm')} [POST ${ratio('mlgate-undici', 'mlgate-hpm', 'POST 1KB')}]`);
  lines.push(`- caddy/nginx = ${ratio('caddy-proxy', 'nginx-proxy')}, hono-hpm-floor/nginx = ${ratio('hono-hpm-floor', 'nginx-proxy')}, mlgate-hpm/direct = ${ratio('mlgate-hpm', 'direct')}, mlgate-undici/direct = ${ratio('mlgate-undici', 'direct')}`);
  lines.push(`- p99 / nginx-proxy p99 at saturation (target <= 2; closed loop, so p50 alone is ${CONNS} / req/s): mlgate-hpm ${p99('mlgate-hpm', 'GET')} [POST ${p99('mlgate-hpm', 'POST 1KB')}], mlgate-undici ${p99('mlgate-undici', 'GET')} [POST ${p99('mlgate-undici', 'POST 1KB')}]`);
  lines.push('');
  lines.push(`Paced GET (each of the ${CONNS} connections waits a random 0-${2 * PACE_MS} ms between requests: the same offered rate for every target, below saturation; the round with the median p99 of ${RUNS}):`);
  lines.push('');
  lines.push('| target | req/s | p50 ms | p99 ms | p99 / nginx-proxy p99 | CPU us/req | its core busy |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|');
  const nginxPaced = pacedRows.find((r) => r.label === 'nginx-proxy')!.run;
  for (const r of pacedRows) lines.push(`| ${r.label} | ${r.run.rps.toFixed(0)} | ${r.run.p50.toFixed(2)} | ${r.run.p99.toFixed(2)} | ${(r.run.p99 / nginxPaced.p99).toFixed(2)} | ${r.run.cpuUsPerReq.toFixed(1)} | ${((r.run.rps * r.run.cpuUsPerReq) / 1e4).toFixed(0)}% |`);
  lines.push('');
  lines.push(`- RSS after the runs (target <= 150 MiB): mlgate-hpm ${find('mlgate-hpm', 'POST 1KB').rss.toFixed(0)} MiB, mlgate-undici ${find('mlgate-undici', 'POST 1KB').rss.toFixed(0)} MiB`);
  for (const [label, report] of memory) lines.push(`  - ${label} at the end, from its /mlgate/metrics: ${report}`);
  lines.push('');
  // Attempts count against the login throttle while in flight: with 8 connections, those beyond
  // auth.throttle.perUserAndAddress (5) parallel logins of one user from one address are answered 429.
  const loginSeconds = Math.min(DUR, 5);
  const loginOk = Math.max(0, loginRun!.rps - loginRun!.non2xx / loginSeconds);
  lines.push(`- POST /login (admin, argon2id, 8 connections): ${loginOk.toFixed(1)} successful logins/s, p99 ${loginRun!.p99.toFixed(1)} ms; ${loginRun!.non2xx} answers 429 (more than auth.throttle.perUserAndAddress parallel attempts of one user from one address)`);
  lines.push(`- POST /login/refreshToken (memory store, ${refresh!.chains} chains, bench/refresh-load.ts${PIN ? ' on CPU0' : ''}): ${refresh!.rps.toFixed(0)}/s, p99 ${refresh!.p99.toFixed(1)} ms, ${refresh!.failures} failures`);
  const [w1, w2] = [clusterRuns.get(1)!, clusterRuns.get(2)!];
  lines.push(`- cluster: 2 workers / 1 worker = ${(w2.rps / w1.rps).toFixed(2)} req/s (target >= 1.5; hpm, Redis store, GET, workers and wrk not pinned, on 2 cores shared with wrk and the upstream)`);
  lines.push('- Redis refresh rate, Redis commands per proxied request and revocation propagation: `npm run bench:redis`, bench/RESULTS-redis.md.');
  lines.push('');
  lines.push('Token verification and signing cost (in process, one core):');
  lines.push('');
  lines.push('| algorithm | jose verify, us/op | mlgate AccessTokens.verify cached, us/op | AccessTokens.issue (jose sign), us CPU/op |');
  lines.push('|---|---:|---:|---:|');
  for (const v of verify) lines.push(`| ${v.alg} | ${v.uncachedUs.toFixed(1)} | ${v.cachedUs.toFixed(2)} | ${v.issueUs.toFixed(1)} |`);
  lines.push('');
  lines.push('One ES256 signature, layer by layer (us CPU/op; mlgate uses the last row through AccessTokens.issue):');
  lines.push('');
  lines.push('| layer | us CPU/op |');
  lines.push('|---|---:|');
  for (const l of signLayers) lines.push(`| ${l.layer} | ${l.us.toFixed(1)} |`);
  const text = lines.join('\n') + '\n';
  process.stdout.write(`\n${text}`);
  writeFileSync(join(ROOT, 'bench/RESULTS.md'), text);
  log('written bench/RESULTS.md');
}

function cleanup(): void {
  // SIGTERM, not SIGKILL: nginx's master then stops its workers (a killed master leaves them holding the ports).
  servers.killAll();
  if (process.env.KEEP_TMP !== '1') rmSync(TMP, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
main().then(
  () => {
    cleanup();
    process.exit(0);
  },
  (err: unknown) => {
    log(`bench failed: ${err instanceof Error ? err.stack : String(err)} (logs in ${TMP})`);
    process.env.KEEP_TMP = '1';
    cleanup();
    process.exit(1);
  },
);
