// The JSON admin API additions the console shares (one logic, two clients): paged users with sessions, service
// owners and transfer, keys, nodes, recent audit events. Each is Owner-only. Plus the per-process pieces behind them.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditRing } from '../../src/observability/index.ts';
import { ConsoleSessions } from '../../src/console/index.ts';
import { cert, expectErrorShape, loginAdmin, request, ROOT, startStack, type Stack } from '../integration/setup.ts';
import { login, PASSWORD, ROLES, TestDirectory } from '../integration/users.ts';
import { BASE, ConsoleClient } from './client.ts';

const directory = new TestDirectory({ olive: ['owners'], rita: ['readers'], ann: ['contributors'] });
let stack: Stack;
let owner: string;

beforeAll(async () => {
  stack = await startStack({
    config: { auth: { roles: ROLES }, upstream: { healthCheck: { enabled: true, intervalMs: 200 } } },
    providers: [directory],
  });
  owner = (await login(stack, 'olive')).access_token;
});
afterAll(async () => {
  await stack?.close();
});

const get = (path: string, token = owner) => request(stack, 'GET', `/mlgate/admin${path}`, { token });
const post = (path: string, json: unknown, token = owner) => request(stack, 'POST', `/mlgate/admin${path}`, { token, json });

describe('new admin API routes are Owner-only', () => {
  it('no token: 401; a Reader or Contributor: 403 owner_required (and audited)', async () => {
    const reader = (await login(stack, 'rita')).access_token;
    const contributor = (await login(stack, 'ann')).access_token;
    const calls: Array<[string, string, unknown]> = [
      ['GET', '/users', undefined],
      ['GET', '/services', undefined],
      ['POST', '/services/owner', { service: 'a/1', owner: 'rita' }],
      ['GET', '/keys', undefined],
      ['GET', '/nodes', undefined],
      ['GET', '/audit', undefined],
    ];
    for (const [method, path, json] of calls) {
      expectErrorShape(await request(stack, method, `/mlgate/admin${path}`, json === undefined ? {} : { json }), 401);
      for (const token of [reader, contributor]) {
        expectErrorShape(await request(stack, method, `/mlgate/admin${path}`, { token, ...(json === undefined ? {} : { json }) }), 403, 'owner_required');
      }
    }
    expect(await stack.gateway.store.getOwner('a/1')).toBeNull();
  });
});

describe('what an Owner sees', () => {
  it('GET /users pages users with their sessions, newest login first, with a cursor', async () => {
    await login(stack, 'ann');
    await loginAdmin(stack);
    const first = await get('/users?limit=2');
    expect(first.status).toBe(200);
    expect(first.headers['cache-control']).toBe('no-store');
    const body = first.json();
    expect(body.users.map((u: { subject: string }) => u.subject)).toEqual(['admin', 'ann']);
    expect(body.users[0].families[0]).toMatchObject({ provider: 'admin', clientAddress: '127.0.0.1' });
    expect(Object.keys(body.users[0].families[0]).sort()).toEqual(['clientAddress', 'expiresAt', 'familyId', 'lastUsedAt', 'provider', 'startedAt']);
    expect(typeof body.next).toBe('string');
    const rest = (await get(`/users?limit=200&after=${encodeURIComponent(body.next)}`)).json();
    expect(rest.users.map((u: { subject: string }) => u.subject)).toEqual(['rita', 'olive']);
    expect(rest.next).toBeNull();
    expectErrorShape(await get('/users?limit=0'), 400, 'invalid_query');
    expectErrorShape(await get('/users?limit=abc'), 400, 'invalid_query');
    expectErrorShape(await get('/users?limit=201'), 400, 'invalid_query');
  });

  it('POST /services/owner transfers (or records) an owner, audited with the previous one; GET /services lists them', async () => {
    await stack.gateway.store.setOwnerIfAbsent('model/1', 'ann');
    const moved = await post('/services/owner', { service: 'model/1', owner: 'rita' });
    expect(moved.status).toBe(200);
    expect(moved.json()).toEqual({ service: 'model/1', owner: 'rita', previous: 'ann' });
    expect((await post('/services/owner', { service: 'legacy/3', owner: 'ann' })).json().previous).toBeNull();
    expect(stack.logLines.some((l) => l.includes('"event":"admin.owner.transfer"') && l.includes('"actor":"olive"') && l.includes('"previous":"ann"'))).toBe(true);
    expectErrorShape(await post('/services/owner', { service: 'x/1' }), 400, 'missing_field');
    const list = (await get('/services')).json();
    expect(list.services).toEqual([
      { service: 'legacy/3', owner: 'ann' },
      { service: 'model/1', owner: 'rita' },
    ]);
    expect(list.next).toBeNull();
    const paged = (await get('/services?limit=1')).json();
    expect(paged).toEqual({ services: [{ service: 'legacy/3', owner: 'ann' }], next: 'legacy/3' });
    expect((await get(`/services?limit=1&after=${encodeURIComponent(paged.next)}`)).json().services).toEqual([{ service: 'model/1', owner: 'rita' }]);
  });

  it('the CLI transfers through the same route: mlgate owner <service> <owner>', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [join(ROOT, 'src/cli/index.ts'), 'owner', '--url', stack.url, '--ca', cert('ca.crt'), ...args], { env: { ...process.env, MLGATE_TOKEN: owner }, timeout: 20_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
        );
      });
    const ok = await run(['cli-model/7', 'ann']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ service: 'cli-model/7', owner: 'ann', previous: null });
    expect(await stack.gateway.store.getOwner('cli-model/7')).toBe('ann');
    expect((await run(['only-one-argument'])).code).toBe(2);
  });

  it('GET /keys shows kid, algorithm, created and active, and no key material', async () => {
    const r = await get('/keys');
    const [key] = r.json().keys;
    expect(key).toEqual({ kid: stack.gateway.keys.signer.kid, alg: 'ES256', createdAt: expect.any(String), active: true, generated: true });
    expect(Date.parse(key.createdAt)).toBeLessThanOrEqual(Date.now());
    expect(r.text).not.toMatch(/"d"|PRIVATE/);
  });

  it('GET /nodes shows health, probe latency and ejections per node', async () => {
    const until = Date.now() + 3000;
    let node = (await get('/nodes')).json().nodes[0];
    while (node.probeLatencyMs === null && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      node = (await get('/nodes')).json().nodes[0];
    }
    expect(node).toMatchObject({ url: stack.node.url.replace(/\/$/, ''), healthy: true, available: true, ejections: 0 });
    expect(node.probeLatencyMs).toBeGreaterThan(0);
  });

  it('GET /audit lists recent events of this instance, newest first, filtered by user and kind', async () => {
    await request(stack, 'POST', '/login', { json: { username: 'rita', password: 'nope' } });
    const r = (await get('/audit?user=rita&kind=login&limit=5')).json();
    expect(r.capacity).toBe(1000);
    expect(r.events[0]).toMatchObject({ event: 'login.failed', user: 'rita', clientAddress: '127.0.0.1' });
    expect(r.events.every((e: { event: string; user: string }) => e.event.startsWith('login.') && e.user === 'rita')).toBe(true);
    expect(JSON.stringify(r)).not.toContain('nope');
    const byActor = (await get('/audit?user=olive&kind=admin.owner.transfer')).json();
    expect(byActor.events.length).toBeGreaterThanOrEqual(2);
  });

  it('revoking a user through the API also ends their console sessions', async () => {
    const c = new ConsoleClient(stack.url);
    expect((await c.login('olive', PASSWORD)).status).toBe(303);
    expect((await c.get(`${BASE}/keys`)).status).toBe(200);
    const adminToken = (await loginAdmin(stack)).access_token;
    const r = await post('/revoke/user', { subject: 'olive' }, adminToken);
    expect(r.json()).toMatchObject({ revoked: 'user', subject: 'olive' });
    const after = await c.get(`${BASE}/keys`);
    expect(after.status).toBe(303);
    expect(after.location).toMatch(/\/login/);
  });
});

