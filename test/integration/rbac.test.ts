// Roles and web-service ownership through the real gateway, the real example node and real mTLS, with users of
// every role (a test CredentialProvider mapped with auth.roles). "The node received nothing" is read from
// node.received, the node's own record of every request that reached it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReceivedRequest, ServiceRecord } from '../../src/example-node/index.ts';
import { expectErrorShape, loginAdmin, request, startStack, type Reply, type Stack } from './setup.ts';
import { login, PASSWORD, roleIn, ROLES, TestDirectory, type Tokens } from './users.ts';

const directory = new TestDirectory({
  olive: ['owners', 'staff'],
  ann: ['contributors'],
  bert: ['contributors', 'staff'],
  rita: ['readers'],
  sam: ['sales'],
  dora: ['contributors'],
  eve: ['contributors'],
});

let stack: Stack;
const t: Record<string, Tokens> = {};

beforeAll(async () => {
  stack = await startStack({ config: { auth: { roles: ROLES } }, providers: [directory] });
  for (const user of ['olive', 'ann', 'bert', 'rita']) t[user] = await login(stack, user);
});
afterAll(async () => {
  await stack?.close();
});

const svc = { code: 'x <- 1', inputParameterDefinitions: [], outputParameterDefinitions: [] };

/** What the node received while fn ran (tests in a file run one at a time). */
async function reaching<T>(fn: () => Promise<T>): Promise<{ result: T; got: ReceivedRequest[] }> {
  const before = stack.node.received.length;
  const result = await fn();
  return { result, got: stack.node.received.slice(before) };
}

function as(user: string, method: string, path: string, json?: unknown): Promise<Reply> {
  return request(stack, method, path, { token: t[user]!.access_token, ...(json !== undefined ? { json } : {}) });
}

async function ownerOf(service: string, expected: string | null): Promise<string | null> {
  // Bookkeeping runs when the node's answer arrives, beside the stream to the client: wait for it briefly.
  const until = Date.now() + 2000;
  let owner = await stack.gateway.store.getOwner(service);
  while (owner !== expected && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 10));
    owner = await stack.gateway.store.getOwner(service);
  }
  return owner;
}

function expectDenied(r: Reply, code: 'role_required' | 'ownership_required', message: string): void {
  expectErrorShape(r, 403, code);
  expect(r.json().message).toBe(message);
}

const READER_PUBLISH = 'Role Contributor or Owner is required to publish a web service; you have Reader.';
const READER_UPDATE = 'Role Contributor or Owner is required to update a web service; you have Reader.';
const READER_DELETE = 'Role Contributor or Owner is required to delete a web service; you have Reader.';
const NOT_YOURS = (verb: string) =>
  `Only an Owner or the user who published this web service may ${verb} it; you have Contributor and did not publish it.`;
const NO_PUBLISHER = (verb: string) => `No publisher is recorded for this web service, so only an Owner may ${verb} it; you have Contributor.`;

describe('logins map groups to roles (auth.roles)', () => {
  it('gives each user the role of their highest group; a user in no role (Reader declared) gets no session', async () => {
    expect(roleIn(t.olive!.access_token)).toEqual(['Owner']);
    expect(roleIn(t.ann!.access_token)).toEqual(['Contributor']);
    expect(roleIn(t.bert!.access_token)).toEqual(['Contributor']);
    expect(roleIn(t.rita!.access_token)).toEqual(['Reader']);
    const sam = await request(stack, 'POST', '/login', { json: { username: 'sam', password: PASSWORD } });
    expectErrorShape(sam, 403, 'no_role');
    expect(roleIn((await loginAdmin(stack)).access_token)).toEqual(['Owner']);
  });

  it('the node sees the role in the assertion', async () => {
    const r = await as('rita', 'GET', '/user');
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ assertion: 'verified', claims: { sub: 'rita', roles: ['Reader'] } });
  });
});

