// What every bench script needs around the servers it measures: start them (pinned, logged), stop them, wait for
// them, call them, and read their CPU time and memory from /proc. One copy for run.ts, ab.ts and redis.ts.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';

export function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** Clock ticks per second of /proc/<pid>/stat. */
export const HZ = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

/** The command under taskset on `cpu`, or as it is when `cpu` is undefined. */
export function pinned(cpu: number | undefined, cmd: string, args: string[]): [string, string[]] {
  return cpu === undefined ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]];
}

/** Servers started by one bench script, their output in `logDir`/<name>.log; all stopped on any exit of the script. */
export class ServerSet {
  private readonly children = new Set<ChildProcess>();
  private readonly logDir: string;

  constructor(logDir: string) {
    this.logDir = logDir;
    // Also on an exit nobody planned (a closed stdout pipe, an uncaught error): no server is left running.
    process.on('exit', () => this.killAll());
  }

  start(name: string, cmd: string, args: string[], opts: { cpu?: number | undefined; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const [c, a] = pinned(opts.cpu, cmd, args);
    const child = spawn(c, a, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const file = join(this.logDir, `${name}.log`);
    child.stdout?.on('data', (d: Buffer) => writeFileSync(file, d, { flag: 'a' }));
    child.stderr?.on('data', (d: Buffer) => writeFileSync(file, d, { flag: 'a' }));
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** SIGTERM (nginx's master then stops its workers), SIGKILL after 5 s. */
  async stop(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(t);
  }

  running(): ChildProcess[] {
    return [...this.children];
  }

  killAll(): void {
    for (const ch of this.children) if (ch.exitCode === null) ch.kill('SIGTERM');
  }
}

/**
 * One HTTPS call to a server under test (its certificate is the bench's own: not checked). `agent: false` by
 * default: a kept-alive socket idle past the server's keep-alive timeout would race its close (socket hang up).
 */
export function call(port: number, method: string, path: string, opts: { body?: string; headers?: Record<string, string>; agent?: https.Agent } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const r = https.request({ host: '127.0.0.1', port, method, path, headers: opts.headers ?? {}, rejectUnauthorized: false, agent: opts.agent ?? false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    r.on('error', reject);
    r.end(opts.body);
  });
}

export async function waitTcp(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} did not open`);
}

/** Until an HTTPS GET of `path` is answered at all (any status). */
export async function waitUp(port: number, path = '/'): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      await call(port, 'GET', path);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`port ${port} did not answer GET ${path}`);
}

/** The process and its children (nginx workers, cluster workers). */
function tree(pid: number): number[] {
  let kids: number[] = [];
  try {
    kids = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    // no children
  }
  return [pid, ...kids.flatMap(tree)];
}

/** CPU time (user + system, in clock ticks) of the process and its children. */
export function cpuTicks(pid: number): number {
  let sum = 0;
  for (const p of tree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      sum += Number(f[11]) + Number(f[12]);
    } catch {
      // exited
    }
  }
  return sum;
}

/** Resident memory of the process and its children. */
export function rssMiB(pid: number): number {
  let kib = 0;
  for (const p of tree(pid)) {
    try {
      kib += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // exited
    }
  }
  return kib / 1024;
}

export interface WrkResult { rps: number; p50: number; p99: number; non2xx: number; errors: string }

function toMs(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s.trim());
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60000;
}

/** wrk's --latency report. */
export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    p99: toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/) || 0,
    errors: /Socket errors:(.*)/.exec(out)?.[1]?.trim() ?? '',
  };
}
