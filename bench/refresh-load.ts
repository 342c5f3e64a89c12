// Refresh load: each POST /login/refreshToken consumes its token and answers the next one, so every chain is
// sequential and the client must read each answer. wrk cannot: it calls its Lua request() again when a TLS write
// has to be retried, which drops a token and kills a chain. This is an undici client (one keep-alive connection per
// chain) in its own process, so it can be pinned away from the gateway under test.
//
// As a module: refreshLoad() spawns this file. As a script: node bench/refresh-load.ts PORT SECONDS TOKENS_FILE.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';

export interface RefreshLoadResult { rps: number; p50: number; p99: number; ok: number; failures: number; chains: number; statuses: Record<string, number> }

/** `pinCpu`: run the client under taskset on that CPU. Asynchronous: the caller's event loop may host the upstream. */
export async function refreshLoad(opts: { port: number; refreshTokens: string[]; seconds: number; dir: string; pinCpu?: number }): Promise<RefreshLoadResult> {
  const file = join(opts.dir, `refresh-tokens-${opts.port}.txt`);
  writeFileSync(file, opts.refreshTokens.join('\n'));
  const node = join(import.meta.dirname, '../node_modules/.bin/node');
  const args = ['--disable-warning=DEP0169', import.meta.filename, String(opts.port), String(opts.seconds), file];
  const [cmd, argv] = opts.pinCpu === undefined ? [node, args] : ['taskset', ['-c', String(opts.pinCpu), node, ...args]];
  const stdout = await new Promise<string>((resolve, reject) => execFile(cmd, argv, { encoding: 'utf8' }, (err, out) => (err ? reject(err) : resolve(out))));
  return JSON.parse(stdout) as RefreshLoadResult;
}

async function run(port: number, seconds: number, tokens: string[]): Promise<RefreshLoadResult> {
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