describe('Reader', () => {
  beforeAll(async () => {
    expect((await as('olive', 'POST', '/services/rd-svc/1', svc)).status).toBe(201);
  });

  it.each([
    ['POST', '/services/rd-new/1', svc, READER_PUBLISH],
    ['POST', '/services/rd-new', svc, READER_PUBLISH],
    ['POST', '/realtime-services/rd-new/1', undefined, 'Role Contributor or Owner is required to publish a realtime web service; you have Reader.'],
    ['PATCH', '/services/rd-svc/1', { description: 'mine now' }, READER_UPDATE],
    ['DELETE', '/services/rd-svc/1', undefined, READER_DELETE],
    ['PATCH', '/realtime-services/rd-svc/1', undefined, 'Role Contributor or Owner is required to update a realtime web service; you have Reader.'],
  ])('cannot %s %s: 403 and the node receives nothing', async (method, path, json, message) => {
    const { result, got } = await reaching(() => as('rita', method, path, json));
    expectDenied(result, 'role_required', message);
    expect(got).toEqual([]);
    expect(stack.node.services.get('rd-svc/1')?.description).toBe('');
  });

  it('can list, get and consume (each forwarded exactly once, as sent)', async () => {
    const calls: [string, string, unknown, number][] = [
      ['GET', '/services', undefined, 200],
      ['GET', '/services/rd-svc', undefined, 200],
      ['GET', '/services/rd-svc/1', undefined, 200],
      ['POST', '/api/rd-svc/1', { x: 1 }, 200],
      ['GET', '/api/rd-svc/1/swagger.json', undefined, 200],
      ['POST', '/api/rd-svc/1/batch', [{ x: 1 }], 201],
      ['GET', '/status', undefined, 200],
    ];
    for (const [method, path, json, status] of calls) {
      const { result, got } = await reaching(() => as('rita', method, path, json));
      expect(result.status, `${method} ${path}: ${result.text}`).toBe(status);
      expect(got.map((g) => `${g.method} ${g.url}`)).toEqual([`${method} ${path}`]);
    }
    const list = await as('rita', 'GET', '/services');
    expect(list.json().map((s: ServiceRecord) => `${s.name}/${s.version}`)).toContain('rd-svc/1');
  });
});

