// Refresh load: each POST /login/refreshToken consumes its token and answers the next one, so every chain is
// sequential and the client must read each answer. Two clients, chosen with REFRESH_CLIENT:
// - wrk (default): one thread per chain (-tN -cN). wrk calls its Lua request() again when a TLS write has to be
//   retried, so the chain's token changes only in response(); with one connection per thread no other request can
//   take it in between. wrk costs a fraction of a Node client's CPU, which matters when the load shares the cores;
// - undici: one keep-alive connection per chain in a Node process (the client of earlier runs, kept to compare).
//
// As a module: refreshLoad() spawns the client. As a script: node bench/refresh-load.ts PORT SECONDS TOKENS_FILE (undici).
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { HZ, parseWrk } from './processes.ts';

export type RefreshClient = 'wrk' | 'undici';
export const REFRESH_CLIENT: RefreshClient = process.env.REFRESH_CLIENT === 'undici' ? 'undici' : 'wrk';

export interface RefreshLoadResult {
  rps: number; p50: number; p99: number; ok: number; failures: number; chains: number; statuses: Record<string, number>;
  client: RefreshClient;
  /** The load client's own CPU per refresh (user + system), to see what it takes from a shared machine. */
  clientCpuUs: number;
}

/** `pinCpu`: run the client under taskset on that CPU. Asynchronous: the caller's event loop may host the upstream. */
export async function refreshLoad(opts: { port: number; refreshTokens: string[]; seconds: number; dir: string; pinCpu?: number; client?: RefreshClient }): Promise<RefreshLoadResult> {
  const client = opts.client ?? REFRESH_CLIENT;
  const [cmd, args] = client === 'wrk' ? wrkCommand(opts) : undiciCommand(opts);
  const [bin, argv] = opts.pinCpu === undefined ? [cmd, args] : ['taskset', ['-c', String(opts.pinCpu), cmd, ...args]];
  // The shell reports its children's CPU (cutime + cstime of /proc/self/stat) once the client has been reaped.
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
    execFile('sh', ['-c', '"$@"; rc=$?; echo "MLGATE_STAT $(cat /proc/$$/stat)" >&2; exit $rc', 'sh', bin, ...argv], { encoding: 'utf8', maxBuffer: 16 << 20 }, (err, out, errOut) =>
      err ? reject(new Error(`${String(err)}\n${errOut}`)) : resolve({ stdout: out, stderr: errOut })),
  );
  const stat = /MLGATE_STAT (.*)/.exec(stderr)?.[1] ?? '';
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = Number(f[13]) + Number(f[14]);
  const r = client === 'wrk' ? parseWrkRefresh(stdout, opts.refreshTokens.length) : (JSON.parse(stdout) as Omit<RefreshLoadResult, 'client' | 'clientCpuUs'>);
  return { ...r, client, clientCpuUs: ((cpu / HZ) / Math.max(1, r.ok + r.failures)) * 1e6 };
}

function wrkCommand(opts: { port: number; refreshTokens: string[]; seconds: number; dir: string }): [string, string[]] {
  const script = join(opts.dir, `refresh-chains-${opts.port}.lua`);
  writeFileSync(script, wrkScript(opts.refreshTokens));
  const n = opts.refreshTokens.length;
  return ['wrk', [`-t${n}`, `-c${n}`, `-d${opts.seconds}s`, '--latency', '-s', script, `https://127.0.0.1:${opts.port}/login/refreshToken`]];
}

/** One chain per wrk thread; the token changes only when its answer has arrived (see the top of this file). */
export function wrkScript(tokens: string[]): string {
  return `local tokens = { ${tokens.map((t) => JSON.stringify(t)).join(', ')} }
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("token", tokens[#threads])
end
ok, failed, statuses = 0, 0, {}
function request()
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, '{"refreshToken":"' .. token .. '"}')
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local issued = status == 200 and body:match('"refresh_token":"([^"]+)"')
  if issued then
    token = issued
    ok = ok + 1
  else
    failed = failed + 1
  end
end
function done(summary, latency, requests)
  local ok, failed, statuses = 0, 0, {}
  for _, t in ipairs(threads) do
    ok = ok + t:get("ok")
    failed = failed + t:get("failed")
    for s, n in pairs(t:get("statuses")) do statuses[s] = (statuses[s] or 0) + n end
  end
  local parts = {}
  for s, n in pairs(statuses) do table.insert(parts, string.format('"%d":%d', s, n)) end
  io.write(string.format('MLGATE_CHAINS {"ok":%d,"failures":%d,"statuses":{%s}}\\n', ok, failed, table.concat(parts, ",")))
end
`;
}

function parseWrkRefresh(out: string, chains: number): Omit<RefreshLoadResult, 'client' | 'clientCpuUs'> {
  const line = /MLGATE_CHAINS (\{.*\})/.exec(out)?.[1];
  if (!line) throw new Error(`wrk refresh load printed no summary:\n${out}`);
  const { ok, failures, statuses } = JSON.parse(line) as { ok: number; failures: number; statuses: Record<string, number> };
  const w = parseWrk(out);
  // wrk's Requests/sec counts every answer; a refresh per second counts the good ones.
  return { rps: (w.rps * ok) / Math.max(1, ok + failures), p50: w.p50, p99: w.p99, ok, failures, chains, statuses };
}

function undiciCommand(opts: { port: number; refreshTokens: string[]; seconds: number; dir: string }): [string, string[]] {
  const file = join(opts.dir, `refresh-tokens-${opts.port}.txt`);
  writeFileSync(file, opts.refreshTokens.join('\n'));
  const node = join(import.meta.dirname, '../node_modules/.bin/node');
  return [node, ['--disable-warning=DEP0169', import.meta.filename, String(opts.port), String(opts.seconds), file]];
}

async function run(port: number, seconds: number, tokens: string[]): Promise<Omit<RefreshLoadResult, 'client' | 'clientCpuUs'>> {
  const pool = new Pool(`https://127.0.0.1:${port}`, { connections: tokens.length, pipelining: 1, connect: { rejectUnauthorized: false } });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let failures = 0;
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    tokens.map(async (first) => {
      let token = first;
      while (performance.now() < until) {
        const start = performance.now();
        const res = await pool.request({ method: 'POST', path: '/login/refreshToken', headers: { 'content-type': 'application/json' }, body: `{"refreshToken":"${token}"}` });
        const text = await res.body.text();
        latencies.push(performance.now() - start);
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        if (res.statusCode !== 200) {
          failures++;
          return;
        }
        token = (JSON.parse(text) as { refresh_token: string }).refresh_token;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] ?? NaN;
  const ok = latencies.length - failures;
  return { rps: ok / secs, p50: pct(50), p99: pct(99), ok, failures, chains: tokens.length, statuses };
}

if (process.argv[1] === import.meta.filename) {
  const [port, seconds, file] = process.argv.slice(2);
  const tokens = readFileSync(file!, 'utf8').split('\n').filter(Boolean);
  run(Number(port), Number(seconds), tokens).then(
    (r) => process.stdout.write(JSON.stringify(r)),
    (err: unknown) => {
      process.stderr.write(`refresh load failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
