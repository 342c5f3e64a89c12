// Several nodes behind one gateway: round robin, failover under load, retries, all-down and per-node assertions.
// Real example nodes, real gateway, real mTLS on loopback. What one engine does with one node (timeouts, limits,
// header hygiene, cuts) is in the engine contract, test/proxy/transport-contract.ts.
import { describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import type { ExampleNode } from '../../src/example-node/index.ts';
import { expectErrorShape, loginAdmin, request } from './setup.ts';
import { call, clientAgent, closedAfterEach, sleep, startGateway, startNode, type Gw } from './upstream-setup.ts';

const track = closedAfterEach();
const gw = async (upstream: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<Gw> => track(await startGateway(upstream, extra));
const node = async (port?: number): Promise<ExampleNode> => track(await startNode(port === undefined ? {} : { port }));
// Requests forwarded for clients (health probes carry no X-Request-Id).
const forwarded = (n: ExampleNode) => n.received.filter((r) => r.headers['x-request-id'] !== undefined);

describe('round robin over several nodes', () => {
  it('spreads requests evenly and passes the node to the assertion (one per token when audiences are equal)', async () => {
    const [a, b] = [await node(), await node()];
    const g = await gw({ nodes: [{ url: a.url }, { url: b.url }] });
    const { access_token } = await loginAdmin(g);
    const minted = g.gateway.assertions.stats.minted;
    for (let i = 0; i < 10; i++) expect((await request(g, 'GET', '/services', { token: access_token })).status).toBe(200);
    expect(forwarded(a)).toHaveLength(5);
    expect(forwarded(b)).toHaveLength(5);
    expect(g.gateway.assertions.stats.minted - minted).toBe(1);
  });

  it('mints one assertion per node audience when the nodes have their own', async () => {
    const [a, b] = [await node(), await node()];
    const g = await gw({ nodes: [{ url: a.url, assertionAudience: 'node-a' }, { url: b.url, assertionAudience: 'node-b' }] });
    const { access_token } = await loginAdmin(g);
    const minted = g.gateway.assertions.stats.minted;
    for (let i = 0; i < 6; i++) expect((await request(g, 'GET', '/services', { token: access_token })).status).toBe(200);
    expect(g.gateway.assertions.stats.minted - minted).toBe(2);
    const aud = (n: ExampleNode) => new Set(forwarded(n).map((r) => decodeJwt(String(r.headers['x-mlgate-assertion'])).aud));
    expect([...aud(a)]).toEqual(['node-a']);
    expect([...aud(b)]).toEqual(['node-b']);
  });
});

describe('a node closed under load', () => {
  it('loses only requests in flight on it (502/503), the other keeps answering, and it gets traffic again once back', async () => {
    const a = await node();
    let b = await node();
    const bPort = b.port;
    const g = await gw({
      nodes: [{ url: a.url }, { url: b.url }],
      // Probes take the closed node out within ~0.4 s, before its passive ejection (first failure) ends; the
      // probe timeout leaves room for two shared cores under load.
      healthCheck: { enabled: true, intervalMs: 200, timeoutMs: 1000, unhealthyAfter: 2, healthyAfter: 1 },
      ejectAfterFailures: 1,
      ejectForMs: 3000,
    });
    const { access_token } = await loginAdmin(g);
    const svc = { code: 'x', inputParameterDefinitions: [], outputParameterDefinitions: [] };
    expect((await request(g, 'POST', '/services/load/1', { token: access_token, json: svc })).status).toBe(201);
    // Published through one node; the service must exist on both (ML Server nodes share their database).
    const record = (a.services.get('load/1') ?? b.services.get('load/1'))!;
    a.services.set('load/1', record);
    b.services.set('load/1', record);

    const TOTAL = 2000;
    const CONCURRENCY = 16;
    const KILL_AT = 500;
    const RESTART_AT = 1000;
    const agent = clientAgent(CONCURRENCY);
    const byStatus = new Map<number, number>();
    const failures: { i: number; method: string; status: number; body: string }[] = [];
    let issued = 0;
    let inflightOnBAtKill = -1;
    let restarted: Promise<void> | undefined;
    let killed: Promise<void> | undefined;
    const started = Date.now();
    const bStatus = () => g.gateway.upstream.status().find((s) => s.url === b.url.replace(/\/$/, ''))!;

    const worker = async (): Promise<void> => {
      // Bounded in count (TOTAL) and time (60 s).
      while (issued < TOTAL && Date.now() - started < 60_000) {
        const i = issued++;
        if (i === KILL_AT) {
          inflightOnBAtKill = bStatus().inflight;
          killed = b.close();
        }
        if (i === RESTART_AT) {
          restarted = (async () => {
            await killed;
            b = await startNode({ port: bPort });
            b.services.set('load/1', record);
            track(b);
          })();
        }
        // 3 of 4 are GET (repeatable on another node), 1 of 4 a POST consume (never repeated).
        const post = i % 4 === 3;
        const r = post
          ? await call(agent, g.url, 'POST', '/api/load/1', { token: access_token, json: { x: i } })
          : await call(agent, g.url, 'GET', '/services', { token: access_token });
        byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
        if (r.status !== 200) failures.push({ i, method: post ? 'POST' : 'GET', status: r.status, body: r.body.slice(0, 160) });
        await sleep(4); // about 16 * 250 req/s at most: the phases last long enough for the probes
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await restarted;
    agent.destroy();
    const aServed = forwarded(a).length;
    const bServedAfterRestart = forwarded(b).length;
    const counts = Object.fromEntries([...byStatus].sort());
    console.log(
      `[failover] ${issued} requests in ${Date.now() - started} ms at concurrency ${CONCURRENCY}: status counts ${JSON.stringify(counts)}; ` +
        `in flight on the closed node when it closed: ${inflightOnBAtKill}; node A served ${aServed}, ` +
        `node B after its restart served ${bServedAfterRestart}; failures: ${JSON.stringify(failures)}`,
    );
    expect(issued).toBe(TOTAL);
    for (const f of failures) expect([502, 503], JSON.stringify(f)).toContain(f.status);
    // Lost: at most the requests that were on the closed node (in flight, or racing its ejection): never more than
    // the client's concurrency; GETs among them are repeated on the other node.
    expect(failures.length).toBeLessThanOrEqual(CONCURRENCY);
    expect(failures.every((f) => f.method === 'POST')).toBe(true);
    expect(byStatus.get(200)).toBe(TOTAL - failures.length);
    expect(bServedAfterRestart).toBeGreaterThan(50);
    expect(aServed).toBeGreaterThan(TOTAL / 2);
    expect(g.logs('node unhealthy: no requests until it answers probes again').length).toBeGreaterThanOrEqual(1);
    expect(g.logs('node healthy again').length).toBeGreaterThanOrEqual(1);
  }, 60_000);
});

// Retries depend on what the engine read of the request before it failed: both engines.
describe.each(['hpm', 'undici'] as const)('retries and failures (engine %s)', (engine) => {
  const gwE = (upstream: Record<string, unknown>) => gw(upstream, { proxy: { engine } });
  it('repeats an idempotent request on another node when the first refuses the connection, never a POST', async () => {
    const [a, b] = [await node(), await node()];
    const g = await gwE({ nodes: [{ url: a.url }, { url: b.url }], ejectAfterFailures: 100 });
    const { access_token } = await loginAdmin(g);
    await a.close();
    // Round robin: the first request goes to a (refused) and is repeated on b; the next goes to b directly.
    const get1 = await request(g, 'GET', '/services', { token: access_token });
    const get2 = await request(g, 'GET', '/services', { token: access_token });
    expect([get1.status, get2.status]).toEqual([200, 200]);
    expect(forwarded(b)).toHaveLength(2);
    // A POST that lands on a is not sent elsewhere: 503, and b never sees it.
    const before = forwarded(b).length;
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) statuses.push((await request(g, 'POST', '/services/r/1', { token: access_token, json: { code: 'x' } })).status);
    expect(statuses.sort()).toEqual([201, 503]);
    expect(forwarded(b).length - before).toBe(1);
    expect(g.logs('node request failed').some((l) => String(l.reason).includes('ECONNREFUSED'))).toBe(true);
  });

  it('answers 503 upstream_unavailable when every node is down or ejected, without waiting', async () => {
    const [a, b] = [await node(), await node()];
    const g = await gwE({ nodes: [{ url: a.url }, { url: b.url }], ejectAfterFailures: 1, ejectForMs: 60_000 });
    const { access_token } = await loginAdmin(g);
    await a.close();
    await b.close();
    const first = await request(g, 'GET', '/status', { token: access_token });
    expectErrorShape(first, 503, 'upstream_unavailable');
    // Both are ejected now: the next answer comes from the pool alone.
    expect(g.gateway.upstream.status().every((s) => !s.available)).toBe(true);
    const t0 = Date.now();
    expectErrorShape(await request(g, 'GET', '/status', { token: access_token }), 503, 'upstream_unavailable');
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('takes an ejected node back after ejectForMs when it answers again', async () => {
    const a = await node();
    const port = a.port;
    const g = await gwE({ url: a.url, ejectAfterFailures: 1, ejectForMs: 300 });
    const { access_token } = await loginAdmin(g);
    await a.close();
    expectErrorShape(await request(g, 'GET', '/status', { token: access_token }), 503, 'upstream_unavailable');
    const back = await node(port);
    await sleep(350);
    expect((await request(g, 'GET', '/status', { token: access_token })).status).toBe(200);
    expect(g.logs('node answered again: ejection lifted').length + g.logs('node ejected').length).toBeGreaterThanOrEqual(1);
    expect(forwarded(back)).toHaveLength(1);
  });
});