describe('Contributors own what they publish', () => {
  it('A publishes; B can neither PATCH nor DELETE it (node receives nothing); A can', async () => {
    const pub = await as('ann', 'POST', '/services/own-svc/1', svc);
    expect(pub.status).toBe(201);
    expect(await ownerOf('own-svc/1', 'ann')).toBe('ann');

    for (const [method, verb] of [['PATCH', 'update'], ['DELETE', 'delete']] as const) {
      const { result, got } = await reaching(() => as('bert', method, '/services/own-svc/1', method === 'PATCH' ? { description: 'bert was here' } : undefined));
      expectDenied(result, 'ownership_required', NOT_YOURS(verb));
      expect(got).toEqual([]);
    }
    expect(stack.node.services.get('own-svc/1')?.description).toBe('');

    const patch = await reaching(() => as('ann', 'PATCH', '/services/own-svc/1', { description: 'v1' }));
    expect(patch.result.status).toBe(200);
    expect(patch.got.map((g) => `${g.method} ${g.url}`)).toEqual(['PATCH /services/own-svc/1']);
    expect(stack.node.services.get('own-svc/1')?.description).toBe('v1');

    const del = await reaching(() => as('ann', 'DELETE', '/services/own-svc/1'));
    expect(del.result.status).toBe(200);
    expect(del.got.map((g) => `${g.method} ${g.url}`)).toEqual(['DELETE /services/own-svc/1']);
    expect(await ownerOf('own-svc/1', null)).toBeNull();
    expect(stack.node.services.has('own-svc/1')).toBe(false);
  });

  it('an Owner can update and delete anyone\'s; the name/version is then free for a new publisher', async () => {
    expect((await as('ann', 'POST', '/services/own-svc2/1', svc)).status).toBe(201);
    expect(await ownerOf('own-svc2/1', 'ann')).toBe('ann');
    expect((await as('olive', 'PATCH', '/services/own-svc2/1', { description: 'by olive' })).status).toBe(200);
    expect(await stack.gateway.store.getOwner('own-svc2/1')).toBe('ann'); // an update does not change the owner
    const admin = await loginAdmin(stack);
    expect((await request(stack, 'DELETE', '/services/own-svc2/1', { token: admin.access_token })).status).toBe(200);
    expect(await ownerOf('own-svc2/1', null)).toBeNull();

    expect((await as('bert', 'POST', '/services/own-svc2/1', svc)).status).toBe(201);
    expect(await ownerOf('own-svc2/1', 'bert')).toBe('bert');
    expect((await as('olive', 'DELETE', '/services/own-svc2/1')).status).toBe(200);
    expect(await ownerOf('own-svc2/1', null)).toBeNull();
  });

  it('a refused or failed publish records no owner', async () => {
    expect((await as('ann', 'POST', '/services/dup-svc/1', svc)).status).toBe(201);
    const again = await as('bert', 'POST', '/services/dup-svc/1', svc);
    expect(again.status).toBe(409); // the node's answer, passed through
    expect(await ownerOf('dup-svc/1', 'ann')).toBe('ann');
    const bad = await request(stack, 'POST', '/services/bad-svc/1', {
      token: t.bert!.access_token,
      body: '{"code":',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.status).toBe(400);
    await new Promise((r) => setTimeout(r, 50));
    expect(await stack.gateway.store.getOwner('bad-svc/1')).toBeNull();
  });

  it('a failed delete keeps the owner', async () => {
    expect((await as('ann', 'POST', '/services/keep-svc/1', svc)).status).toBe(201);
    expect(await ownerOf('keep-svc/1', 'ann')).toBe('ann');
    stack.node.services.delete('keep-svc/1'); // gone at the node: its DELETE answers 404
    expect((await as('ann', 'DELETE', '/services/keep-svc/1')).status).toBe(404);
    await new Promise((r) => setTimeout(r, 50));
    expect(await stack.gateway.store.getOwner('keep-svc/1')).toBe('ann');
  });
});

describe('a stale owner record (the service removed at the node behind mlgate)', () => {
  it('is replaced by the next publish the node accepts: the new publisher owns it, the old one no longer', async () => {
    expect((await as('ann', 'POST', '/services/stale-svc/1', svc)).status).toBe(201);
    expect(await ownerOf('stale-svc/1', 'ann')).toBe('ann');
    stack.node.services.delete('stale-svc/1');
    expect((await as('bert', 'POST', '/services/stale-svc/1', svc)).status).toBe(201);
    expect(await ownerOf('stale-svc/1', 'bert')).toBe('bert');
    expectDenied(await as('ann', 'PATCH', '/services/stale-svc/1', { description: 'mine?' }), 'ownership_required', NOT_YOURS('update'));
    expect((await as('bert', 'PATCH', '/services/stale-svc/1', { description: 'mine' })).status).toBe(200);
    expect(stack.logLines.some((l) => l.includes('"event":"publish"') && l.includes('"replaced":"ann"'))).toBe(true);
  });
});

describe('a publish where the node chooses the version (POST /services/{name})', () => {
  it('records the publisher under the version from the node\'s answer', async () => {
    const { result: pub, got } = await reaching(() => as('ann', 'POST', '/services/auto-svc', svc));
    expect(pub.status).toBe(201);
    expect(got.map((g) => g.url)).toEqual(['/services/auto-svc']);
    const api: string = pub.json(); // the client still gets the node's answer unchanged
    const version = api.split('/')[3]!;
    expect(api).toBe(`/api/auto-svc/${version}`);
    expect(await ownerOf(`auto-svc/${version}`, 'ann')).toBe('ann');

    const denied = await reaching(() => as('bert', 'DELETE', `/services/auto-svc/${version}`));
    expectDenied(denied.result, 'ownership_required', NOT_YOURS('delete'));
    expect(denied.got).toEqual([]);
    expect((await as('ann', 'PATCH', `/services/auto-svc/${version}`, { description: 'x' })).status).toBe(200);
    expect((await as('ann', 'DELETE', `/services/auto-svc/${version}`)).status).toBe(200);
    expect(await ownerOf(`auto-svc/${version}`, null)).toBeNull();
  });
});

describe('a service published directly at the node (no recorded owner)', () => {
  beforeAll(() => {
    const record: ServiceRecord = {
      name: 'legacy',
      version: '1',
      description: 'published before mlgate',
      runtimeType: 'R',
      code: 'x <- 1',
      initCode: '',
      model: null,
      snapshotId: null,
      operationId: 'legacy',
      inputParameterDefinitions: [],
      outputParameterDefinitions: [],
      outputFileNames: [],
      publishedBy: 'someone-before-mlgate',
      creationTime: new Date().toISOString(),
    };
    stack.node.services.set('legacy/1', record);
  });

  it('can be changed by no Contributor, not even one who claims it, and by no Reader', async () => {
    expect(await stack.gateway.store.getOwner('legacy/1')).toBeNull();
    for (const [user, method, verb] of [
      ['ann', 'PATCH', 'update'],
      ['ann', 'DELETE', 'delete'],
      ['bert', 'DELETE', 'delete'],
    ] as const) {
      const { result, got } = await reaching(() => as(user, method, '/services/legacy/1', method === 'PATCH' ? { description: 'claimed' } : undefined));
      expectDenied(result, 'ownership_required', NO_PUBLISHER(verb));
      expect(got).toEqual([]);
    }
    const reader = await reaching(() => as('rita', 'DELETE', '/services/legacy/1'));
    expectDenied(reader.result, 'role_required', READER_DELETE);
    expect(reader.got).toEqual([]);
    // Everyone may still use it.
    expect((await as('rita', 'POST', '/api/legacy/1', { x: 1 })).status).toBe(200);
  });

  it('can be updated and deleted by an Owner', async () => {
    expect((await as('olive', 'PATCH', '/services/legacy/1', { description: 'owned by ops' })).status).toBe(200);
    expect(stack.node.services.get('legacy/1')?.description).toBe('owned by ops');
    expect((await as('olive', 'DELETE', '/services/legacy/1')).status).toBe(200);
    expect(stack.node.services.has('legacy/1')).toBe(false);
  });
});

describe('two contributors racing to publish the same name/version', () => {
  it('leave exactly one recorded owner: the one whose publish got 201 (20 rounds)', async () => {
    for (let i = 0; i < 20; i++) {
      const path = `/services/race-${i}/1`;
      const [a, b] = await Promise.all([as('ann', 'POST', path, svc), as('bert', 'POST', path, svc)]);
      const statuses = [a.status, b.status].sort();
      expect(statuses, `round ${i}`).toEqual([201, 409]);
      const winner = a.status === 201 ? 'ann' : 'bert';
      expect(await ownerOf(`race-${i}/1`, winner), `round ${i}`).toBe(winner);
      expect(stack.node.services.get(`race-${i}/1`)?.publishedBy).toBe(winner);
    }
    // And the loser cannot change the winner's service.
    const r0 = await stack.gateway.store.getOwner('race-0/1');
    const loser = r0 === 'ann' ? 'bert' : 'ann';
    expectDenied(await as(loser, 'DELETE', '/services/race-0/1'), 'ownership_required', NOT_YOURS('delete'));
  });
});

describe('node configuration', () => {
  it.each([
    ['bert', 'Contributor'],
    ['rita', 'Reader'],
  ])('is refused to %s (%s) and nothing reaches the node', async (user, role) => {
    for (const [method, path] of [
      ['GET', '/computenodes'],
      ['POST', '/computenodes'],
      ['DELETE', '/computenodes/node-1'],
    ]) {
      const { result, got } = await reaching(() => as(user, method!, path!));
      expectDenied(result, 'role_required', `Role Owner is required to manage compute node configuration; you have ${role}.`);
      expect(got).toEqual([]);
    }
  });

  it('is forwarded for an Owner', async () => {
    const { result, got } = await reaching(() => as('olive', 'GET', '/computenodes'));
    expect(got.map((g) => `${g.method} ${g.url}`)).toEqual(['GET /computenodes']);
    // The example node has no such API: its own 404, not the gateway's route_not_found.
    expect(result.status).toBe(404);
    expect(result.json().error).toBe('not_found');
  });
});

describe('deny decisions are audited', () => {
  function auditFor(requestId: string): Record<string, unknown>[] {
    return stack.logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.audit === true && l.event === 'deny' && l.requestId === requestId);
  }

  it('with user, role, route, method, path and reason, for role and for ownership denials', async () => {
    const byRole = await as('rita', 'DELETE', '/services/rd-svc/1');
    expect(byRole.status).toBe(403);
    expect(auditFor(String(byRole.headers['x-request-id']))).toEqual([
      expect.objectContaining({ user: 'rita', role: 'Reader', route: 'services.delete', method: 'DELETE', path: '/services/rd-svc/1', reason: 'role_required' }),
    ]);

    expect((await as('ann', 'POST', '/services/audit-svc/1', svc)).status).toBe(201);
    const byOwnership = await as('bert', 'PATCH', '/services/audit-svc/1', {});
    expect(byOwnership.status).toBe(403);
    const [line] = auditFor(String(byOwnership.headers['x-request-id']));
    expect(line).toMatchObject({ user: 'bert', role: 'Contributor', route: 'services.update', reason: 'ownership_required' });
    // The audit line names neither the other publisher nor any token.
    expect(JSON.stringify(line)).not.toContain('ann');
    expect(JSON.stringify(line)).not.toContain(t.bert!.access_token.slice(-20));
  });

  it('allowed requests write no deny line', async () => {
    const r = await as('rita', 'GET', '/services');
    expect(r.status).toBe(200);
    expect(auditFor(String(r.headers['x-request-id']))).toEqual([]);
  });
});

