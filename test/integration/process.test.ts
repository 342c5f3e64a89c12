// The real `mlgate` process: startup refusal of a bad config, and graceful shutdown under load.
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/auth/index.ts';
import { startExampleNode, type ExampleNode } from '../../src/example-node/index.ts';
import { ADMIN_PASSWORD, CA, NODE_CLIENT_TLS, ROOT, cert, requestOnce } from './setup.ts';

const NODE = join(ROOT, 'node_modules/.bin/node');
let dir: string;
let node: ExampleNode;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mlgate-proc-'));
  node = await startExampleNode({ cert: readFileSync(cert('node.crt')), key: readFileSync(cert('node.key')), ca: CA });
});
afterAll(async () => {
  await node?.close();
  rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = https.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function startGateway(configFile: string): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(NODE, ['--disable-warning=DEP0169', join(ROOT, 'src/main.ts'), '--config', configFile], {
    env: { ...process.env, MLGATE_CONFIG: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

async function writeConfig(port: number, server: Record<string, unknown> = {}): Promise<string> {
  const file = join(dir, `mlgate-${port}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      mode: 'dev',
      server: { host: '127.0.0.1', port, tls: { certFile: cert('edge.crt'), keyFile: cert('edge.key') }, ...server },
      auth: { providers: ['admin'], admin: { enabled: true, passwordHash: await hashPassword(ADMIN_PASSWORD) } },
      upstream: { url: node.url, ...NODE_CLIENT_TLS },
    }),
  );
  return file;
}

const call = requestOnce;

async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 150; i++) {
    try {
      await call(port, 'GET', '/mlgate/health', {});
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('gateway did not start');
}

/** A plain TCP connection that never starts its TLS handshake; resolves with the ms until the server closed it. */
function silentConnection(port: number): { closedAfter: Promise<number> } {
  const start = Date.now();
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  return { closedAfter: new Promise((r) => socket.once('close', () => r(Date.now() - start))) };
}

describe('connections that never start TLS', () => {
  it('are closed after server.headersTimeoutMs, and shutdown does not wait for them beyond its 10 s', async () => {
    const port = await freePort();
    const g = startGateway(await writeConfig(port, { headersTimeoutMs: 1000 }));
    await waitListening(port);
    expect(await silentConnection(port).closedAfter).toBeLessThan(3000);
    g.child.kill('SIGTERM');
    expect(await g.exited).toBe(0);

    const port2 = await freePort();
    const g2 = startGateway(await writeConfig(port2));
    await waitListening(port2);
    const idle = silentConnection(port2);
    await new Promise((r) => setTimeout(r, 200));
    const signalled = Date.now();
    g2.child.kill('SIGTERM');
    expect(await g2.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(12_000);
    expect(await idle.closedAfter).toBeLessThan(13_000);
  }, 30_000);
});

describe('mlgate process', () => {
  it('refuses to start with a bad config, listing every problem, exit code 2', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'server:\n  port: "x"\n  nosuch: 1\ntokens:\n  algorithm: HS256\n');
    const g = startGateway(file);
    expect(await g.exited).toBe(2);
    const out = g.output();
    expect(out).toContain('server.port');
    expect(out).toContain('nosuch');
    expect(out).toContain('tokens.algorithm');
    expect(out).toContain('upstream');
    expect(out).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace
  });

  it('SIGTERM under 64 connections: requests in flight complete, new ones are refused, exit code 0', async () => {
    const port = await freePort();
    const g = startGateway(await writeConfig(port));
    await waitListening(port);
    const login = JSON.parse((await call(port, 'POST', '/login', { 'content-type': 'application/json' }, JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }))).text);
    const auth = { authorization: `Bearer ${login.access_token}` };
    expect((await call(port, 'POST', '/services/drain/1', { ...auth, 'content-type': 'application/json' }, '{"code":"x"}')).status).toBe(201);

    // 64 uploads, each stopped half way so that all of them are in flight when SIGTERM arrives.
    const half = Buffer.alloc(256 * 1024, 1);
    const whole = createHash('sha256').update(half).update(half).digest('hex');
    const started: Array<() => void> = [];
    const answers = Array.from({ length: 64 }, () =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const r = https.request(
          { host: '127.0.0.1', port, method: 'POST', path: '/api/drain/1', ca: CA, servername: 'localhost', agent: false,
            headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(half.length * 2) } },
          (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        r.on('error', reject);
        r.write(half);
        started.push(() => r.end(half));
      }),
    );
    // Wait until every upload has been forwarded: 64 gateway connections open at the node.
    const atNode = () => Number(execSync(`ss -Htn state established '( sport = :${node.port} )' | wc -l`).toString().trim());
    for (let i = 0; i < 200 && atNode() < 64; i++) await new Promise((r) => setTimeout(r, 50));
    expect(atNode()).toBeGreaterThanOrEqual(64);
    g.child.kill('SIGTERM');
    // The listener closes: new connections are refused (poll: the signal is handled asynchronously).
    let refused: unknown;
    for (let i = 0; i < 100 && !refused; i++) {
      await call(port, 'GET', '/mlgate/health', {}).then(
        () => new Promise((r) => setTimeout(r, 50)),
        (err: unknown) => (refused = err),
      );
    }
    expect(String(refused)).toMatch(/ECONNREFUSED|ECONNRESET|socket hang up/);
    for (const finish of started) finish();
    const results = await Promise.all(answers);
    expect(results.filter((r) => r.status === 200)).toHaveLength(64);
    for (const r of results) expect(JSON.parse(r.text).sha256).toBe(whole);
    expect(await g.exited).toBe(0);
    expect(g.output()).toContain('stopped');
  });
});
