// A/B: the same mlgate benchmark (authenticated GET and POST 1 KB through one engine, nginx upstream) for two
// checkouts, alternating A B A B ... in ONE run, so that an optimization is judged by a same-run ratio on a noisy box.
//
//   git archive <commit> | tar -x -C /tmp/mlgate-A && ln -s $PWD/node_modules /tmp/mlgate-A/node_modules
//   A=/tmp/mlgate-A B=. ENGINE=hpm ROUNDS=3 DUR=5 node bench/ab.ts
//
// Env: A, B (checkout roots, default B = this one), ENGINE (hpm | undici | both), ROUNDS=3, DUR=5 (s per run),
// WARM=2, CONNS=64, PIN=1 (wrk+upstream on CPU0, mlgate on CPU1), POST=1 (also POST 1 KB), CPU_PROF=dir.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashPassword } from '../src/auth/index.ts';
import { generatePrivateKeyPem } from '../src/tokens/index.ts';
import { makeBenchPki } from './pki.ts';
import { call, cpuTicks, HZ, log, parseWrk, pinned, rssMiB, ServerSet, waitUp } from './processes.ts';

const ROOT = join(import.meta.dirname, '..');
const A = resolve(process.env.A ?? '');
const B = resolve(process.env.B ?? ROOT);
const ENGINES = process.env.ENGINE === 'both' ? ['hpm', 'undici'] : [process.env.ENGINE ?? 'hpm'];
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DUR = Number(process.env.DUR ?? 5);
const WARM = Number(process.env.WARM ?? 2);
const CONNS = Number(process.env.CONNS ?? 64);
const PIN = process.env.PIN !== '0';
const POST = process.env.POST !== '0';
const TMP = mkdtempSync(join(tmpdir(), 'mlgate-ab-'));
const PORT = { upstream: 29453, mlgate: 29456 };
const BODY = '{"status":"ok","service":"svc","version":"v1","data":{"id":12345,"name":"bench","tags":["a","b","c"]},"pad":"0123456789"}';
const PASSWORD = 'bench-admin-password';
const servers = new ServerSet(TMP);
const cpu = (n: number): number | undefined => (PIN ? n : undefined);
const start = (name: string, n: number, cmd: string, args: string[]): ChildProcess => servers.start(name, cmd, args, { cpu: cpu(n) });
const stop = (child: ChildProcess): Promise<void> => servers.stop(child);
const req = (port: number, method: string, path: string, body?: string, headers: Record<string, string> = {}) => call(port, method, path, { body, headers });

