// Real redis-server / redis-sentinel processes for tests: free loopback ports, a temp dir each, no persistence unless
// asked. Standalone servers, a Sentinel topology (1 master, 1 replica, 3 sentinels) and a 3-master Cluster.
// Installs redis-server/redis-sentinel with apt when they are missing and we are root. Nothing is mocked.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_SERVER_BIN = '/usr/bin/redis-server';
export const REDIS_SENTINEL_BIN = '/usr/bin/redis-sentinel';
export const REDIS_CLI_BIN = '/usr/bin/redis-cli';

export function ensureRedisInstalled(): void {
  if (existsSync(REDIS_SERVER_BIN) && existsSync(REDIS_SENTINEL_BIN) && existsSync(REDIS_CLI_BIN)) return;
  if (process.getuid?.() !== 0) throw new Error('redis is missing: apt-get install -y redis-server redis-sentinel (or run the tests as root)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore' });
  execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server', 'redis-sentinel'], { env, stdio: 'ignore' });
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => {
      const got = (s.address() as { port: number }).port;
      s.close(() => resolve(got));
    });
  });
}

/** A free loopback port; with `busPort`, port + 10000 is free too (Redis Cluster bus). */
export async function freeRedisPort(busPort = false): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await listenOnce(0);
    if (!busPort) return port;
    if (port + 10_000 > 65_535) continue;
    try {
      await listenOnce(port + 10_000);
      return port;
    } catch {
      // taken: try another
    }
  }
  throw new Error('no free port pair for a cluster node');
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** Runs redis-cli against a port; resolves its trimmed output. */
export function redisCli(port: number, args: string[], extra: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(REDIS_CLI_BIN, ['-h', '127.0.0.1', '-p', String(port), ...extra, ...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RedisServer {
  host: string;
  port: number;
  url: string;
  dir: string;
  pid(): number | undefined;
  /** The server's own output so far (bounded). */
  log(): string;
  cli(...args: string[]): Promise<string>;
  /** Starts it again on the same port and data dir (after stop/kill). */
  start(): Promise<void>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for the exit: a crash. */
  kill(): Promise<void>;
  /** Stops it and removes its dir. */
  close(): Promise<void>;
}

export interface RedisServerOptions {
  /** Append-only file with fsync on every write, so a SIGKILL loses nothing acknowledged. */
  persist?: boolean;
  /** Extra redis-server arguments (`--hz 50`, `--replicaof ...`, TLS settings). */
  args?: string[];
  /** redis-cli arguments needed to talk to it (e.g. `--tls ...`, `-a pw`). */
  cliArgs?: string[];
  /** Port redis-cli and readiness use when the server listens with TLS only. */
  port?: number;
  /** A cluster node: port + 10000 must be free too. */
  cluster?: boolean;
  /** Run redis-sentinel with this config text (`port`/`dir` lines are added). */
  sentinelConfig?: string;
}

export async function startRedis(opts: RedisServerOptions = {}): Promise<RedisServer> {
  ensureRedisInstalled();
  const port = opts.port ?? (await freeRedisPort(opts.cluster === true));
  const dir = mkdtempSync(join(tmpdir(), opts.sentinelConfig ? 'mlgate-sentinel-' : 'mlgate-redis-'));
  let child: ChildProcess | undefined;
  let output = '';

  const argv = (): [string, string[]] => {
    if (opts.sentinelConfig !== undefined) {
      const conf = join(dir, 'sentinel.conf');
      if (!existsSync(conf)) {
        writeFileSync(conf, `port ${port}\nbind 127.0.0.1\ndaemonize no\ndir ${dir}\nsentinel resolve-hostnames no\n${opts.sentinelConfig}\n`);
      }
      return [REDIS_SENTINEL_BIN, [conf]];
    }
    const persistence = opts.persist
      ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
      : ['--appendonly', 'no', '--save', ''];
    return [
      REDIS_SERVER_BIN,
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no', ...persistence, ...(opts.args ?? [])],
    ];
  };

  const server: RedisServer = {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    pid: () => child?.pid,
    log: () => output,
    cli: (...args) => redisCli(port, args, opts.cliArgs ?? []),
    async start() {
      if (child) return;
      const [bin, args] = argv();
      const c = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      children.add(c);
      const keep = (d: Buffer) => {
        output = (output + d.toString()).slice(-20_000);
      };
      c.stdout?.on('data', keep);
      c.stderr?.on('data', keep);
      c.once('exit', () => {
        children.delete(c);
        if (child === c) child = undefined;
      });
      await until(`redis on ${port} (${output.slice(-300)})`, 10_000, async () => {
        if (!child) throw new Error(`exited: ${output.slice(-500)}`);
        return (await redisCli(port, ['PING'], opts.cliArgs ?? [])) === 'PONG' ? true : undefined;
      });
    },
    async stop() {
      await signal('SIGTERM');
    },
    async kill() {
      await signal('SIGKILL');
    },
    async close() {
      await signal('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };

  async function signal(sig: NodeJS.Signals): Promise<void> {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(sig);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await exited;
    }
  }

  await server.start();
  return server;
}

// ---- Sentinel: 1 master, 1 replica, 3 sentinels -------------------------------------------------------------------

export interface SentinelTopology {
  masterName: string;
  master: RedisServer;
  replica: RedisServer;
  sentinels: RedisServer[];
  /** For config: store.redis.sentinels. */
  sentinelEndpoints: { host: string; port: number }[];
  /** The port the Sentinels currently name as master. */
  currentMasterPort(): Promise<number>;
  /**
   * SENTINEL FAILOVER, then waits until every Sentinel names the new master and it answers as master. Then, unless
   * `rejoin` is false, points the old master at the new one (REPLICAOF, what Sentinel itself does only 10-20 s later)
   * and waits until it is in sync, so that the new master has a replica again.
   */
  failover(opts?: { rejoin?: boolean }): Promise<{ from: number; to: number }>;
  close(): Promise<void>;
}

export async function startSentinelTopology(masterName = 'mlgate-test'): Promise<SentinelTopology> {
  const master = await startRedis();
  const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
  await until('replica in sync', 10_000, async () =>
    (await replica.cli('INFO', 'replication')).includes('master_link_status:up') ? true : undefined,
  );
  const conf = [
    `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
    `sentinel down-after-milliseconds ${masterName} 1000`,
    `sentinel failover-timeout ${masterName} 4000`,
    `sentinel parallel-syncs ${masterName} 1`,
  ].join('\n');
  const sentinels = await Promise.all([0, 1, 2].map(() => startRedis({ sentinelConfig: conf })));
  // Every Sentinel knows the replica and the two other Sentinels (hello messages every 2 s).
  await until('sentinels discovered each other and the replica', 15_000, async () => {
    for (const s of sentinels) {
      const info = await s.cli('SENTINEL', 'MASTER', masterName);
      const lines = info.split('\n');
      const field = (name: string) => lines[lines.indexOf(name) + 1];
      if (field('num-slaves') !== '1' || field('num-other-sentinels') !== '2') return undefined;
    }
    return true;
  });

  const currentMasterPort = async (): Promise<number> => Number((await sentinels[0]!.cli('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)).split('\n')[1]);

  return {
    masterName,
    master,
    replica,
    sentinels,
    sentinelEndpoints: sentinels.map((s) => ({ host: s.host, port: s.port })),
    currentMasterPort,
    async failover(opts = {}) {
      const from = await currentMasterPort();
      const reply = await sentinels[0]!.cli('SENTINEL', 'FAILOVER', masterName);
      if (reply !== 'OK') throw new Error(`SENTINEL FAILOVER: ${reply}`);
      const to = await until('failover complete', 20_000, async () => {
        const ports = await Promise.all(
          sentinels.map(async (s) => Number((await s.cli('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)).split('\n')[1])),
        );
        if (ports.some((p) => p === from || p !== ports[0])) return undefined;
        const role = await redisCli(ports[0]!, ['ROLE']);
        return role.startsWith('master') ? ports[0] : undefined;
      });
      if (opts.rejoin !== false) {
        const old = from === master.port ? master : replica;
        if ((await old.cli('ROLE')).startsWith('master')) {
          // As Sentinel does it: follow the new master, and drop the clients so they ask the Sentinels again.
          await old.cli('REPLICAOF', '127.0.0.1', String(to));
          await old.cli('CLIENT', 'KILL', 'TYPE', 'normal');
          await old.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
        }
        await until('old master replicating the new one', 15_000, async () =>
          (await old.cli('INFO', 'replication')).includes('master_link_status:up') ? true : undefined,
        );
      }
      return { from, to: to! };
    },
    async close() {
      await Promise.all([...sentinels, replica, master].map((s) => s.close()));
    },
  };
}

// ---- Cluster: 3 masters ---------------------------------------------------------------------------------------------

export interface RedisCluster {
  nodes: RedisServer[];
  endpoints: { host: string; port: number }[];
  close(): Promise<void>;
}

export async function startCluster(size = 3): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  for (let i = 0; i < size; i++) {
    nodes.push(
      await startRedis({
        cluster: true,
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'],
      }),
    );
  }
  await new Promise<void>((resolve, reject) => {
    execFile(
      REDIS_CLI_BIN,
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: 30_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`cluster create: ${err.message}\n${stdout}\n${stderr}`)) : resolve()),
    );
  });
  await until('cluster_state:ok on every node', 15_000, async () => {
    for (const n of nodes) {
      const info = await n.cli('CLUSTER', 'INFO');
      if (!info.includes('cluster_state:ok') || !info.includes(`cluster_known_nodes:${size}`)) return undefined;
    }
    return true;
  });
  return {
    nodes,
    endpoints: nodes.map((n) => ({ host: n.host, port: n.port })),
    async close() {
      await Promise.all(nodes.map((n) => n.close()));
    },
  };
}