describe('roles are re-evaluated on refresh', () => {
  it('a demoted contributor loses publish/update rights with the next refreshed token', async () => {
    const first = await login(stack, 'dora');
    expect(roleIn(first.access_token)).toEqual(['Contributor']);
    expect((await request(stack, 'POST', '/services/dora-svc/1', { token: first.access_token, json: svc })).status).toBe(201);
    expect(await ownerOf('dora-svc/1', 'dora')).toBe('dora');

    directory.groups.set('dora', ['readers']); // moved in the directory
    const r = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: first.refresh_token } });
    expect(r.status).toBe(200);
    const second: Tokens = r.json();
    expect(roleIn(second.access_token)).toEqual(['Reader']);

    for (const [method, path, json, message] of [
      ['PATCH', '/services/dora-svc/1', { description: 'x' }, READER_UPDATE],
      ['DELETE', '/services/dora-svc/1', undefined, READER_DELETE],
      ['POST', '/services/dora-svc/2', svc, READER_PUBLISH],
    ] as const) {
      const { result, got } = await reaching(() =>
        request(stack, method, path, { token: second.access_token, ...(json !== undefined ? { json } : {}) }),
      );
      expectDenied(result, 'role_required', message);
      expect(got).toEqual([]);
    }
    expect((await request(stack, 'GET', '/services/dora-svc/1', { token: second.access_token })).status).toBe(200);
    // The access token issued before the refresh keeps its role until it expires (tokens.accessTokenTtlSeconds).
    expect(roleIn(first.access_token)).toEqual(['Contributor']);

    // Promoted again: the next refresh gives the rights back.
    directory.groups.set('dora', ['contributors']);
    const third: Tokens = (await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: second.refresh_token } })).json();
    expect(roleIn(third.access_token)).toEqual(['Contributor']);
    expect((await request(stack, 'DELETE', '/services/dora-svc/1', { token: third.access_token })).status).toBe(200);
  });

  it('a user who lost every role (Reader declared) gets no new token at refresh', async () => {
    const first = await login(stack, 'eve');
    directory.groups.set('eve', ['sales']);
    const r = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: first.refresh_token } });
    expectErrorShape(r, 403, 'no_role');
  });

  it('a user removed from the directory loses the session, its access token included', async () => {
    directory.groups.set('gone', ['contributors']);
    const first = await login(stack, 'gone');
    expect((await request(stack, 'GET', '/status', { token: first.access_token })).status).toBe(200);
    directory.groups.delete('gone');
    expectErrorShape(await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: first.refresh_token } }), 401, 'invalid_refresh_token');
    expectErrorShape(await request(stack, 'GET', '/status', { token: first.access_token }), 401, 'token_revoked');
  });
});