interface Run { rps: number; p99: number; us: number; rss: number }
function wrk(pid: number, path: string, seconds: number, token: string, script?: string): Run {
  const args = ['-t1', `-c${CONNS}`, `-d${seconds}s`, '--latency', '-H', `Authorization: Bearer ${token}`, ...(script ? ['-s', script] : []), `https://127.0.0.1:${PORT.mlgate}${path}`];
  const c0 = cpuTicks(pid);
  const t0 = performance.now();
  const [c, a] = pinned(cpu(0), 'wrk', args);
  const out = execFileSync(c, a, { encoding: 'utf8' });
  const secs = (performance.now() - t0) / 1000;
  const { rps, p99, non2xx } = parseWrk(out);
  if (non2xx > 0) throw new Error(`non-2xx answers:\n${out}`);
  return { rps, p99, us: (((cpuTicks(pid) - c0) / HZ) / (rps * secs)) * 1e6, rss: rssMiB(pid) };
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

async function main(): Promise<void> {
  if (!process.env.A) throw new Error('A=<checkout root> is required (see the header of bench/ab.ts)');
  const certs = join(TMP, 'certs');
  mkdirSync(certs);
  makeBenchPki(certs);
  const c = (n: string): string => join(certs, n);
  mkdirSync(join(TMP, 'ngx/tmp'), { recursive: true });
  writeFileSync(
    join(TMP, 'ngx/nginx.conf'),
    `user root; daemon off; worker_processes 1; pid ${TMP}/ngx/nginx.pid; error_log ${TMP}/ngx/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_timeout 65s; keepalive_requests 1000000; client_body_temp_path ${TMP}/ngx/tmp; default_type application/json;
  server { listen 127.0.0.1:${PORT.upstream} ssl; ssl_certificate ${c('node.crt')}; ssl_certificate_key ${c('node.key')};
    ssl_client_certificate ${c('ca.crt')}; ssl_verify_client on; location / { return 200 '${BODY}'; } } }
`,
  );
  const upstream = start('upstream', 0, 'nginx', ['-c', join(TMP, 'ngx/nginx.conf')]);
  writeFileSync(join(TMP, 'signing.pem'), await generatePrivateKeyPem('ES256'));
  const passwordHash = await hashPassword(PASSWORD);
  const post = join(TMP, 'post1k.lua');
  writeFileSync(post, `wrk.method = "POST"\nwrk.body = string.rep("x", 1024)\nwrk.headers["Content-Type"] = "application/octet-stream"\n`);
  const node = join(ROOT, 'node_modules/.bin/node');
  const results = new Map<string, Run[]>();
  const add = (k: string, r: Run): void => void results.set(k, [...(results.get(k) ?? []), r]);

  for (const engine of ENGINES) {
    const conf = join(TMP, `mlgate-${engine}.json`);
    writeFileSync(
      conf,
      JSON.stringify({
        mode: 'production',
        server: { host: '127.0.0.1', port: PORT.mlgate, tls: { certFile: c('edge.crt'), keyFile: c('edge.key') } },
        auth: { providers: ['admin'], admin: { enabled: true, passwordHash } },
        tokens: { signingKeys: [{ kid: 'bench', privateKeyFile: join(TMP, 'signing.pem') }] },
        upstream: { url: `https://127.0.0.1:${PORT.upstream}`, servername: 'localhost', caFile: c('ca.crt'), clientCertFile: c('gateway-client.crt'), clientKeyFile: c('gateway-client.key') },
        proxy: { engine },
        log: { level: 'warn' },
      }),
    );
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first, so a drift of the box does not favour one side.
      for (const [side, root] of round % 2 === 0 ? [['A', A], ['B', B]] : [['B', B], ['A', A]]) {
        const prof = process.env.CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CPU_PROF}`, `--cpu-prof-name=${side}-${engine}-${round}.cpuprofile`] : [];
        const gw = start(`mlgate-${side}`, 1, node, [...prof, '--max-semi-space-size=16', '--disable-warning=DEP0169', join(root!, 'src/main.ts'), '--config', conf]);
        await waitUp(PORT.mlgate, '/mlgate/health');
        const login = await req(PORT.mlgate, 'POST', '/login', JSON.stringify({ username: 'admin', password: PASSWORD }), { 'content-type': 'application/json' });
        const token = JSON.parse(login.text).access_token as string;
        const check = await req(PORT.mlgate, 'GET', '/api/svc/v1/swagger.json', undefined, { authorization: `Bearer ${token}` });
        if (check.text !== BODY) throw new Error(`${side} sanity failed: ${check.status} ${check.text}`);
        wrk(gw.pid!, '/api/svc/v1/swagger.json', WARM, token);
        const g = wrk(gw.pid!, '/api/svc/v1/swagger.json', DUR, token);
        add(`${engine} GET ${side}`, g);
        let line = `${engine} ${side} round ${round + 1}: GET ${g.rps.toFixed(0)} req/s ${g.us.toFixed(1)} us/req p99 ${g.p99.toFixed(2)} ms`;
        if (POST) {
          const p = wrk(gw.pid!, '/api/svc/v1', DUR, token, post);
          add(`${engine} POST ${side}`, p);
          line += `; POST ${p.rps.toFixed(0)} req/s ${p.us.toFixed(1)} us/req`;
        }
        log(`${line}; RSS ${g.rss.toFixed(0)} MiB`);
        await stop(gw);
      }
    }
  }
  await stop(upstream);
  console.log(`\nA = ${A}\nB = ${B}\n${ROUNDS} alternating rounds of ${DUR} s, medians:`);
  for (const engine of ENGINES) {
    for (const what of POST ? ['GET', 'POST'] : ['GET']) {
      const a = results.get(`${engine} ${what} A`)!;
      const b = results.get(`${engine} ${what} B`)!;
      const [ra, rb, ua, ub] = [median(a.map((r) => r.rps)), median(b.map((r) => r.rps)), median(a.map((r) => r.us)), median(b.map((r) => r.us))];
      console.log(
        `${engine} ${what}: A ${ra.toFixed(0)} req/s ${ua.toFixed(1)} us/req | B ${rb.toFixed(0)} req/s ${ub.toFixed(1)} us/req | B/A req/s ${(rb / ra).toFixed(2)}, CPU/req ${(ub / ua).toFixed(2)}`,
      );
    }
  }
}

function cleanup(): void {
  servers.killAll();
  if (process.env.KEEP_TMP !== '1') rmSync(TMP, { recursive: true, force: true });
}
main().then(
  () => {
    cleanup();
    process.exit(0);
  },
  (err: unknown) => {
    log(`ab failed: ${err instanceof Error ? err.stack : String(err)} (logs in ${TMP})`);
    process.env.KEEP_TMP = '1';
    cleanup();
    process.exit(1);
  },
);
