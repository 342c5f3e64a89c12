// identity: serviceAccount against example nodes that require their own login (like an unmodified ML Server web
// node): mlgate logs in, sends its token, renews it before it expires, logs in again when the node forgets it.
import { describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import type { ExampleNode } from '../../src/example-node/index.ts';
import { expectErrorShape, loginAdmin, request } from './setup.ts';
import { closedAfterEach, sleep, startGateway, startNode, type Gw } from './upstream-setup.ts';

const SVC = { username: 'mlgate-svc', password: 'Svc-password-1' };
const ENV = { MLGATE_TEST_SVC_PASSWORD: SVC.password };

const track = closedAfterEach();
async function loginNode(ttl: number, port?: number, password = SVC.password): Promise<ExampleNode> {
  const n = await startNode({ requireLogin: { username: SVC.username, password, tokenTtlSeconds: ttl }, ...(port ? { port } : {}) });
  return track(n);
}
async function gw(upstream: Record<string, unknown>): Promise<Gw> {
  const g = await startGateway(
    {
      identity: 'serviceAccount',
      serviceAccount: { username: SVC.username, passwordEnv: 'MLGATE_TEST_SVC_PASSWORD', refreshBeforeSeconds: 1 },
      ...upstream,
    },
    {},
    ENV,
  );
  return track(g);
}
const forwarded = (n: ExampleNode) => n.received.filter((r) => r.headers['x-request-id'] !== undefined);

describe('serviceAccount identity', () => {
  it("sends the node's own token instead of the client's, and the user in the assertion", async () => {
    const node = await loginNode(3600);
    const g = await gw({ url: node.url });
    const { access_token } = await loginAdmin(g);
    const r = await request(g, 'GET', '/services', { token: access_token });
    expect(r.status).toBe(200);
    expect(node.loginStats.logins).toBe(1);
    const h = forwarded(node).at(-1)!.headers;
    expect(h.authorization).toMatch(/^Bearer [A-Za-z0-9_-]{32}$/);
    expect(h.authorization).not.toContain(access_token);
    expect(decodeJwt(String(h['x-mlgate-assertion']))).toMatchObject({ sub: 'admin', roles: ['Owner'] });
    // One login serves every request while the token is good.
    for (let i = 0; i < 5; i++) expect((await request(g, 'GET', '/services', { token: access_token })).status).toBe(200);
    expect(node.loginStats).toMatchObject({ logins: 1, refreshes: 0, rejected: 0 });
  });

  it("renews the node's short-lived token with /login/refreshToken before it expires: no request ever carries an expired one", async () => {
    const node = await loginNode(2);
    const g = await gw({ url: node.url });
    const { access_token } = await loginAdmin(g);
    const statuses: number[] = [];
    // ~5 s of traffic over tokens that live 2 s (bounded: 25 requests).
    for (let i = 0; i < 25; i++) {
      statuses.push((await request(g, 'GET', '/services', { token: access_token })).status);
      await sleep(200);
    }
    const tokens = new Set(forwarded(node).map((r) => r.headers.authorization));
    console.log(`[serviceAccount] 25 requests over ${tokens.size} node tokens: ${JSON.stringify(node.loginStats)}`);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(node.loginStats.logins).toBe(1);
    expect(node.loginStats.refreshes).toBeGreaterThanOrEqual(2);
    expect(node.loginStats.rejected).toBe(0);
    expect(tokens.size).toBeGreaterThanOrEqual(3);
    expect(g.logs('service-account token refreshed').length).toBe(node.loginStats.refreshes);
  });

  it('logs in afresh when the refresh is refused (the node restarted and forgot its tokens)', async () => {
    let node = await loginNode(2);
    const port = node.port;
    const g = await gw({ url: node.url });
    const { access_token } = await loginAdmin(g);
    expect((await request(g, 'GET', '/services', { token: access_token })).status).toBe(200);
    await node.close();
    node = await loginNode(2, port);
    await sleep(1600); // past the renewal point and past the moment the gateway stops sending the old token
    expect((await request(g, 'GET', '/services', { token: access_token })).status).toBe(200);
    expect(node.loginStats).toMatchObject({ logins: 1, refusedRefreshes: 1, rejected: 0 });
    expect(g.logs('service-account refresh refused; logging in again')).toHaveLength(1);
  });

  it('re-logs in once after a 401 and repeats an idempotent request; a POST gets a clear 502 instead of being repeated', async () => {
    let node = await loginNode(3600);
    const port = node.port;
    const g = await gw({ url: node.url });
    const { access_token } = await loginAdmin(g);
    expect((await request(g, 'GET', '/services', { token: access_token })).status).toBe(200);

    // Restarted node: the gateway's token is unknown there (401), the gateway logs in again and repeats the GET.
    await node.close();
    node = await loginNode(3600, port);
    expect((await request(g, 'GET', '/services', { token: access_token })).status).toBe(200);
    expect(node.loginStats).toMatchObject({ logins: 1, rejected: 1 });
    expect(forwarded(node).map((r) => r.method)).toEqual(['GET', 'GET']);

    // Again, with a publish: not repeated (the node may have read its body); the next call works at once.
    await node.close();
    node = await loginNode(3600, port);
    const pub = await request(g, 'POST', '/services/sa/1', { token: access_token, json: { code: 'x' } });
    expectErrorShape(pub, 502, 'bad_gateway');
    expect(pub.json().message).toMatch(/service account token/);
    expect(node.services.size).toBe(0);
    expect((await request(g, 'POST', '/services/sa/1', { token: access_token, json: { code: 'x' } })).status).toBe(201);
    expect(node.loginStats).toMatchObject({ logins: 1, rejected: 1 });
  });

  it('logs in to each node by default, with one token per node', async () => {
    const [a, b] = [await loginNode(3600), await loginNode(3600)];
    const g = await gw({ nodes: [{ url: a.url }, { url: b.url }] });
    const { access_token } = await loginAdmin(g);
    for (let i = 0; i < 4; i++) expect((await request(g, 'GET', '/services', { token: access_token })).status).toBe(200);
    expect([a.loginStats.logins, b.loginStats.logins]).toEqual([1, 1]);
    expect(forwarded(a)).toHaveLength(2);
    expect(forwarded(b)).toHaveLength(2);
  });

  it('answers 502 with a clear body when the node refuses the service-account password', async () => {
    const node = await loginNode(3600, undefined, 'another-password');
    const g = await gw({ url: node.url });
    const { access_token } = await loginAdmin(g);
    const r = await request(g, 'GET', '/services', { token: access_token });
    expectErrorShape(r, 502, 'bad_gateway');
    expect(r.json().message).toMatch(/refused the gateway's service account/);
    expect(g.logs('node request failed').some((l) => String(l.reason).includes('answered 401'))).toBe(true);
    expect(JSON.stringify(g.logLines)).not.toContain(SVC.password);
  });
});
