// The pool and the service account on their own, against real example nodes over real mTLS: health probes,
// passive ejection, round robin, and one login however many requests wait for it.
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startExampleNode, type ExampleNode, type ExampleNodeOptions } from '../../src/example-node/index.ts';
import { HpmTransport } from '../../src/proxy/hpm.ts';
import { UpstreamPool, type HealthCheckOptions } from '../../src/proxy/pool.ts';
import { ServiceAccount } from '../../src/proxy/service-account.ts';

const certs = (f: string): Buffer => readFileSync(new URL(`../../certs-example/${f}`, import.meta.url));
const ca = certs('ca.crt');

const tracked: { close(): Promise<void> | void }[] = [];
afterEach(async () => {
  while (tracked.length) await tracked.pop()!.close();
});
async function node(opts: Partial<ExampleNodeOptions> = {}): Promise<ExampleNode> {
  const n = await startExampleNode({ cert: certs('node.crt'), key: certs('node.key'), ca, ...opts });
  tracked.push(n);
  return n;
}
function transport(): HpmTransport {
  return new HpmTransport({
    ca,
    cert: certs('gateway-client.crt'),
    key: certs('gateway-client.key'),
    connectTimeoutMs: 1000,
    responseTimeoutMs: 2000,
    maxSockets: 8,
    idleSocketTimeoutMs: 5000,
    bodyLimitBytes: 1024 * 1024,
  });
}
const lines: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
const log = {
  info: (obj: Record<string, unknown>, msg: string) => void lines.push({ level: 'info', msg, obj }),
  warn: (obj: Record<string, unknown>, msg: string) => void lines.push({ level: 'warn', msg, obj }),
};
const HC: HealthCheckOptions = { enabled: true, path: '/status', intervalMs: 50, timeoutMs: 500, unhealthyAfter: 2, healthyAfter: 2 };
const until = async (what: string, check: () => boolean): Promise<void> => {
  const end = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

function pool(urls: string[], extra: Partial<ConstructorParameters<typeof UpstreamPool>[0]> = {}, sa?: ServiceAccount): UpstreamPool {
  const p = new UpstreamPool(
    {
      nodes: urls.map((url) => ({ url, servername: 'localhost', assertionAudience: 'mlserver-node' })),
      identity: 'assertion',
      healthCheck: HC,
      ejectAfterFailures: 2,
      ejectForMs: 60_000,
      bodyLimitBytes: 1024 * 1024,
      ...extra,
    },
    transport(),
    log,
    sa,
  );
  tracked.push(p);
  return p;
}

describe('health probes', () => {
  it('take a node out after unhealthyAfter failed probes and back after healthyAfter good ones', async () => {
    const a = await node();
    const port = a.port;
    const p = pool([a.url]);
    p.start();
    await until('first probes', () => a.received.filter((r) => r.url === '/status').length >= 2);
    expect(p.status()[0]).toMatchObject({ healthy: true, available: true });
    await a.close();
    await until('unhealthy', () => !p.status()[0]!.healthy);
    expect(lines.some((l) => l.msg.startsWith('node unhealthy'))).toBe(true);
    const back = await node({ port });
    await until('healthy again', () => p.status()[0]!.healthy);
    expect(back.received.filter((r) => r.url === '/status').length).toBeGreaterThanOrEqual(HC.healthyAfter);
    // The probes are plain GETs of the configured path, with no client identity.
    expect(back.received[0]!.headers['x-mlgate-assertion']).toBeUndefined();
  });

  it('count a 401 (ML Server wants a token on /status) as up and a 5xx as down', async () => {
    const locked = await node({ requireLogin: { username: 'u', password: 'p', tokenTtlSeconds: 60 } });
    const failing = https.createServer({ cert: certs('node.crt'), key: certs('node.key') }, (_req, res) => {
      res.writeHead(503).end();
    });
    await new Promise<void>((r) => failing.listen(0, '127.0.0.1', r));
    tracked.push({ close: () => void failing.close() });
    const p = pool([locked.url, `https://127.0.0.1:${(failing.address() as AddressInfo).port}`]);
    p.start();
    await until('the 5xx node is out', () => !p.status()[1]!.healthy);
    // The locked node answered its probes with 401 (counted by the node) and still counts as up.
    await until('two probes refused by the locked node', () => locked.loginStats.rejected >= 2);
    expect(p.status()[0]!.healthy).toBe(true);
  });

  it('stop when the pool closes', async () => {
    const a = await node();
    const p = pool([a.url]);
    p.start();
    await until('a probe', () => a.received.length > 0);
    p.close();
    const seen = a.received.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(a.received.length).toBeLessThanOrEqual(seen + 1); // at most one that was already on its way
  });
});

describe('service account', () => {
  it('logs in once however many requests wait for the token, and renews in the background before expiry', async () => {
    const a = await node({ requireLogin: { username: 'svc', password: 'pw-1', tokenTtlSeconds: 2 } });
    const t = transport();
    tracked.push(t);
    const nodes = [{ url: a.url, servername: 'localhost' }];
    const sa = new ServiceAccount({ username: 'svc', password: 'pw-1', refreshBeforeSeconds: 1, timeoutMs: 2000 }, nodes, (u, o) => t.request(u, o), log);
    const tokens = await Promise.all(Array.from({ length: 20 }, () => sa.token(nodes[0]!)));
    expect(new Set(tokens).size).toBe(1);
    expect(a.loginStats.logins).toBe(1);
    // Past the renewal point (1 s) but before the token stops being sent (1.5 s): the old token comes back at once
    // and a refresh runs behind it.
    await new Promise((r) => setTimeout(r, 1150));
    expect(await sa.token(nodes[0]!)).toBe(tokens[0]);
    await until('the background refresh', () => a.loginStats.refreshes === 1);
    const renewed = await sa.token(nodes[0]!);
    expect(renewed).not.toBe(tokens[0]);
    expect(sa.stats).toMatchObject({ logins: 1, refreshes: 1 });
    // A 401 for the current token forgets it: the next call logs in again, once.
    sa.invalidate(nodes[0]!, renewed);
    await Promise.all([sa.token(nodes[0]!), sa.token(nodes[0]!)]);
    expect(a.loginStats.logins).toBe(2);
    // A stale 401 (for a token already replaced) changes nothing.
    sa.invalidate(nodes[0]!, tokens[0]);
    expect(sa.cached(nodes[0]!)).toBeDefined();
  });
});