describe('operator rules (policy.extraRoutes) through the real gateway', () => {
  let ops: Stack;
  let ann: Tokens;
  let olive: Tokens;
  beforeAll(async () => {
    ops = await startStack({
      config: {
        auth: { roles: ROLES },
        policy: {
          extraRoutes: [
            { id: 'ops.ownerOnlyPublish', methods: ['POST'], pattern: '/services/{name}/{version}', roles: ['Owner'] },
            { id: 'ops.noSnapshots', methods: ['GET', 'DELETE'], pattern: '/snapshots', roles: [] },
          ],
        },
      },
      providers: [directory],
    });
    ann = await login(ops, 'ann');
    olive = await login(ops, 'olive');
  });
  afterAll(async () => {
    await ops?.close();
  });

  it('narrow who may publish, and an Owner publish through them still records the owner', async () => {
    const before = ops.node.received.length;
    const denied = await request(ops, 'POST', '/services/op-svc/1', { token: ann.access_token, json: svc });
    expectErrorShape(denied, 403, 'role_required');
    expect(denied.json().message).toBe('Role Owner is required to call this API (ops.ownerOnlyPublish); you have Contributor.');
    expect(ops.node.received.length).toBe(before);
    expect((await request(ops, 'POST', '/services/op-svc/1', { token: olive.access_token, json: svc })).status).toBe(201);
    const until = Date.now() + 2000;
    while ((await ops.gateway.store.getOwner('op-svc/1')) === null && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(await ops.gateway.store.getOwner('op-svc/1')).toBe('olive');
    // Methods the operator rule does not list fall through to the built-in table.
    expect((await request(ops, 'GET', '/services/op-svc/1', { token: ann.access_token })).status).toBe(200);
  });

  it('an empty roles list blocks an API for everyone, Owners included', async () => {
    const before = ops.node.received.length;
    const r = await request(ops, 'GET', '/snapshots', { token: olive.access_token });
    expectErrorShape(r, 403, 'role_required');
    expect(r.json().message).toBe('No role may call this API (ops.noSnapshots): the operator has blocked it.');
    expect(ops.node.received.length).toBe(before);
  });
});