describe('AuditRing', () => {
  it('keeps the newest events up to its capacity, filters by user (or actor) and kind, drops secret-named fields', () => {
    const ring = new AuditRing(3);
    ring.push('login.ok', { user: 'a' }, 1);
    ring.push('login.failed', { user: 'b', password: 'leak?' }, 2);
    ring.push('admin.revoke.user', { actor: 'a', user: 'c' }, 3);
    ring.push('refresh.ok', { user: 'a' }, 4);
    expect(ring.size).toBe(3);
    expect(ring.recent({ limit: 10 }).map((e) => e.time)).toEqual([4, 3, 2]);
    expect(ring.recent({ user: 'a', limit: 10 }).map((e) => e.event)).toEqual(['refresh.ok', 'admin.revoke.user']);
    expect(ring.recent({ kind: 'login', limit: 10 }).map((e) => e.event)).toEqual(['login.failed']);
    expect(ring.recent({ kind: 'log', limit: 10 })).toEqual([]);
    expect(ring.recent({ limit: 1 })).toHaveLength(1);
    expect(ring.recent({ kind: 'login.failed', limit: 10 })[0]!.fields).toEqual({ user: 'b' });
    expect(ring.kinds()).toEqual(['admin.revoke.user', 'login.failed', 'refresh.ok']);
    const none = new AuditRing(0);
    none.push('x', {});
    expect(none.recent({ limit: 5 })).toEqual([]);
  });
});

describe('ConsoleSessions', () => {
  it('ends a session after the idle time, keeps it while used, ends a subject on request, stays bounded', () => {
    const s = new ConsoleSessions(1000);
    try {
      const { id, session } = s.create({ subject: 'admin', displayName: 'admin', provider: 'admin' }, 0);
      expect(session.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(s.touch(id, 900)).toBe(session);
      expect(s.touch(id, 1800)).toBe(session); // idle clock restarted at 900
      expect(s.touch(id, 2800)).toBeUndefined();
      expect(s.touch(id, 2801)).toBeUndefined();
      const b = s.create({ subject: 'olive', displayName: 'Olive', provider: 'test' }, 3000);
      expect(s.endSubject('olive')).toBe(1);
      expect(s.touch(b.id, 3001)).toBeUndefined();
      expect(s.touch('nonsense', 3001)).toBeUndefined();
      for (let i = 0; i < 1100; i++) s.create({ subject: `u${i}`, displayName: '', provider: 'x' }, 4000);
      expect(s.size).toBe(1000);
    } finally {
      s.close();
    }
  });
});
